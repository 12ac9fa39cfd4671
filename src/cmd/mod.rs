//! Every command: `kubectl onboard <user>` (`onboard.rs`) and the subcommands, one file each,
//! listed once in [`registry!`] below: their names, what each is for (the "Commands:" table of
//! `--help`), how they parse and what runs them. To add one: a module with an argh `Args` and
//! an async `run(Args)`, and a line in the registry.

pub mod accept;
pub mod approve;
pub mod batch;
pub mod certificates;
pub mod complete;
pub mod completion;
pub mod deny;
pub mod import;
pub mod invitations;
pub mod invite;
pub mod offboard;
pub mod onboard;
pub mod pending;
pub mod renew;
pub mod request;
pub mod revoke;
pub mod sign;
pub mod status;
pub mod unrevoke;

use argh::{ArgsInfo, SubCommandInfo};

use crate::error::Result;
use crate::flags::cli::{Args, COMMAND, parse_as};

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// `kubectl onboard <user>`.
    Run(Box<Args>),
    /// `kubectl onboard <subcommand> …`.
    Command(Command),
    /// `--help`, `--version`, `completion SHELL`: print this on stdout and exit 0.
    Print(String),
}

macro_rules! registry {
    ($($name:literal => $variant:ident($module:ident), $summary:literal;)*) => {
        /// A subcommand, its flags parsed.
        #[derive(Debug)]
        pub enum Command {
            $($variant(Box<$module::Args>),)*
        }

        /// Each subcommand's name and what it is for, in the order `--help` lists them.
        pub const SUBCOMMANDS: &[(&str, &str)] = &[
            $(($name, $summary),)*
            (completion::NAME, "shell completion: bash, zsh, fish, or kubectl's own (kubectl)"),
        ];

        /// `Some` when `name` is a subcommand: its parse of `rest`.
        fn parse_subcommand(name: &str, rest: &[String]) -> Option<Result<Parsed>> {
            let command = format!("{COMMAND} {name}");
            let parsed = match name {
                completion::NAME => return Some(completion::parse(&command, rest)),
                $($name => parse_as::<$module::Args>(&command, rest)
                    .map(|r| r.map(|args| Command::$variant(Box::new(args)))),)*
                _ => return None,
            };
            Some(parsed.map(|r| match r {
                Ok(command) => Parsed::Command(command),
                Err(help) => Parsed::Print(help),
            }))
        }

        pub async fn run(command: Command) -> Result<()> {
            match command {
                $(Command::$variant(args) => $module::run(*args).await,)*
            }
        }

        /// Every subcommand's flags, for the completion scripts.
        pub fn infos() -> Vec<SubCommandInfo> {
            let info = |name: &'static str, mut command: argh::CommandInfoWithArgs| {
                // argh names a top-level struct after its type; the scripts match on this name.
                command.name = name;
                SubCommandInfo { name, command }
            };
            vec![
                info(completion::NAME, completion::Completion::get_args_info()),
                $(info($name, $module::Args::get_args_info()),)*
            ]
        }
    };
}

registry! {
    "status" => Status(status), "client certificates in your kubeconfig and when they expire";
    "certificates" => Certificates(certificates), "every certificate issued through kubectl onboard, from the cluster's inventory";
    "invite" => Invite(invite), "invite a new user: a single-use invitation file they redeem";
    "accept" => Accept(accept), "redeem an invitation: your own certificate and kubeconfig entries";
    "invitations" => Invitations(invitations), "list the invitations and what became of them, or withdraw one";
    "request" => Request(request), "make a key and a certificate request to send to an administrator";
    "sign" => Sign(sign), "sign a colleague's request; write the kubeconfig to send back";
    "import" => Import(import), "add the kubeconfig an administrator signed for you";
    "renew" => Renew(renew), "renew a user's client certificate in place";
    "pending" => Pending(pending), "list the certificate requests waiting for approval";
    "approve" => Approve(approve), "approve requests for people, after checking them";
    "deny" => Deny(deny), "deny requests, with a reason the requester sees";
    "offboard" => Offboard(offboard), "remove a user's bindings and kubeconfig entries";
    "revoke" => Revoke(revoke), "refuse every write made with a user's certificates";
    "unrevoke" => Unrevoke(unrevoke), "take certificates off the revocation list";
    "batch" => Batch(batch), "onboard many users from a YAML file";
}

