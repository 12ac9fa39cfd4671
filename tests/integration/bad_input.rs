//! Bad input, case by case: each gives one line that says what is wrong and what to do, the
//! documented exit code, and leaves every file exactly as it was (no lock or temporary file
//! behind either).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Cluster;
use crate::support::cluster::random_hex;
use crate::support::onboard::BIN;

const USAGE: i32 = 2;
const FAILED: i32 = 1;

/// A scratch directory standing in for HOME, with a kubeconfig in `.kube/config`.
struct Scratch {
    home: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let home = std::env::temp_dir().join(format!("onboard-bad-{}", random_hex(6)));
        fs::create_dir_all(home.join(".kube")).unwrap();
        Scratch { home }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.home.join(".kube/config")
    }

    fn with_kubeconfig(text: &str) -> Scratch {
        let s = Scratch::new();
        fs::write(s.kubeconfig(), text).unwrap();
        s
    }

    /// The admin kubeconfig of `cluster`, edited by `change`.
    fn from_admin(cluster: &Cluster, change: impl Fn(String) -> String) -> Scratch {
        Scratch::with_kubeconfig(&change(
            fs::read_to_string(&cluster.admin_kubeconfig).unwrap(),
        ))
    }

    /// Every file below HOME with its bytes (symlinks as their target path).
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).unwrap();
                if meta.file_type().is_symlink() {
                    out.insert(
                        path.clone(),
                        fs::read_link(&path)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes(),
                    );
                } else if meta.is_dir() {
                    if path.ends_with("kubecache") {
                        continue;
                    }
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), fs::read(&path).unwrap_or_default());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.home, &mut out);
        out
    }

    /// Runs kubectl-onboard with KUBECONFIG at our kubeconfig (unless `env` says otherwise)
    /// and checks the three promises.
    fn expect(&self, args: &[&str], env: &[(&str, &str)], code: i32, says: &str) {
        let before = self.snapshot();
        let kubeconfig = self.kubeconfig();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", &self.home)
            .env("KUBECONFIG", &kubeconfig)
            .env("KUBECACHEDIR", self.home.join("kubecache"));
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown = format!(
            "$ kubectl onboard {}\nexit {:?}\n{stderr}",
            args.join(" "),
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(code), "{shown}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{shown}");
        assert!(errors[0].contains(says), "expected {says:?}\n{shown}");
        assert!(out.stdout.is_empty(), "{shown}");
        assert_eq!(self.snapshot(), before, "files changed\n{shown}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.home);
    }
}

fn kubeconfig_for(server: &str, extra_cluster: &str, user_body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{extra_cluster}contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n{user_body}"
    )
}

#[test]
fn bad_arguments_are_usage_errors_before_any_request() {
    // No kubeconfig at all: a usage error must not even look for one.
    let s = Scratch::new();
    let long = "a".repeat(300);
    let cases: &[(&[&str], &str)] = &[
        (&[""], "empty"),
        (&["/"], "cannot form a CSR object name"),
        (&[".."], "must start with a letter or digit"),
        (&[&long], "too long"),
        (&["jané"], "cannot form a CSR object name"),
        (&["-dash"], "Unrecognized argument: -dash"),
        (&["system:kube-proxy"], "reserved for Kubernetes components"),
        (&["a b"], "cannot form a CSR object name"),
        (&["jane", "--duration", "5m"], "10m or more"),
        (&["jane", "--duration=-1h"], "is not a duration"),
        (&["jane", "--duration", "abc"], "is not a duration"),
        (&["jane", "--duration", "100y"], "too long"),
        (
            &["jane", "--group", "system:masters"],
            "CertificateSubjectRestriction",
        ),
        (&["jane", "--group", ""], "--group is empty"),
        (
            &["jane", "--group", "system:nodes"],
            "group 'system:nodes' is in the system: namespace",
        ),
        (
            &["jane", "-g", "dev", "-g", "system:serviceaccounts:default"],
            "group 'system:serviceaccounts:default' is in the system: namespace",
        ),
        (&["jane", "--key-algorithm", "dsa"], "use rsa-2048"),
        (
            &["jane", "--key", "k.pem", "--key-algorithm", "rsa-2048"],
            "exclude each other",
        ),
        (
            &["jane", "--key", "/nonexistent/k.pem"],
            "cannot read --key",
        ),
        (&["jane", "-o", "table"], "use -o json or -o yaml"),
        (&["jane", "--timeout", "0s"], "more than 0s"),
        (
            &["jane", "--output-kubeconfig", "x", "--embed=false"],
            "drop --embed=false",
        ),
        (&["jane", "-n", "Bad_NS"], "namespace 'Bad_NS' is not valid"),
        (&["jane", "--approve=maybe"], "=true/=false"),
        (
            &["jane", "--frobnicate"],
            "Unrecognized argument: --frobnicate",
        ),
        (&["--approve"], "Required positional arguments not provided"),
        (&["completion", "tcsh"], "use bash, zsh or fish"),
    ];
    for (args, says) in cases {
        s.expect(args, &[], USAGE, says);
    }
}

