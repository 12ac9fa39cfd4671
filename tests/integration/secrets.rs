//! Files that hold a private key, against a hostile local environment: a planted symlink, a
//! file another user created, a kubeconfig others may read, one the caller may not write.
//! Offline signing with a CA made here, so that only the file system is in play. The parts that
//! need a second local user run as root (CI does) and use uid 65534 through setpriv.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-onboard");
const NOBODY: u32 = 65534;

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "onboard-secrets-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        fs::create_dir_all(dir.join("home/.kube")).unwrap();
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=test-ca",
            ])
            .args(["-days", "2"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Scratch { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.home().join(".kube/config")
    }

    /// `kubectl onboard USER` offline (no proof), with `extra` flags; as `uid` when given.
    fn onboard(&self, user: &str, extra: &[&str], uid: Option<u32>) -> Output {
        let ca = |f: &str| self.dir.join(f).display().to_string();
        let mut args: Vec<String> = [user, "--no-verify", "--server", "https://127.0.0.1:1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--ca-cert".into(),
            ca("ca.crt"),
            "--ca-key".into(),
            ca("ca.key"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = match uid {
            None => Command::new(BIN),
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.args([format!("--reuid={uid}"), format!("--regid={uid}")])
                    .args(["--clear-groups", "--", BIN]);
                c
            }
        };
        cmd.args(&args)
            .env("HOME", self.home())
            .env("KUBECONFIG", self.kubeconfig())
            .output()
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

#[test]
fn a_private_key_is_never_written_through_a_planted_symlink() {
    let s = Scratch::new("symlink");
    // --output-kubeconfig (with --force) pointing at someone's file.
    let victim = s.dir.join("victim");
    fs::write(&victim, "theirs\n").unwrap();
    let link = s.dir.join("jane.kubeconfig");
    symlink(&victim, &link).unwrap();
    let out = s.onboard(
        "jane",
        &["--output-kubeconfig", link.to_str().unwrap(), "--force"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "theirs\n");

    // --embed=false: a dangling link where the key file goes.
    let onboard_dir = s.home().join(".kube/onboard");
    fs::create_dir_all(&onboard_dir).unwrap();
    let elsewhere = s.dir.join("stolen.key");
    symlink(&elsewhere, onboard_dir.join("bob@127.0.0.1.key")).unwrap();
    let out = s.onboard("bob", &["--embed=false"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert!(!elsewhere.exists(), "the key went where the link points");
    assert!(
        !s.kubeconfig().exists(),
        "the kubeconfig was written after all"
    );
    assert!(!onboard_dir.join("bob@127.0.0.1.crt").exists());
}

#[test]
fn a_file_with_a_key_belongs_to_the_caller_and_others_are_told_when_they_can_read_one() {
    let s = Scratch::new("owner");
    // A kubeconfig others may read: merged as kubectl would (mode kept), with a warning.
    fs::write(s.kubeconfig(), "apiVersion: v1\nkind: Config\n").unwrap();
    fs::set_permissions(s.kubeconfig(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.onboard("jane", &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("may be read by others (mode 0644)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::metadata(s.kubeconfig()).unwrap().mode() & 0o777, 0o644);

    if !is_root() {
        eprintln!("not root: the part with a file of another user is skipped");
        return;
    }
    // Another user's file in a shared sticky directory, replaced with --force: ours, 0600.
    let shared = s.dir.join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = shared.join("jane.kubeconfig");
    fs::write(&planted, "planted\n").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o644)).unwrap();
    chown(&planted, NOBODY);
    let args = ["--output-kubeconfig", planted.to_str().unwrap(), "--force"];
    let out = s.onboard("jane", &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::symlink_metadata(&planted).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    assert!(
        fs::read_to_string(&planted)
            .unwrap()
            .contains("client-key-data")
    );
}

#[test]
fn a_kubeconfig_kubectl_could_not_write_is_not_replaced_behind_its_owners_back() {
    if !is_root() {
        eprintln!("not root: there is no second user to run as; skipped");
        return;
    }
    let s = Scratch::new("foreign");
    for path in [s.dir.clone(), s.home(), s.home().join(".kube")] {
        chown(&path, NOBODY);
    }
    for file in ["ca.crt", "ca.key"] {
        chown(&s.dir.join(file), NOBODY);
    }
    let config = "apiVersion: v1\nkind: Config\nclusters: []\n";
    // The caller's own kubeconfig, read-only (0400): refused before anything is signed.
    fs::write(s.kubeconfig(), config).unwrap();
    chown(&s.kubeconfig(), NOBODY);
    fs::set_permissions(s.kubeconfig(), fs::Permissions::from_mode(0o400)).unwrap();
    let out = s.onboard("jane", &[], Some(NOBODY));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not writable for you (mode 0400"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(s.kubeconfig()).unwrap(), config);

    // Root's file in the caller's directory, writable by all: a rename would make it the
    // caller's, so it is refused, and stays root's.
    fs::set_permissions(s.kubeconfig(), fs::Permissions::from_mode(0o666)).unwrap();
    chown(&s.kubeconfig(), 0);
    let out = s.onboard("jane", &[], Some(NOBODY));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("belongs to another user (uid 0)"),
        "{}",
        stderr(&out)
    );
    let meta = fs::metadata(s.kubeconfig()).unwrap();
    assert_eq!(
        (meta.uid(), fs::read_to_string(s.kubeconfig()).unwrap()),
        (0, config.into())
    );
}