/// The command line, parsed: a subcommand first (a user who is really called so goes after
/// `--`), `--version`, or the main command.
pub fn parse(raw: &[String]) -> Result<Parsed> {
    if let Some(first) = raw.first()
        && let Some(parsed) = parse_subcommand(first, &raw[1..])
    {
        return parsed;
    }
    if raw
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--version")
    {
        return Ok(Parsed::Print(format!(
            "kubectl-onboard {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(match parse_as::<Args>(COMMAND, raw)? {
        Ok(args) => Parsed::Run(Box::new(args)),
        Err(help) => Parsed::Print(with_commands(&help)),
    })
}

/// The main command's help with a "Commands:" table before its arguments.
fn with_commands(help: &str) -> String {
    let width = SUBCOMMANDS
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut table = String::from("Commands:\n");
    for (name, summary) in SUBCOMMANDS {
        table += &format!("  {name:<width$}  {summary}\n");
    }
    table += &format!("  Each has --help: {COMMAND} COMMAND --help\n\n");
    match help.find("Positional Arguments:") {
        Some(at) => format!("{}{table}{}", &help[..at], &help[at..]),
        None => format!("{help}\n{table}"),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::cli::normalize;
    use std::path::PathBuf;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn printed(args: &[&str]) -> String {
        match parse(&strings(args)).unwrap() {
            Parsed::Print(text) => text,
            _ => panic!("expected {args:?} to print"),
        }
    }

    fn run(args: &[&str]) -> Args {
        match parse(&strings(args)).unwrap() {
            Parsed::Run(args) => *args,
            _ => panic!("expected a run of {args:?}"),
        }
    }

    #[test]
    fn equals_form_is_split_for_options() {
        let a = run(&[
            "jane",
            "--group=dev",
            "--duration=90d",
            "--kubeconfig=/tmp/k",
        ]);
        assert_eq!(a.group, vec!["dev"]);
        assert_eq!(a.duration.as_deref(), Some("90d"));
        assert_eq!(a.kubeconfig, Some(PathBuf::from("/tmp/k")));
    }

    #[test]
    fn switches_take_true_or_false() {
        assert!(run(&["jane", "--approve=true"]).approve);
        assert!(!run(&["jane", "--approve=false"]).approve);
        let err = parse(&strings(&["jane", "--approve=yes"])).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Usage);
        assert!(err.to_string().contains("--approve"), "{err}");
    }

    #[test]
    fn embed_is_a_boolean_option_with_a_bare_form() {
        assert_eq!(run(&["jane", "--embed=false"]).embed, Some(false));
        assert_eq!(run(&["jane", "--embed", "false"]).embed, Some(false));
        assert_eq!(run(&["jane", "--embed"]).embed, Some(true));
        assert_eq!(run(&["jane", "--embed", "--approve"]).embed, Some(true));
        assert_eq!(run(&["jane"]).embed, None);
    }

    #[test]
    fn arguments_after_double_dash_are_untouched() {
        assert_eq!(
            normalize::<Args>(&strings(&["--", "--group=x"])).unwrap(),
            strings(&["--", "--group=x"])
        );
        assert_eq!(run(&["--", "-dash"]).user, "-dash");
    }

    #[test]
    fn version_and_help_print() {
        assert!(printed(&["--version"]).starts_with("kubectl-onboard "));
        let help = printed(&["--help"]);
        assert!(
            help.starts_with("Usage: kubectl onboard ") && help.contains("<user>"),
            "{help}"
        );
        assert!(
            help.contains("--key-algorithm") && help.contains("status"),
            "{help}"
        );
    }

    #[test]
    fn help_lists_every_subcommand_as_a_table_and_each_parses() {
        let help = printed(&["--help"]);
        let table = &help[help.find("Commands:\n").expect(&help)
            ..help.find("Positional Arguments:").expect(&help)];
        for (name, summary) in SUBCOMMANDS {
            assert!(
                table.contains(&format!("  {name} ")) && table.contains(summary),
                "{name}: {table}"
            );
            // Every listed name is a subcommand, with help of its own.
            let own = printed(&[name, "--help"]);
            assert!(
                own.starts_with(&format!("Usage: kubectl onboard {name}")),
                "{own}"
            );
        }
        assert_eq!(infos().len(), SUBCOMMANDS.len());
    }

    #[test]
    fn completion_is_a_subcommand_unless_after_double_dash() {
        assert!(printed(&["completion", "bash"]).contains("complete -F"));
        let err = parse(&strings(&["completion", "tcsh"])).unwrap_err();
        assert!(err.to_string().contains("bash, zsh or fish"), "{err}");
        assert_eq!(run(&["--", "completion"]).user, "completion");
    }

    #[test]
    fn missing_user_is_a_usage_error_naming_the_help() {
        let err = parse(&strings(&["--approve"])).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Usage);
        assert!(err.to_string().contains("--help"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}