#[test]
fn bad_key_files_are_named() {
    let s = Scratch::new();
    let dir = s.home.join("keys");
    fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        assert!(
            Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap()
                .status
                .success()
        )
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-aes256",
        "-pass",
        "pass:x",
        "-out",
        "enc.pem",
    ]);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        "cert.pem",
        "-subj",
        "/CN=x",
    ]);
    openssl(&["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    // Larger than the 4096 bits whose signatures approve and sign can check.
    openssl(&["genrsa", "-out", "big.pem", "4160"]);
    for (file, says) in [
        ("enc.pem", "it is encrypted: decrypt it first"),
        ("big.pem", "its RSA key has 4160 bits, more than the 4096"),
        (
            "cert.pem",
            "its PEM block is 'CERTIFICATE', not a private key",
        ),
        ("ed.pem", "is not supported: use RSA or ECDSA"),
    ] {
        let path = dir.join(file);
        s.expect(&["jane", "--key", path.to_str().unwrap()], &[], USAGE, says);
    }
}

#[test]
fn broken_kubeconfigs_are_explained() {
    let secret = "s3cr3t-t0ken-value";
    let server = "https://127.0.0.1:1";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no current context"),
        (
            format!("users:\n- name: u\n  user:\n    token: {secret}\n   bad: [\n"),
            "is not valid YAML at line",
        ),
        (
            "apiVersion: v1\nkind: Pod\n".into(),
            "its kind is \"Pod\", not Config",
        ),
        ("users: {a: 1}\n".into(), "its 'users' is not a list"),
        ("- just\n- a list\n".into(), "it is not a YAML mapping"),
        (
            kubeconfig_for(server, "", "    token: t\n").replace("current-context: ctx\n", ""),
            "no current context",
        ),
        (
            kubeconfig_for(server, "", "    token: t\n").replace("cluster: c\n", "cluster: gone\n"),
            "points at cluster \"gone\", which is not in",
        ),
        (
            kubeconfig_for(server, "", "    token: t\n").replace(
                &format!("server: {server}\n"),
                "insecure-skip-tls-verify: true\n",
            ),
            "has no server URL",
        ),
        (
            kubeconfig_for(
                server,
                "    certificate-authority: /nonexistent/ca.crt\n",
                "    token: t\n",
            ),
            "cannot read /nonexistent/ca.crt (certificate-authority in",
        ),
        (
            kubeconfig_for(
                server,
                "    certificate-authority-data: '%%%'\n",
                "    token: t\n",
            ),
            "not base64",
        ),
        (
            kubeconfig_for(
                server,
                "    proxy-url: ftp://proxy.example:21\n",
                "    token: t\n",
            ),
            "proxy-url ftp://… uses a scheme kubectl onboard cannot use",
        ),
        // `token: |` keeps the final newline: kubectl refuses it; kube would panic on it.
        (
            kubeconfig_for(server, "", &format!("    token: |\n      {secret}\n")),
            "the token of user \"u\" cannot be sent in an HTTP header",
        ),
        // The same from an exec plugin, which kube runs while it builds its client.
        (
            kubeconfig_for(
                server,
                "",
                &format!(
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      interactiveMode: Never\n      args: [\"-c\", \"printf '%s' '{{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{{\\\"token\\\":\\\"{secret}\\\\nmore\\\"}}}}'\"]\n"
                ),
            ),
            "cannot be sent in an HTTP header",
        ),
        // A plugin that fails saying the token on stderr, and one that prints it as bad JSON:
        // named with its status, its words never repeated.
        (
            kubeconfig_for(
                server,
                "",
                &format!(
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      interactiveMode: Never\n      args: [\"-c\", \"echo {secret}; echo {secret} >&2; exit 3\"]\n"
                ),
            ),
            "the exec plugin sh failed (exit status: 3)",
        ),
        (
            kubeconfig_for(
                server,
                "",
                &format!(
                    "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      interactiveMode: Never\n      args: [\"-c\", \"echo '{{token: {secret}'\"]\n"
                ),
            ),
            "the exec plugin printed something that is not an ExecCredential",
        ),
    ];
    for (text, says) in &cases {
        let s = Scratch::with_kubeconfig(text);
        s.expect(&["jane"], &[], FAILED, says);
        let out = Command::new(BIN)
            .arg("jane")
            .env("KUBECONFIG", s.kubeconfig())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains(secret),
            "an error quoted the kubeconfig: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && out.status.code() == Some(1),
            "{stderr}"
        );
    }
    let s = Scratch::with_kubeconfig(&kubeconfig_for(server, "", "    token: t\n"));
    s.expect(
        &["jane", "--context", "nope"],
        &[],
        FAILED,
        "context \"nope\" is not in",
    );
    s.expect(
        &["jane", "--kubeconfig", "/nonexistent/config"],
        &[],
        FAILED,
        "does not exist; pass an existing file to --kubeconfig",
    );
    // Not UTF-8, and a directory where the file should be.
    fs::write(s.kubeconfig(), b"\xff\xfe\x00k").unwrap();
    s.expect(&["jane"], &[], FAILED, "is not UTF-8 text");
    let dir = Scratch::new();
    fs::create_dir_all(dir.kubeconfig()).unwrap();
    dir.expect(&["jane"], &[], FAILED, "cannot read kubeconfig");
    // No KUBECONFIG and no ~/.kube/config.
    let empty = Scratch::new();
    empty.expect(
        &["jane"],
        &[("KUBECONFIG", "")],
        FAILED,
        "no kubeconfig found at",
    );
    // A dangling symlink as the only KUBECONFIG entry.
    let dangling = Scratch::new();
    std::os::unix::fs::symlink(dangling.home.join("missing"), dangling.kubeconfig()).unwrap();
    dangling.expect(&["jane"], &[], FAILED, "no kubeconfig found at");
}

/// kubectl trims a tokenFile (client-go's TrimSpace), so one written with `echo` works.
#[test]
fn a_token_file_ending_in_a_newline_works_as_with_kubectl() {
    let cluster = Cluster::shared();
    let s = Scratch::new();
    let token_file = s.home.join("token");
    fs::write(&token_file, format!("{}\n", cluster.bootstrap_token)).unwrap();
    let user_body = format!("    tokenFile: {}\n", token_file.display());
    cluster.write_kubeconfig(&s.kubeconfig(), "onboarder", &user_body);
    let out = Command::new(BIN)
        .args(["pending", "-o", "json"])
        .env("HOME", &s.home)
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed["pending"].is_array(), "{listed}");
}

