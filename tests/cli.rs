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
    for args in [
        vec!["jane", "--duration", "5m"],
        vec!["jane", "--group", "system:masters"],
        vec!["--approve"],
        vec!["jane", "--key-algorithm", "dsa"],
        vec!["completion", "tcsh"],
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
