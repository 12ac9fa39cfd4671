//! Completion, for every shell, from one place. kubectl (≥ 1.26) completes a plugin by running
//! `kubectl_complete-onboard ARGS… WORD` (this binary, by that name: see `completion.rs`); the
//! bash, zsh and fish scripts of `kubectl-onboard` run `kubectl-onboard __complete ARGS… WORD`.
//! Both get cobra's protocol: one candidate a line (`value<TAB>description`), then
//! `:<directive>`.
//!
//! What the word can be is worked out from the argh definitions (subcommands, flags and which
//! of them take a value) by [`wanted`], without I/O. The candidates then come from fixed lists
//! (key algorithms, formats, durations), the kubeconfig (contexts, users) or the cluster (pending
//! requests, ClusterRoles, namespaces). The cluster gets [`CLUSTER_WAIT`]; on any error or
//! timeout there are simply no candidates, and nothing is printed on stderr.

use std::time::Duration;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfoKind};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::ListParams;

use crate::cluster::Connection;
use crate::flags::cli::{Args, COMPLETION_COMMAND};
use crate::kubeconfig::{self, edit::Section};

/// How long the cluster is given for pending requests, ClusterRoles or namespaces.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(2);

/// cobra's ShellCompDirective bits.
pub mod directive {
    pub const NO_SPACE: u8 = 2;
    pub const NO_FILES: u8 = 4;
    pub const DIRECTORIES: u8 = 16;
    pub const KEEP_ORDER: u8 = 32;
}

/// Where the candidates for the word come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// These values, with descriptions.
    Fixed(Vec<(String, String)>),
    Contexts,
    Users,
    PendingRequests,
    Invitations,
    ClusterRoles,
    Namespaces,
    /// The shell's file names.
    Files,
    Directories,
    /// Free text (a user name, a group, a reason): nothing to offer.
    Nothing,
}

/// The word being completed and where its candidates come from.
#[derive(Debug, PartialEq, Eq)]
pub struct Wanted {
    pub source: Source,
    /// What the candidates must start with.
    pub word: String,
    /// Put before each candidate: `--flag=` when the word is `--flag=…`.
    pub prefix: String,
    /// `--kubeconfig` and `--context` (or renew's `--admin-context`) already on the line, for
    /// the kubeconfig and cluster lookups.
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    /// Offered after the source's candidates: a new word may also be a flag.
    pub then_flags: Vec<(String, String)>,
}

/// What `args` (the words after `kubectl onboard`, the last one being completed, perhaps empty)
/// asks for.
pub fn wanted(args: &[String]) -> Wanted {
    let (word, done) = match args.split_last() {
        Some((word, done)) => (word.clone(), done),
        None => (String::new(), &[][..]),
    };
    let subcommand = done
        .first()
        .and_then(|first| super::SUBCOMMANDS.iter().find(|(name, _)| name == first))
        .map(|(name, _)| *name);
    let info = match subcommand {
        Some(name) => command_info(name),
        None => Args::get_args_info(),
    };
    let words = &done[usize::from(subcommand.is_some())..];

    let mut wanted = Wanted {
        source: Source::Nothing,
        word: word.clone(),
        prefix: String::new(),
        kubeconfig: None,
        context: None,
        then_flags: Vec::new(),
    };
    let mut positionals = 0;
    let mut value_of: Option<&str> = None;
    let mut only_positionals = false;
    for w in words {
        if let Some(flag) = value_of.take() {
            wanted.remember(flag, w);
        } else if only_positionals || !w.starts_with('-') || w == "-" {
            positionals += 1;
        } else if w == "--" {
            only_positionals = true;
        } else if let Some((name, value)) = w.split_once('=') {
            if let Some(flag) = long_name(&info, name) {
                wanted.remember(flag, value);
            }
        } else {
            value_of = long_name(&info, w).filter(|long| takes_value(&info, long));
        }
    }

    wanted.source = if let Some(flag) = value_of {
        values(subcommand, flag)
    } else if !only_positionals && word.starts_with('-') {
        match word.split_once('=') {
            Some((name, value)) => match long_name(&info, name) {
                Some(flag) => {
                    wanted.prefix = format!("{name}=");
                    wanted.word = value.to_string();
                    values(subcommand, flag)
                }
                None => Source::Nothing,
            },
            None => flag_names(&info),
        }
    } else {
        let source = positional(subcommand, positionals);
        // A new word: what may come here, then the flags (unless it is a file name).
        if word.is_empty() && !matches!(source, Source::Files | Source::Directories) {
            wanted.then_flags = flag_list(&info);
        }
        source
    };
    wanted
}

impl Wanted {
    fn remember(&mut self, flag: &str, value: &str) {
        match flag {
            "kubeconfig" => self.kubeconfig = Some(value.to_string()),
            "context" | "admin-context" => self.context = Some(value.to_string()),
            _ => {}
        }
    }
}

