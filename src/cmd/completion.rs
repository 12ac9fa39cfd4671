//! `kubectl onboard completion bash|zsh|fish|kubectl`. The scripts are small: each asks
//! `kubectl-onboard __complete` for the candidates (`complete.rs`), so they complete subcommands,
//! flags and their values, contexts, users and pending requests alike. `completion kubectl` puts
//! `kubectl_complete-onboard` on PATH beside `kubectl-onboard`, which is how kubectl (≥ 1.26)
//! completes a plugin; krew cannot install it (kubernetes-sigs/krew#812).
//!
//! This command runs while the command line is parsed: it needs neither the cluster nor a
//! runtime, and what it prints is its whole result.

use std::path::{Path, PathBuf};

use argh::{ArgsInfo, FromArgs};

use crate::cmd::Parsed;
use crate::error::{Error, Result};
use crate::flags::cli::parse_as;
use crate::flags::cli::{HIDDEN_COMMAND, KUBECTL_HELPER};

/// Shell completion: a script for bash, zsh or fish, or kubectl's own completion of the plugin.
#[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
#[argh(
    example = "kubectl's completion (kubectl onboard <TAB>), once:\n  $ {command_name} kubectl",
    example = "Bash, for this shell:\n  $ source <(kubectl-onboard completion bash)",
    example = "Zsh, for every shell:\n  $ kubectl-onboard completion zsh > \"${{fpath[1]}}/_kubectl-onboard\"",
    note = "kubectl: creates kubectl_complete-onboard, a link to kubectl-onboard in the directory kubectl finds the plugin in; --print prints a script to save on PATH instead."
)]
pub struct Completion {
    /// bash, zsh, fish, or kubectl
    #[argh(positional)]
    pub shell: String,
    /// kubectl: print the helper script instead of creating the link
    #[argh(switch)]
    pub print: bool,
}

pub const NAME: &str = crate::flags::cli::COMPLETION_COMMAND;
const BINARY: &str = "kubectl-onboard";

pub fn parse(command: &str, rest: &[String]) -> Result<Parsed> {
    let c = match parse_as::<Completion>(command, rest)? {
        Err(help) => return Ok(Parsed::Print(help)),
        Ok(c) => c,
    };
    if c.shell == "kubectl" {
        return match c.print {
            true => Ok(Parsed::Print(helper_script())),
            false => install_kubectl_helper().map(Parsed::Print),
        };
    }
    script(&c.shell).map(Parsed::Print).ok_or_else(|| {
        Error::usage(format!(
            "no completion for shell '{}': use bash, zsh or fish (or kubectl, for kubectl's own completion of the plugin)",
            c.shell
        ))
    })
}

/// The completion script for `shell`.
pub fn script(shell: &str) -> Option<String> {
    let text = match shell {
        "bash" => BASH,
        "zsh" => ZSH,
        "fish" => FISH,
        _ => return None,
    };
    Some(
        text.replace("@BINARY@", BINARY)
            .replace("@HIDDEN@", HIDDEN_COMMAND),
    )
}