/// An admin client certificate of X.509 v1, as `openssl x509 -req` makes without an extensions
/// file: kubectl accepts it, and so must we (rustls alone refuses it; see src/tls.rs). The key
/// check rustls then skips is made by us: a key from another pair is named, before any request.
#[test]
fn an_x509_v1_admin_certificate_works_and_a_foreign_key_is_named() {
    let cluster = Cluster::shared();
    let s = Scratch::new();
    let dir = &s.home;
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let admin = format!("v1-admin-{}", random_hex(4));
    for (stem, subject) in [
        ("v1", format!("/CN={admin}/O=system:masters")),
        ("other", "/CN=other".into()),
    ] {
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{stem}.key"),
            "-out",
            &format!("{stem}.csr"),
            "-subj",
            &subject,
        ]);
    }
    let (ca_cert, ca_key) = (
        cluster.ca_cert.to_str().unwrap(),
        cluster.ca_key.to_str().unwrap(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "v1.csr",
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-days",
        "1",
        "-set_serial",
        "0x1234",
        "-out",
        "v1.crt",
    ]);
    let text = Command::new("openssl")
        .args(["x509", "-in", "v1.crt", "-noout", "-text"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "not a v1 certificate"
    );

    let user_body = |key: &str| {
        format!(
            "    client-certificate: {}\n    client-key: {}\n",
            dir.join("v1.crt").display(),
            dir.join(key).display()
        )
    };
    cluster.write_kubeconfig(&s.kubeconfig(), &admin, &user_body("v1.key"));
    let whoami = cluster.kubectl(
        &s.kubeconfig(),
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        admin,
        "kubectl itself accepts the v1 certificate"
    );

    let user = format!("v1-made-{}", random_hex(4));
    let out = Command::new(BIN)
        .args([user.as_str(), "--approve", "--group", "dev", "-q"])
        .env("HOME", dir)
        .env("KUBECONFIG", s.kubeconfig())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whoami = cluster.kubectl(
        &s.kubeconfig(),
        &[
            "--context",
            &format!("{user}@local"),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&whoami.stdout), user);

    let s = Scratch::new();
    fs::copy(dir.join("v1.crt"), s.home.join("v1.crt")).unwrap();
    fs::copy(dir.join("other.key"), s.home.join("other.key")).unwrap();
    cluster.write_kubeconfig(
        &s.kubeconfig(),
        &admin,
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            s.home.join("v1.crt").display(),
            s.home.join("other.key").display()
        ),
    );
    s.expect(
        &["pending"],
        &[],
        FAILED,
        "the client key does not belong to the client certificate",
    );
}