fn command_info(name: &str) -> CommandInfoWithArgs {
    super::infos()
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.command)
        .unwrap_or_else(Args::get_args_info)
}

/// The long name (without dashes) of the flag `word` (`--output`, `-o`) of this command.
fn long_name(info: &CommandInfoWithArgs, word: &str) -> Option<&'static str> {
    info.flags
        .iter()
        .find(|f| {
            f.long == word
                || word
                    .strip_prefix('-')
                    .and_then(|s| s.parse::<char>().ok())
                    .is_some_and(|c| f.short == Some(c))
        })
        .map(|f| f.long.trim_start_matches('-'))
}

fn takes_value(info: &CommandInfoWithArgs, long: &str) -> bool {
    info.flags.iter().any(|f| {
        f.long.trim_start_matches('-') == long && matches!(f.kind, FlagInfoKind::Option { .. })
    })
}

fn flag_names(info: &CommandInfoWithArgs) -> Source {
    Source::Fixed(flag_list(info))
}

fn flag_list(info: &CommandInfoWithArgs) -> Vec<(String, String)> {
    info.flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| (f.long.to_string(), f.description.to_string()))
        .collect()
}

fn fixed(values: &[(&str, &str)]) -> Source {
    Source::Fixed(
        values
            .iter()
            .map(|(v, d)| (v.to_string(), d.to_string()))
            .collect(),
    )
}

/// The values of the flag with this long name, of `subcommand`.
fn values(subcommand: Option<&str>, flag: &str) -> Source {
    const LIFETIMES: &[(&str, &str)] = &[
        ("1h", "an hour"),
        ("24h", "a day"),
        ("7d", "a week"),
        ("30d", "30 days"),
        ("90d", "90 days"),
        ("1y", "a year"),
    ];
    match flag {
        // invite's --output is the invitation file; its -o is --format.
        "output" if subcommand == Some("invite") => Source::Files,
        "output" | "format" => fixed(&[("json", "JSON"), ("yaml", "YAML")]),
        "expires" => fixed(&[
            ("10m", "10 minutes (the least)"),
            ("1h", "an hour"),
            ("24h", "a day (default)"),
            ("7d", "a week"),
        ]),
        "revoke" if subcommand == Some("invitations") => Source::Invitations,
        "key-algorithm" => fixed(&[
            ("rsa-2048", "RSA, 2048 bits (default)"),
            ("rsa-3072", "RSA, 3072 bits"),
            ("rsa-4096", "RSA, 4096 bits"),
            ("ecdsa-p256", "ECDSA on P-256"),
            ("ecdsa-p384", "ECDSA on P-384"),
        ]),
        "duration" | "warn" | "if-expires-within" => fixed(LIFETIMES),
        "timeout" => fixed(&[
            ("30s", "30 seconds"),
            ("1m", "a minute"),
            ("5m", "5 minutes (default)"),
            ("15m", "15 minutes"),
            ("1h", "an hour"),
        ]),
        "embed" => fixed(&[("true", "in the kubeconfig"), ("false", "in files")]),
        "context" | "admin-context" => Source::Contexts,
        "clusterrole" => Source::ClusterRoles,
        "namespace" => Source::Namespaces,
        "kubeconfig" | "key" | "ca-cert" | "ca-key" | "output-kubeconfig" | "csr-out" | "from" => {
            Source::Files
        }
        "output-dir" => Source::Directories,
        _ => Source::Nothing,
    }
}

/// The `index`-th positional argument of `subcommand` (`None`: the main command).
fn positional(subcommand: Option<&str>, index: usize) -> Source {
    match (subcommand, index) {
        (None, 0) => Source::Fixed(
            super::SUBCOMMANDS
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
        ),
        (Some("approve" | "deny"), _) => Source::PendingRequests,
        (Some("renew" | "offboard"), 0) => Source::Users,
        (Some(COMPLETION_COMMAND), 0) => fixed(&[
            ("bash", "a bash script"),
            ("zsh", "a zsh script"),
            ("fish", "a fish script"),
            ("kubectl", "kubectl's own completion of kubectl onboard"),
        ]),
        (Some("batch" | "import" | "sign" | "accept"), 0) => Source::Files,
        _ => Source::Nothing,
    }
}

