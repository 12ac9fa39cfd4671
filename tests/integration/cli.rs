//! The command line as a user meets it, without a cluster: completion in a real bash,
//! usage errors that send nothing anywhere.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-onboard");

/// What bash completes for `words` (the last one is being typed), with our script sourced.
fn complete(words: &[&str]) -> Vec<String> {
    let script = Command::new(BIN)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(script.status.success());
    let dir = std::env::temp_dir().join(format!("onboard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("completion.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _kubectl-onboard; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        words.len() - 1
    );
    // The script asks the binary for the candidates: it must be on PATH, as once installed.
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_flags_and_the_subcommand() {
    assert_eq!(complete(&["kubectl-onboard", "--app"]), ["--approve"]);
    assert_eq!(
        complete(&["kubectl-onboard", "--key"]),
        ["--key-algorithm", "--key"]
    );
    assert_eq!(complete(&["kubectl-onboard", "comp"]), ["completion"]);
    let all = complete(&["kubectl-onboard", ""]);
    for word in [
        "--group",
        "--duration",
        "--use-context",
        "--output-kubeconfig",
        "completion",
    ] {
        assert!(all.iter().any(|w| w == word), "{word} missing from {all:?}");
    }
    assert_eq!(
        complete(&["kubectl-onboard", "completion", "--h"]),
        ["--help"]
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let long = "x".repeat(100_000);
    for args in [
        vec!["jane", "--duration", "5m"],
        vec!["jane", "--group", "system:masters"],
        vec!["--approve"],
        vec!["jane", "--key-algorithm", "dsa"],
        vec!["completion", "tcsh"],
        vec!["revoke"],
        vec!["revoke", "jane", "--fingerprint", "ab"],
        vec!["revoke", "--fingerprint", "not-hex"],
        vec!["revoke", "jane", "--reason", "two\nlines"],
        vec!["unrevoke"],
        vec!["certificates", "--warn", "soon"],
        // Hostile or mistaken sizes: refused before anything is read from the cluster (a huge
        // window overflowed, a huge role name was recorded and then panicked `invitations`).
        vec!["certificates", "--warn", "1000y"],
        vec!["renew", "--if-expires-within", "99999y"],
        vec!["approve", ""],
        vec!["revoke", &long],
        vec!["certificates", &long],
        vec!["invitations", "--revoke", ""],
        vec!["invite", "jane", "--clusterrole", &long],
        vec!["invite", "jane", "--output", "/nonexistent/dir/jane.invite"],
        vec!["invite", "--from", "/dev/zero", "--output-dir", "/tmp"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.len() < 600, "{args:?}: {} bytes", stderr.len());
    }
}

#[test]
fn version_is_printed_on_stdout() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("kubectl-onboard {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `shell -c program` with the completion script for `shell` saved to a file and the binary on
/// PATH; `make test` installs zsh and fish (tests/ci/shells.sh).
fn in_shell(shell: &str, program: &str) -> Vec<String> {
    let script = Command::new(BIN)
        .args(["completion", shell])
        .output()
        .unwrap();
    assert!(script.status.success());
    let dir = std::env::temp_dir().join(format!("onboard-cli-{shell}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("completion");
    std::fs::write(&file, &script.stdout).unwrap();
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let flags: &[&str] = if shell == "zsh" {
        &["-f", "-c"]
    } else {
        &["--no-config", "-c"]
    };
    let out = Command::new(shell)
        .args(flags)
        .arg(program.replace("SCRIPT", &file.display().to_string()))
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| {
            panic!("{shell} is needed for this test ({e}): run tests/ci/shells.sh")
        });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn zsh_offers_the_binarys_candidates_with_descriptions() {
    // _describe and _files stand in for zsh's completion system, which needs a terminal.
    let program = r#"
        compdef() { :; }
        _describe() { local name=${@[-1]}; print -rl -- "${(@P)name}"; }
        _files() { print FILES; }
        _path_files() { print DIRECTORIES; }
        source SCRIPT
        words=(kubectl-onboard ap); CURRENT=2; _kubectl-onboard
        words=(kubectl-onboard jane --output ''); CURRENT=4; _kubectl-onboard
        words=(kubectl-onboard import ''); CURRENT=3; _kubectl-onboard
        words=(kubectl-onboard batch --output-dir ''); CURRENT=4; _kubectl-onboard
    "#;
    assert_eq!(
        in_shell("zsh", program),
        [
            "approve:approve requests for people, after checking them",
            "json:JSON",
            "yaml:YAML",
            "FILES",
            "DIRECTORIES"
        ]
    );
}

#[test]
fn fish_offers_the_binarys_candidates_with_descriptions() {
    let program = r#"
        source SCRIPT
        complete -C "kubectl-onboard ap"
        complete -C "kubectl-onboard jane --key-algorithm ecdsa"
        complete -C "kubectl-onboard completion k"
    "#;
    assert_eq!(
        in_shell("fish", program),
        [
            "approve\tapprove requests for people, after checking them",
            "ecdsa-p256\tECDSA on P-256",
            "ecdsa-p384\tECDSA on P-384",
            "kubectl\tkubectl's own completion of kubectl onboard"
        ]
    );
}
