//! Completion through the real kubectl (`kubectl __complete onboard …`, which runs the
//! `kubectl_complete-onboard` that `kubectl onboard completion kubectl` puts beside the plugin)
//! and through the bash script, with candidates from the test cluster.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::Cluster;
use crate::support::cluster::{kubectl, random_hex};
use crate::support::onboard::{BIN, Env, unique, wait_for_csr};

/// A PATH directory holding `kubectl-onboard` (a link to the binary under test), as krew's bin.
struct PluginDir {
    dir: PathBuf,
}

impl PluginDir {
    fn new() -> PluginDir {
        let dir = std::env::temp_dir().join(format!("onboard-plugin-{}", random_hex(6)));
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(BIN, dir.join("kubectl-onboard")).unwrap();
        PluginDir { dir }
    }

    fn path(&self) -> String {
        format!("{}:{}", self.dir.display(), std::env::var("PATH").unwrap())
    }

    /// kubectl (or another program) with this directory first on PATH and `kubeconfig`.
    fn run(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        kubeconfig: &Path,
        args: &[&str],
    ) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("PATH", self.path())
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", &self.dir)
            .stdin(Stdio::null());
        output_within(cmd, Duration::from_secs(60))
    }

    /// The candidates kubectl offers for `words` (the last one being completed).
    fn complete(&self, kubeconfig: &Path, words: &[&str]) -> Vec<String> {
        let mut args = vec!["__complete", "onboard"];
        args.extend_from_slice(words);
        let out = self.run(kubectl(), kubeconfig, &args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
        let directive = lines.pop().unwrap_or_default();
        assert!(directive.starts_with(':'), "no directive line: {stdout}");
        lines
    }

    fn install(&self) {
        let out = self.run(
            kubectl(),
            Path::new("/nonexistent"),
            &["onboard", "completion", "kubectl"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("now completes through kubectl"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd`, killing it if it has not ended within `limit` (a hang is a failure, not a wait).
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn values(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect()
}

#[test]
fn kubectl_completes_subcommands_flags_and_values_once_the_helper_is_installed() {
    let plugin = PluginDir::new();
    let nowhere = Path::new("/nonexistent");
    assert!(
        plugin.complete(nowhere, &["ap"]).is_empty(),
        "kubectl completes nothing before the helper is there"
    );
    plugin.install();
    let helper = plugin.dir.join("kubectl_complete-onboard");
    assert_eq!(
        fs::read_link(&helper).unwrap(),
        Path::new("kubectl-onboard")
    );
    plugin.install(); // again: already in place, not an error

    assert_eq!(values(&plugin.complete(nowhere, &["ap"])), ["approve"]);
    let flags = plugin.complete(nowhere, &["jane", "--key-al"]);
    assert_eq!(values(&flags), ["--key-algorithm"]);
    assert!(flags[0].contains("\tkey to generate"), "{flags:?}");
    assert_eq!(
        values(&plugin.complete(nowhere, &["jane", "--key-algorithm", "ecdsa"])),
        ["ecdsa-p256", "ecdsa-p384"]
    );
    assert_eq!(
        values(&plugin.complete(nowhere, &["pending", "--output=y"])),
        ["--output=yaml"]
    );
    assert!(values(&plugin.complete(nowhere, &["completion", ""])).contains(&"kubectl"));

    // A helper of someone else's is not replaced.
    fs::remove_file(&helper).unwrap();
    fs::write(&helper, "#!/bin/sh\n").unwrap();
    let out = plugin.run(kubectl(), nowhere, &["onboard", "completion", "kubectl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and does not lead to"));
}

#[test]
fn cluster_backed_candidates_come_from_the_kubeconfig_and_the_cluster() {
    let cluster = Cluster::shared();
    let plugin = PluginDir::new();
    plugin.install();
    let admin = Env::admin(cluster);

    // A request waiting for approval, made by a self-service run.
    let requester = Env::bootstrap(cluster);
    let user = unique("tab");
    let mut waiting = requester.spawn(&[&user, "--group", "dev", "--timeout", "2m"]);
    let name = wait_for_csr(cluster, &user);

    let pending = plugin.complete(&admin.kubeconfig, &["approve", ""]);
    let line = pending
        .iter()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("{name} not offered: {pending:?}"));
    assert!(line.contains(&format!("CN={user} O=dev")), "{line}");
    assert!(
        values(&plugin.complete(&admin.kubeconfig, &["deny", "--reason", "x", &name[..4]]))
            .contains(&name.as_str())
    );

    // The bash script asks the same binary.
    let script = plugin.run(BIN, &admin.kubeconfig, &["completion", "bash"]);
    let script_path = plugin.dir.join("onboard.bash");
    fs::write(&script_path, &script.stdout).unwrap();
    let bash = format!(
        "source {}; COMP_WORDS=(kubectl-onboard approve ''); COMP_CWORD=2; _kubectl-onboard; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script_path.display()
    );
    let out = plugin.run("bash", &admin.kubeconfig, &["-c", &bash]);
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        offered.lines().any(|l| l == name),
        "bash offered {offered:?}"
    );
    let _ = waiting.kill();
    let _ = waiting.wait();

    let roles = plugin.complete(&admin.kubeconfig, &["jane", "--clusterrole", "cluster-ad"]);
    assert_eq!(values(&roles), ["cluster-admin"]);
    let namespaces = plugin.complete(&admin.kubeconfig, &["jane", "-n", "kube-"]);
    assert!(
        values(&namespaces).contains(&"kube-system"),
        "{namespaces:?}"
    );
    assert_eq!(
        values(&plugin.complete(&admin.kubeconfig, &["jane", "--context", ""])),
        ["admin@local"]
    );
    let users = plugin.complete(&admin.kubeconfig, &["renew", ""]);
    assert_eq!(
        values(&users)[0],
        "admin",
        "the kubeconfig's users, then the flags"
    );
    assert!(
        values(&users)[1..].iter().all(|v| v.starts_with("--")),
        "{users:?}"
    );
    assert_eq!(
        values(&plugin.complete(&admin.kubeconfig, &["renew", "a"])),
        ["admin"]
    );
}

/// A server that accepts connections and never answers: completion gives up (nothing offered,
/// exit 0, nothing on stderr) instead of hanging the shell.
#[test]
fn a_server_that_does_not_answer_gives_no_candidates_and_no_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("onboard-silent-{}", random_hex(6)));
    fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: s\n  context: {{cluster: s, user: u}}\ncurrent-context: s\nusers:\n- name: u\n  user: {{token: t}}\n"),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["__complete", "approve", "a"])
        .env("KUBECONFIG", &kubeconfig);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), ":36\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(listener);
    let _ = fs::remove_dir_all(&dir);
}

/// A user whose exec plugin prompts and then sleeps: completion shows no prompt, runs nothing
/// interactively and gives up within its limit (it held the shell for as long as the plugin
/// ran).
#[test]
fn an_exec_plugin_that_prompts_or_sleeps_holds_nothing_up() {
    let dir = std::env::temp_dir().join(format!("onboard-exec-{}", random_hex(6)));
    fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    let marker = dir.join("read-from-terminal");
    fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\ncontexts:\n- name: s\n  context: {{cluster: s, user: u}}\ncurrent-context: s\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"echo 'Password: ' >&2; read answer && touch {}; sleep 30\"]\n      interactiveMode: IfAvailable\n",
            marker.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["__complete", "approve", ""])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::piped());
    let started = Instant::now();
    let out = output_within(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0));
    // The flags (from argh), and nothing from the cluster.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&":36"), "{stdout}");
    assert!(
        lines[..lines.len() - 1].iter().all(|l| l.starts_with("--")),
        "{stdout}"
    );
    assert!(
        out.stderr.is_empty(),
        "the plugin's prompt reached the terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists(), "the plugin read from our stdin");
    assert!(started.elapsed() < Duration::from_secs(20));
    let _ = fs::remove_dir_all(&dir);
}