#[test]
fn cluster_side_refusals_are_explained() {
    let cluster = Cluster::shared();
    let port = cluster.server.rsplit(':').next().unwrap().to_string();

    let unreachable = Scratch::from_admin(cluster, |t| {
        t.replace(&cluster.server, "https://127.0.0.1:1")
    });
    unreachable.expect(
        &["jane"],
        &[],
        FAILED,
        "cannot reach the API server at https://127.0.0.1:1 while checking your permissions",
    );

    let wrong_name = Scratch::from_admin(cluster, |t| {
        t.replace(
            &format!("server: {}", cluster.server),
            &format!("server: https://127.0.0.1:{port}\n    tls-server-name: wrong.example"),
        )
    });
    wrong_name.expect(&["jane"], &[], FAILED, "wrong.example");

    let intruder = Scratch::new();
    cluster.write_kubeconfig(
        &intruder.kubeconfig(),
        "intruder",
        "    token: not-a-valid-token\n",
    );
    intruder.expect(
        &["jane"],
        &[],
        FAILED,
        "rejected your credentials (401 Unauthorized)",
    );

    let sa = format!("nobody-{}", random_hex(3));
    cluster.admin(&["create", "serviceaccount", &sa, "-n", "default"]);
    let token = cluster.admin(&["create", "token", &sa, "-n", "default"]);
    let nobody = Scratch::new();
    cluster.write_kubeconfig(
        &nobody.kubeconfig(),
        &sa,
        &format!("    token: {}\n", token.trim()),
    );
    nobody.expect(&["jane"], &[], FAILED, r#"you may not create CertificateSigningRequests; an administrator must grant the RBAC rule {apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests"], verbs: ["create"]}"#);

    let bootstrap = Scratch::new();
    fs::copy(&cluster.bootstrap_kubeconfig, bootstrap.kubeconfig()).unwrap();
    bootstrap.expect(
        &["jane", "--approve"],
        &[],
        FAILED,
        "you may not approve requests",
    );

    let clash = Scratch::from_admin(cluster, |t| t);
    clash.expect(
        &["admin", "--approve"],
        &[],
        FAILED,
        "user \"admin\" already exists",
    );

    let locked = Scratch::from_admin(cluster, |t| t);
    fs::write(locked.home.join(".kube/config.lock"), b"").unwrap();
    locked.expect(&["jane", "--approve"], &[], FAILED, "config.lock exists");

    let out = Scratch::from_admin(cluster, |t| t);
    let existing = out.home.join("handed-out.kubeconfig");
    fs::write(&existing, "precious").unwrap();
    out.expect(
        &[
            "jane",
            "--approve",
            "--output-kubeconfig",
            existing.to_str().unwrap(),
        ],
        &[],
        FAILED,
        "already exists; pass --force to overwrite it",
    );
}

/// A tmpfs mounted at `dir`, or `None` where we may not mount (not root).
fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
    fs::create_dir_all(dir).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| Mount(dir.to_path_buf()))
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn unwritable_and_full_file_systems_change_nothing() {
    let cluster = Cluster::shared();
    let admin = fs::read_to_string(&cluster.admin_kubeconfig).unwrap();

    // Read-only: found by the lock probe, before a certificate is requested.
    let ro = Scratch::new();
    let kube = ro.home.join(".kube");
    let Some(_mount) = tmpfs(&kube, "size=1m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    fs::write(ro.kubeconfig(), &admin).unwrap();
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&kube)
            .status()
            .unwrap()
            .success()
    );
    ro.expect(&["jane", "--approve"], &[], FAILED, "Read-only file system");

    // Full: the write fails after the certificate came; everything is rolled back and the
    // request withdrawn.
    let full = Scratch::new();
    let kube = full.home.join(".kube");
    let _mount = tmpfs(&kube, "size=64k").unwrap();
    fs::write(full.kubeconfig(), &admin).unwrap();
    let filler = kube.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=64"])
        .arg(format!("of={}", filler.display()))
        .output();
    full.expect(
        &["jane-full", "--approve"],
        &[],
        FAILED,
        "No space left on device (free some space)",
    );
    let csrs = cluster.admin(&["get", "csr", "-o", "json"]);
    assert!(
        !csrs.contains("\"kubectl-onboard/user\": \"jane-full\""),
        "the request was not withdrawn"
    );
}