/// Candidates come back one a line (`value<TAB>description`), then `:directive` (cobra's bits:
/// 2 no space, 4 no file names, 16 directories only).
const BASH: &str = r#"# bash completion for @BINARY@ (@BINARY@ completion bash)
_kubectl-onboard() {
    local cur=${COMP_WORDS[COMP_CWORD]} out directive
    out=$("${COMP_WORDS[0]}" @HIDDEN@ "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    directive=${out##*:}
    out=${out%:*}
    local IFS=$'\n'
    COMPREPLY=($(printf '%s' "$out" | cut -f1))
    if (( ${#COMPREPLY[@]} == 0 )); then
        if (( directive & 16 )); then
            COMPREPLY=($(compgen -d -- "$cur"))
        elif (( (directive & 4) == 0 )); then
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
    fi
    if (( directive & 2 )); then
        compopt -o nospace 2>/dev/null
    fi
}
complete -F _kubectl-onboard -o filenames @BINARY@
"#;

const ZSH: &str = r#"#compdef @BINARY@
# zsh completion for @BINARY@ (@BINARY@ completion zsh)
_kubectl-onboard() {
    local out line value description directive
    local -a lines candidates
    out=$(${words[1]} @HIDDEN@ "${(@)words[2,CURRENT]}" 2>/dev/null) || return
    lines=("${(@f)out}")
    directive=${lines[-1]#:}
    for line in "${(@)lines[1,-2]}"; do
        [[ -z $line ]] && continue
        value=${line%%$'\t'*}
        description=
        [[ $line == *$'\t'* ]] && description=${line#*$'\t'}
        candidates+=("${value//:/\\:}${description:+:$description}")
    done
    if (( ${#candidates} )); then
        _describe -V '@BINARY@' candidates
    elif (( directive & 16 )); then
        _path_files -/
    elif (( ! (directive & 4) )); then
        _files
    fi
}
if [[ $funcstack[1] == _kubectl-onboard ]]; then
    _kubectl-onboard "$@"
else
    compdef _kubectl-onboard @BINARY@
fi
"#;

const FISH: &str = r#"# fish completion for @BINARY@ (@BINARY@ completion fish)
function __kubectl_onboard_complete
    set -l args (commandline -opc)
    set -e args[1]
    set -l out (@BINARY@ @HIDDEN@ $args (commandline -ct) 2>/dev/null); or return
    set -l directive (string replace ':' '' -- $out[-1])
    set -e out[-1]
    if test (count $out) -gt 0
        printf '%s\n' $out
    else if test (math "bitand($directive, 16)") -ne 0
        __fish_complete_directories (commandline -ct)
    else if test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path (commandline -ct)
    end
end
complete -c @BINARY@ -f -a '(__kubectl_onboard_complete)'
"#;

/// What `--print` gives: a script kubectl can run by the helper's name.
fn helper_script() -> String {
    format!(
        "#!/bin/sh\n# kubectl's completion of kubectl onboard (kubectl >= 1.26): save as {KUBECTL_HELPER} in a directory on PATH, then chmod +x it.\nexec {BINARY} {HIDDEN_COMMAND} \"$@\"\n"
    )
}

/// Creates `kubectl_complete-onboard` beside the `kubectl-onboard` that kubectl runs (the first
/// on PATH, as kubectl finds plugins; else this binary): a link to it, which the binary knows
/// by its name (main.rs).
fn install_kubectl_helper() -> Result<String> {
    let plugin = plugin_on_path()
        .or_else(|| std::env::current_exe().ok())
        .ok_or_else(|| Error::failed(format!("cannot tell where {BINARY} is installed; run {BINARY} completion kubectl --print and save the script on your PATH")))?;
    let dir = plugin.parent().unwrap_or(Path::new("."));
    let helper = dir.join(KUBECTL_HELPER);
    let done = format!(
        "kubectl onboard <TAB> now completes through kubectl (kubectl 1.26 or later): {} runs {}",
        helper.display(),
        plugin.display()
    );
    if std::fs::symlink_metadata(&helper).is_ok() {
        let ours = std::fs::canonicalize(&helper).ok() == std::fs::canonicalize(&plugin).ok();
        return match ours {
            true => Ok(done),
            false => Err(Error::failed(format!(
                "{} exists and does not lead to {}: remove it, or save the script of {BINARY} completion kubectl --print in its place",
                helper.display(),
                plugin.display()
            ))),
        };
    }
    link(&plugin, &helper).map_err(|e| {
        Error::failed(format!(
            "cannot create {}: {}; run {BINARY} completion kubectl --print and save the script in a directory on your PATH",
            helper.display(),
            crate::kubeconfig::file::io_reason(&e)
        ))
    })?;
    Ok(done)
}

#[cfg(unix)]
fn link(plugin: &Path, helper: &Path) -> std::io::Result<()> {
    // Relative when side by side, so that the pair can move together.
    let target = match plugin.parent() == helper.parent() {
        true => PathBuf::from(plugin.file_name().unwrap_or_default()),
        false => plugin.to_path_buf(),
    };
    std::os::unix::fs::symlink(target, helper)
}

#[cfg(not(unix))]
fn link(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "links are not made on this system",
    ))
}

/// The first `kubectl-onboard` in a PATH directory, as kubectl's plugin lookup finds it.
fn plugin_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(BINARY))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_asks_the_binary_for_candidates() {
        for shell in ["bash", "zsh", "fish"] {
            let text = script(shell).unwrap();
            assert!(text.contains(" __complete "), "{shell}: {text}");
            assert!(text.contains("kubectl-onboard"), "{shell}: {text}");
            assert!(
                !text.contains("@BINARY@") && !text.contains("@HIDDEN@"),
                "{shell} script has a placeholder left"
            );
        }
        assert!(script("powershell").is_none());
        assert!(helper_script().contains("exec kubectl-onboard __complete \"$@\""));
    }
}
