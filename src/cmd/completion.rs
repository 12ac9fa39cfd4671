//! `kubectl onboard completion bash|zsh|fish`: completion scripts for `kubectl-onboard`,
//! generated from the same argh definitions that parse the command line.

use argh::{ArgsInfo, FromArgs};
use argh_complete::Generator;

use crate::cli::{Args, parse_as};
use crate::cmd::Parsed;
use crate::error::{Error, Result};

/// Print a shell completion script for kubectl-onboard: bash, zsh or fish.
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(
    example = "Bash, for this shell:\n  $ source <(kubectl-onboard completion bash)",
    example = "Zsh, for every shell:\n  $ kubectl-onboard completion zsh > \"${{fpath[1]}}/_kubectl-onboard\""
)]
pub struct Completion {
    /// the shell: bash, zsh or fish
    #[argh(positional)]
    pub shell: String,
}

pub const NAME: &str = "completion";
const BINARY: &str = "kubectl-onboard";

pub fn parse(command: &str, rest: &[String]) -> Result<Parsed> {
    match parse_as::<Completion>(command, rest)? {
        Err(help) => Ok(Parsed::Print(help)),
        Ok(c) => script(&c.shell).map(Parsed::Print).ok_or_else(|| {
            Error::usage(format!(
                "no completion for shell '{}': use bash, zsh or fish",
                c.shell
            ))
        }),
    }
}

pub fn script(shell: &str) -> Option<String> {
    let mut info = Args::get_args_info();
    info.commands.extend(super::infos());
    Some(match shell {
        "bash" => argh_complete::bash::Bash::generate(BINARY, &info),
        "zsh" => argh_complete::zsh::Zsh::generate(BINARY, &info),
        "fish" => argh_complete::fish::Fish::generate(BINARY, &info),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_the_flags_and_the_subcommand() {
        for shell in ["bash", "zsh", "fish"] {
            let text = script(shell).unwrap();
            for word in [
                "approve",
                "key-algorithm",
                "output-kubeconfig",
                NAME,
                "status",
                "warn",
            ] {
                assert!(text.contains(word), "{shell} script lacks {word}");
            }
        }
        assert!(script("powershell").is_none());
    }
}