/// The reply in cobra's protocol, for `args` as [`wanted`] reads them.
pub async fn reply(args: &[String]) -> String {
    let wanted = wanted(args);
    let (mut candidates, mut bits) = match wanted.source {
        Source::Files => (vec![], 0),
        Source::Directories => (vec![], directive::DIRECTORIES),
        ref source => (
            candidates(source, &wanted).await,
            directive::NO_FILES | directive::KEEP_ORDER,
        ),
    };
    candidates.extend(wanted.then_flags.iter().cloned());
    let mut out = String::new();
    for (value, description) in candidates
        .iter()
        .filter(|(value, _)| value.starts_with(&wanted.word))
    {
        out += &wanted.prefix;
        out += &one_line(value);
        if !description.is_empty() {
            out += "\t";
            out += &one_line(description);
        }
        out += "\n";
    }
    if wanted.prefix.ends_with('=') && out.is_empty() {
        bits |= directive::NO_SPACE;
    }
    out + &format!(":{bits}\n")
}

/// A candidate from the cluster or a kubeconfig cannot break the protocol (or the terminal).
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

async fn candidates(source: &Source, wanted: &Wanted) -> Vec<(String, String)> {
    let kubeconfig = wanted.kubeconfig.as_deref().map(std::path::Path::new);
    let loaded = || kubeconfig::load(kubeconfig).ok();
    let names = |section| {
        loaded()
            .map(|l| {
                let mut names: Vec<String> = l
                    .merged
                    .documents
                    .iter()
                    .flat_map(|d| kubeconfig::edit::names(&d.value, section))
                    .collect();
                names.sort();
                names.dedup();
                names.into_iter().map(|n| (n, String::new())).collect()
            })
            .unwrap_or_default()
    };
    match source {
        Source::Fixed(values) => values.clone(),
        Source::Contexts => names(Section::Contexts),
        Source::Users => names(Section::Users),
        Source::PendingRequests
        | Source::Invitations
        | Source::ClusterRoles
        | Source::Namespaces => ask_cluster(source, wanted),
        Source::Files | Source::Directories | Source::Nothing => vec![],
    }
}