/// A cluster used with insecure-skip-tls-verify: said once, and never copied into a kubeconfig
/// made for someone else unless asked.
#[test]
fn an_insecure_cluster_is_said_once_and_not_handed_on() {
    let cluster = Cluster::shared();
    let insecure = |t: String| {
        let ca = t
            .lines()
            .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
            .unwrap()
            .to_string();
        t.replace(&ca, "    insecure-skip-tls-verify: true")
    };
    let warning = "is used with insecure-skip-tls-verify";
    let s = Scratch::from_admin(cluster, insecure);
    let handed = s.home.join("jane.kubeconfig");
    s.expect(
        &[
            "jane",
            "--approve",
            "--output-kubeconfig",
            handed.to_str().unwrap(),
        ],
        &[],
        FAILED,
        "a kubeconfig made for someone else would not check whom it talks to",
    );
    assert!(!handed.exists());

    // Merged into one's own kubeconfig it works, with the warning once.
    let user = format!("insecure-{}", random_hex(3));
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("HOME", &s.home)
            .env("KUBECONFIG", s.kubeconfig())
            .output()
            .unwrap()
    };
    let out = run(&[&user, "--approve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");

    // Asked for, the setting is copied, with the warning.
    let other = format!("insecure-{}", random_hex(3));
    let args = [
        "--approve",
        "--allow-insecure-cluster",
        "--output-kubeconfig",
    ];
    let out = run(&[&[other.as_str()][..], &args, &[handed.to_str().unwrap()]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fs::read_to_string(&handed)
            .unwrap()
            .contains("insecure-skip-tls-verify: true")
    );
}

/// A server that accepts connections and never answers: every command that talks to it ends
/// within --request-timeout and says so (revoke, certificates, invitations, pending, approve
/// --invited, invite and offboard --revoke never ended).
#[test]
fn every_command_gives_up_on_a_server_that_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!(
        "onboard-silent-{}",
        crate::support::cluster::random_hex(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\ncontexts:\n- name: s\n  context: {{cluster: s, user: u}}\ncurrent-context: s\nusers:\n- name: u\n  user: {{token: t}}\n",
            crate::support::cluster::base64(Cluster::shared().ca_pem().as_bytes())),
    )
    .unwrap();
    let invitation = dir.join("x.invite");
    let invitation = invitation.to_str().unwrap();
    for args in [
        &["revoke", "--list"][..],
        &["revoke", "jane"],
        &["unrevoke", "jane"],
        &["certificates"],
        &["invitations"],
        &["pending"],
        &["approve", "--invited"],
        &["deny", "jane-abc123"],
        &["invite", "jane", "--output", invitation],
        &["offboard", "jane", "--revoke"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--request-timeout", "2s"]);
        let started = std::time::Instant::now();
        let out = std::process::Command::new(crate::support::onboard::BIN)
            .args(&all)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", &dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{all:?}: {stderr}");
        assert!(
            stderr.contains("did not answer within 2s"),
            "{all:?} ({:?}): {stderr}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{all:?} took {:?}",
            started.elapsed()
        );
    }
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
