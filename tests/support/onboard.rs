//! Runs the real kubectl-onboard binary in a scratch HOME with a kubeconfig of its own, and the
//! real kubectl against what it wrote. On a failed expectation it shows the command and both
//! output streams.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, kubectl, random_hex};

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-onboard");

pub struct Env<'a> {
    pub cluster: &'a Cluster,
    pub home: PathBuf,
    pub kubeconfig: PathBuf,
}

/// The outcome of one run of kubectl-onboard.
pub struct Run {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(command: String, out: Output) -> Run {
        Run {
            command,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn success(self) -> Run {
        self.code(0)
    }

    /// Asserts the exit code; on mismatch shows everything.
    pub fn code(self, expected: i32) -> Run {
        assert_eq!(self.code, Some(expected), "{self}");
        self
    }

    /// Asserts that stderr has exactly one line starting `error:` and that it contains `text`.
    pub fn error_says(self, text: &str) -> Run {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "expected one error line\n{self}");
        assert!(
            errors[0].contains(text),
            "expected the error to say {text:?}\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl<'a> Env<'a> {
    /// A scratch HOME whose KUBECONFIG is a copy of `kubeconfig`.
    pub fn new(cluster: &'a Cluster, kubeconfig: &Path) -> Env<'a> {
        let home = std::env::temp_dir().join(format!("onboard-test-{}", random_hex(6)));
        fs::create_dir_all(home.join(".kube")).unwrap();
        let copy = home.join(".kube").join("config");
        fs::copy(kubeconfig, &copy).unwrap();
        Env {
            cluster,
            home,
            kubeconfig: copy,
        }
    }

    /// As the cluster admin (may approve).
    pub fn admin(cluster: &'a Cluster) -> Env<'a> {
        Env::new(cluster, &cluster.admin_kubeconfig)
    }

    /// As the bootstrap user `onboarder`: may create, get, list and watch CSRs, nothing else.
    pub fn bootstrap(cluster: &'a Cluster) -> Env<'a> {
        Env::new(cluster, &cluster.bootstrap_kubeconfig)
    }

    fn with_env(&self, mut cmd: Command) -> Command {
        cmd.env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.home.join("kubecache"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn onboard_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.with_env(Command::new(BIN));
        cmd.args(args);
        cmd
    }

    pub fn onboard(&self, args: &[&str]) -> Run {
        let out = self
            .onboard_command(args)
            .output()
            .expect("run kubectl-onboard");
        Run::from(format!("kubectl onboard {}", args.join(" ")), out)
    }

    /// Starts kubectl-onboard without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.onboard_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl-onboard")
    }

    /// The real kubectl, reading this environment's KUBECONFIG.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.with_env(Command::new(kubectl()))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// kubectl that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl --context <context> auth whoami -o json`: (username, groups).
    pub fn whoami(&self, context: &str) -> (String, Vec<String>) {
        let json = self.kubectl_ok(&["--context", context, "auth", "whoami", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let info = &v["status"]["userInfo"];
        let groups = info["groups"]
            .as_array()
            .map(|g| g.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        (
            info["username"].as_str().unwrap_or_default().to_string(),
            groups,
        )
    }

    /// `kubectl config view --raw -o json` of this environment.
    pub fn config_view(&self) -> serde_json::Value {
        serde_json::from_str(&self.kubectl_ok(&["config", "view", "--raw", "-o", "json"])).unwrap()
    }

    /// The `user:` body of kubeconfig user `name`, as kubectl reads it.
    pub fn user_entry(&self, name: &str) -> serde_json::Value {
        let view = self.config_view();
        let users = view["users"].as_array().cloned().unwrap_or_default();
        let entry = users.into_iter().find(|u| u["name"] == name);
        entry.unwrap_or_else(|| panic!("no user {name} in the kubeconfig"))["user"].clone()
    }

    pub fn kubeconfig_bytes(&self) -> Vec<u8> {
        fs::read(&self.kubeconfig).unwrap()
    }
}

impl Drop for Env<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// A user name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(3))
}

/// The name of the CSR kubectl-onboard made for `user`, once it exists.
pub fn wait_for_csr(cluster: &Cluster, user: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: serde_json::Value =
            serde_json::from_str(&cluster.admin(&["get", "csr", "-o", "json"])).unwrap();
        let found = list["items"].as_array().unwrap().iter().find(|csr| {
            csr["metadata"]["annotations"]["kubectl-onboard/user"].as_str() == Some(user)
        });
        if let Some(csr) = found {
            return csr["metadata"]["name"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no CSR for {user} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the CSR exists (as the admin sees it).
pub fn csr_exists(cluster: &Cluster, name: &str) -> bool {
    let out = cluster.kubectl(
        &cluster.admin_kubeconfig,
        &["get", "csr", name, "-o", "name"],
    );
    if out.status.success() {
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NotFound") || stderr.contains("not found"),
        "{stderr}"
    );
    false
}

/// Waits for a spawned run and collects its outcome.
pub fn finish(child: Child, command: &str) -> Run {
    let out = child.wait_with_output().expect("wait for kubectl-onboard");
    Run::from(command.to_string(), out)
}

/// Everything in a `kubectl config view` except the named user and context, to compare a
/// kubeconfig before and after an onboarding.
pub fn without(view: &serde_json::Value, user: &str, context: &str) -> serde_json::Value {
    let mut v = view.clone();
    for (section, name) in [("users", user), ("contexts", context)] {
        if let Some(list) = v[section].as_array_mut() {
            list.retain(|e| e["name"].as_str() != Some(name));
        }
    }
    v
}