/// The cluster's candidates, or none after [`CLUSTER_WAIT`] whatever holds them up. The asking
/// runs on a thread of its own: an exec plugin is run synchronously inside the client, where no
/// timer can interrupt it, so only leaving it behind bounds the wait.
fn ask_cluster(source: &Source, wanted: &Wanted) -> Vec<(String, String)> {
    let (source, path, context) = (
        source.clone(),
        wanted.kubeconfig.clone(),
        wanted.context.clone(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let found = runtime.block_on(async {
            let loaded = kubeconfig::load(path.as_deref().map(std::path::Path::new)).ok()?;
            from_cluster(&source, &loaded, context.as_deref()).await
        });
        let _ = tx.send(found);
    });
    rx.recv_timeout(CLUSTER_WAIT)
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn from_cluster(
    source: &Source,
    loaded: &kubeconfig::Loaded,
    context: Option<&str>,
) -> Option<Vec<(String, String)>> {
    let target = loaded.read_target(context).ok()?;
    let conn = Connection::open_non_interactive(loaded, &target)
        .await
        .ok()?;
    let names = |list: Vec<Option<String>>| list.into_iter().flatten().map(|n| (n, String::new()));
    Some(match source {
        Source::PendingRequests => crate::csr::queue::pending(&conn)
            .await
            .ok()?
            .into_iter()
            .map(|r| {
                let description = match &r.asked {
                    Ok(asked) => {
                        let mut d = format!("CN={}", asked.common_names.join(","));
                        if !asked.groups.is_empty() {
                            d += &format!(" O={}", asked.groups.join(","));
                        }
                        d
                    }
                    Err(_) => "an unreadable request".to_string(),
                };
                (r.name, description)
            })
            .collect(),
        Source::Invitations => {
            let now = std::time::SystemTime::now();
            crate::invitation::server::list(&conn)
                .await
                .ok()?
                .into_iter()
                .filter(|i| i.state(now, false) == crate::invitation::State::Open)
                .map(|i| {
                    let description = format!("{}, until {}", i.identity(), i.expires);
                    (i.name, description)
                })
                .collect()
        }
        Source::ClusterRoles => {
            let list = Api::<ClusterRole>::all(conn.client.clone())
                .list_metadata(&ListParams::default())
                .await
                .ok()?;
            names(list.items.into_iter().map(|r| r.metadata.name).collect()).collect()
        }
        Source::Namespaces => {
            let list = Api::<Namespace>::all(conn.client.clone())
                .list_metadata(&ListParams::default())
                .await
                .ok()?;
            names(list.items.into_iter().map(|n| n.metadata.name).collect()).collect()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(line: &[&str]) -> Wanted {
        wanted(&line.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn invitation_commands_complete_their_files_names_and_formats() {
        assert_eq!(
            want(&["invite", "jane", "--output", ""]).source,
            Source::Files
        );
        assert_eq!(
            want(&["invite", "jane", "-o", ""]).source,
            fixed(&[("json", "JSON"), ("yaml", "YAML")])
        );
        assert_eq!(want(&["invite", "--from", ""]).source, Source::Files);
        assert_eq!(want(&["accept", ""]).source, Source::Files);
        assert_eq!(
            want(&["invitations", "--revoke", ""]).source,
            Source::Invitations
        );
        assert_eq!(
            want(&["invitations", "-o", ""]).source,
            fixed(&[("json", "JSON"), ("yaml", "YAML")])
        );
    }

    fn fixed_values(w: &Wanted) -> Vec<&str> {
        match &w.source {
            Source::Fixed(v) => v.iter().map(|(v, _)| v.as_str()).collect(),
            other => panic!("expected fixed values, got {other:?}"),
        }
    }

    #[test]
    fn the_first_word_is_a_subcommand_and_flags_are_the_commands_own() {
        let w = want(&["ap"]);
        assert_eq!(w.word, "ap");
        assert!(fixed_values(&w).contains(&"approve"));
        let first = want(&[""]);
        assert!(fixed_values(&first).contains(&"status"));
        assert!(
            first.then_flags.iter().any(|(f, _)| f == "--group"),
            "{first:?}"
        );
        let main = fixed_values(&want(&["jane", "--"])).join(" ");
        assert!(
            main.contains("--key-algorithm") && main.contains("--group"),
            "{main}"
        );
        let approve = fixed_values(&want(&["approve", "-"])).join(" ");
        assert!(
            approve.contains("--context") && !approve.contains("--group"),
            "{approve}"
        );
    }

    #[test]
    fn a_flag_that_takes_a_value_gets_its_values() {
        let w = want(&["jane", "--key-algorithm", ""]);
        assert_eq!(fixed_values(&w).len(), 5);
        assert_eq!(
            fixed_values(&want(&["pending", "-o", ""])),
            ["json", "yaml"]
        );
        assert_eq!(want(&["jane", "--context", "a"]).source, Source::Contexts);
        assert_eq!(
            want(&["jane", "--clusterrole", ""]).source,
            Source::ClusterRoles
        );
        assert_eq!(want(&["jane", "-n", ""]).source, Source::Namespaces);
        assert_eq!(want(&["jane", "--kubeconfig", ""]).source, Source::Files);
        assert_eq!(
            want(&["batch", "--output-dir", ""]).source,
            Source::Directories
        );
        assert_eq!(want(&["jane", "--group", ""]).source, Source::Nothing);
        // A switch takes no value: the next word is a positional again.
        assert_eq!(want(&["approve", "-q", ""]).source, Source::PendingRequests);
    }

    #[test]
    fn the_equals_form_completes_after_the_equals_sign() {
        let w = want(&["jane", "--output=y"]);
        assert_eq!((w.prefix.as_str(), w.word.as_str()), ("--output=", "y"));
        assert_eq!(fixed_values(&w), ["json", "yaml"]);
    }

    #[test]
    fn positionals_come_from_the_kubeconfig_or_the_cluster() {
        assert_eq!(want(&["approve", ""]).source, Source::PendingRequests);
        assert_eq!(want(&["deny", "a", "b"]).source, Source::PendingRequests);
        assert_eq!(want(&["renew", ""]).source, Source::Users);
        assert_eq!(
            want(&["offboard", "--context", "c", ""]).source,
            Source::Users
        );
        assert_eq!(want(&["offboard", "jane", ""]).source, Source::Nothing);
        assert_eq!(want(&["import", ""]).source, Source::Files);
        assert_eq!(want(&["jane", ""]).source, Source::Nothing);
        // A new word may also be a flag, unless a file name is expected.
        let w = want(&["renew", ""]);
        assert!(
            w.then_flags.iter().any(|(f, _)| f == "--reuse-key"),
            "{w:?}"
        );
        assert!(want(&["import", ""]).then_flags.is_empty());
        assert!(want(&["renew", "a"]).then_flags.is_empty());
        assert!(fixed_values(&want(&["completion", ""])).contains(&"kubectl"));
    }

    #[test]
    fn kubeconfig_and_context_on_the_line_are_used_for_lookups() {
        let w = want(&["approve", "--kubeconfig=/k", "--context", "prod", ""]);
        assert_eq!(w.kubeconfig.as_deref(), Some("/k"));
        assert_eq!(w.context.as_deref(), Some("prod"));
        let w = want(&["renew", "--admin-context", "adm", ""]);
        assert_eq!(w.context.as_deref(), Some("adm"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_reply_is_cobras_protocol_filtered_by_the_word() {
        let reply = reply(&["completion".into(), "b".into()]).await;
        assert_eq!(reply, "bash\ta bash script\n:36\n");
        let reply = super::reply(&["import".into(), "".into()]).await;
        assert_eq!(reply, ":0\n", "files: the shell's own completion");
        let reply = super::reply(&["jane".into(), "--output=".into()]).await;
        assert_eq!(reply, "--output=json\tJSON\n--output=yaml\tYAML\n:36\n");
    }
}
