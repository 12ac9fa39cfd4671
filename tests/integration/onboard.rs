//! `kubectl onboard <user>` end to end, on the real control plane, with the real kubectl as the
//! judge of what we wrote. Nothing here is mocked.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::onboard::{Env, Run, csr_exists, finish, unique, wait_for_csr, without};
use crate::support::{Cluster, Options};
use base64ct::{Base64, Encoding};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn admin_flow_adds_a_working_user_and_changes_nothing_else() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("jane");
    fs::set_permissions(&env.kubeconfig, fs::Permissions::from_mode(0o640)).unwrap();
    // Fields we do not model, with scalars a JSON value cannot hold as written (kubectl itself
    // reads 017 as 15, YAML 1.1 octal): they must come back in the same type and text.
    let vendor = "- name: vendor\n  extension:\n    version: 1.10\n    mode: 017\n    big: 123456789012345678901234567890\n    blob: !!binary R0lGODlh\n";
    let mut text = fs::read_to_string(&env.kubeconfig).unwrap();
    text.push_str(&format!("extensions:\n{vendor}"));
    fs::write(&env.kubeconfig, text).unwrap();
    let before = env.config_view();
    assert_eq!(before["extensions"][0]["extension"]["mode"], 15, "{before}");

    let run = env
        .onboard(&[&user, "--group", "dev", "--approve"])
        .success();
    let context = format!("{user}@{}", cluster.name);
    // The one warning: the group may read the file, which now holds a key (mode kept, 0640).
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{run}");
    assert!(
        warnings[0].contains("may be read by others (mode 0640)"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "Authenticated as {user} (groups: dev, system:authenticated)"
        )),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("kubectl config use-context {context}")),
        "{run}"
    );

    let (name, groups) = env.whoami(&context);
    assert_eq!(name, user);
    assert!(groups.contains(&"dev".to_string()), "{groups:?}");
    let after = env.config_view();
    assert_eq!(
        without(&after, &user, &context),
        before,
        "entries other than the new ones changed"
    );
    assert_eq!(after["current-context"], before["current-context"]);
    let text = fs::read_to_string(&env.kubeconfig).unwrap();
    assert!(
        text.contains(vendor),
        "the extension's text changed:\n{text}"
    );
    assert_eq!(
        mode(&env.kubeconfig),
        0o640,
        "the kubeconfig's mode was not kept"
    );
    assert!(!env.home.join(".kube/config.lock").exists());
    let csrs = cluster.admin(&["get", "csr", "-o", "json"]);
    assert!(
        !csrs.contains(&format!("\"kubectl-onboard/user\": \"{user}\"")),
        "the CSR was not deleted"
    );
}

#[test]
fn self_service_waits_for_an_administrator() {
    let cluster = Cluster::shared();
    let env = Env::bootstrap(cluster);
    let user = unique("newbie");
    let child = env.spawn(&[&user, "--group", "dev", "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    cluster.admin(&["certificate", "approve", &csr]);
    let run = finish(child, "kubectl onboard (as onboarder)").success();
    // The bootstrap role may not delete CSRs: a note, not an error.
    assert!(run.stderr.contains("may not delete"), "{run}");
    let (name, _) = env.whoami(&format!("{user}@{}", cluster.name));
    assert_eq!(name, user);
}

#[test]
fn bootstrap_user_may_not_approve_and_is_told_which_rule_is_missing() {
    let cluster = Cluster::shared();
    let env = Env::bootstrap(cluster);
    let before = env.kubeconfig_bytes();
    let user = unique("eager");
    env.onboard(&[&user, "--approve"])
        .code(1)
        .error_says(r#"resources: ["certificatesigningrequests/approval"], verbs: ["update"]} and {apiGroups: ["certificates.k8s.io"], resources: ["signers"], verbs: ["approve"], resourceNames: ["kubernetes.io/kube-apiserver-client"]}"#);
    assert_eq!(env.kubeconfig_bytes(), before);
    let all = cluster.admin(&["get", "csr", "-o", "json"]);
    assert!(
        !all.contains(&user),
        "a CSR was created although the check failed"
    );
}

#[test]
fn every_key_algorithm_logs_in() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    for algorithm in [
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "ecdsa-p256",
        "ecdsa-p384",
    ] {
        let user = unique(algorithm);
        let run = env
            .onboard(&[
                &user,
                "--approve",
                "--key-algorithm",
                algorithm,
                "-o",
                "json",
            ])
            .success();
        let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(summary["keyAlgorithm"], algorithm.to_uppercase());
        let (name, _) = env.whoami(&format!("{user}@{}", cluster.name));
        assert_eq!(name, user, "{algorithm}");
    }
}

#[test]
fn existing_keys_in_every_pem_format_are_used_as_they_are() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let keys = env.home.join("keys");
    fs::create_dir_all(&keys).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&keys)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "pkcs8.pem",
    ]);
    openssl(&["genrsa", "-traditional", "-out", "pkcs1.pem", "2048"]);
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "sec1.pem",
    ]);
    for file in ["pkcs8.pem", "pkcs1.pem", "sec1.pem"] {
        let user = unique("keyed");
        let key = keys.join(file);
        env.onboard(&[&user, "--approve", "--key", key.to_str().unwrap()])
            .success();
        let entry = env.user_entry(&user);
        let cert = Base64::decode_vec(entry["client-certificate-data"].as_str().unwrap()).unwrap();
        fs::write(keys.join("issued.crt"), cert).unwrap();
        assert_eq!(
            openssl(&["x509", "-in", "issued.crt", "-noout", "-pubkey"]),
            openssl(&["pkey", "-in", file, "-pubout"]),
            "{file}: the certificate is not for the given key"
        );
        assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
    }
}

#[test]
fn embed_false_writes_0600_files_and_absolute_paths() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("files");
    env.onboard(&[&user, "--approve", "--embed=false"])
        .success();
    let context = format!("{user}@{}", cluster.name);
    let entry = env.user_entry(&user);
    for field in ["client-certificate", "client-key"] {
        let path = std::path::PathBuf::from(entry[field].as_str().unwrap());
        assert!(
            path.is_absolute() && path.starts_with(env.home.join(".kube")),
            "{path:?}"
        );
        assert_eq!(mode(&path), 0o600, "{path:?}");
    }
    assert!(entry.get("client-key-data").is_none());
    assert_eq!(env.whoami(&context).0, user);
}

#[test]
fn output_kubeconfig_is_standalone_and_leaves_the_own_kubeconfig_alone() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let before = env.kubeconfig_bytes();
    let user = unique("colleague");
    let out = env.home.join("colleague.kubeconfig");
    env.onboard(&[
        &user,
        "--group",
        "dev",
        "--approve",
        "--output-kubeconfig",
        out.to_str().unwrap(),
    ])
    .success();
    assert_eq!(env.kubeconfig_bytes(), before);
    assert_eq!(mode(&out), 0o600);
    let colleague = Env::new(cluster, &out);
    let (name, groups) = colleague.whoami(&format!("{user}@{}", cluster.name));
    assert_eq!(name, user);
    assert!(groups.contains(&"dev".to_string()));
    // Its current context is the new one: plain kubectl works with it.
    assert_eq!(
        colleague.kubectl_ok(&["config", "current-context"]).trim(),
        format!("{user}@{}", cluster.name)
    );
}

/// Starts `kubectl onboard` (waiting, as the administrator), lets `reject` act on its request
/// once it exists, and expects exit 3 with the kubeconfig unchanged.
fn rejected_while_waiting(prefix: &str, reject: impl FnOnce(&Cluster, &str)) -> Run {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let before = env.kubeconfig_bytes();
    let user = unique(prefix);
    let child = env.spawn(&[&user, "--timeout", "60s"]);
    reject(cluster, &wait_for_csr(cluster, &user));
    let run = finish(child, &format!("kubectl onboard {user} (rejected)")).code(3);
    assert_eq!(env.kubeconfig_bytes(), before);
    run
}

#[test]
fn a_denied_request_exits_3_and_writes_nothing() {
    rejected_while_waiting("denied", |cluster, csr| {
        cluster.admin(&["certificate", "deny", csr]);
    })
    .error_says("was denied");
}

/// A signer that fails the request (as kube-controller-manager does for usages it will not
/// sign) writes a Failed condition through the status subresource; here the administrator plays
/// that signer on the real API.
#[test]
fn a_request_failed_by_the_signer_exits_3_with_its_reason_and_writes_nothing() {
    let failed = r#"[{"op": "add", "path": "/status/conditions", "value": [{"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": "invalid usage for client certificate: server auth"}]}]"#;
    rejected_while_waiting("failed", |cluster, csr| {
        cluster.admin(&[
            "patch",
            "csr",
            csr,
            "--subresource=status",
            "--type=json",
            "-p",
            failed,
        ]);
    })
    .error_says("the signer failed")
    .error_says("SignerValidationFailure: invalid usage for client certificate: server auth");
}

#[test]
fn interrupting_the_wait_withdraws_the_request_and_writes_nothing() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let before = env.kubeconfig_bytes();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let user = unique("impatient");
        let child = env.spawn(&[&user, "--timeout", "60s"]);
        let csr = wait_for_csr(cluster, &user);
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        finish(child, "kubectl onboard (interrupted)")
            .code(code)
            .error_says("was withdrawn");
        assert!(
            !csr_exists(cluster, &csr),
            "CSR {csr} is still there after SIG{signal}"
        );
        assert_eq!(env.kubeconfig_bytes(), before);
    }
}

/// The bootstrap role may not delete CSRs: interrupted, the request stays for the cluster's
/// cleaner, and the one error line says so (no second note repeating it).
#[test]
fn interrupted_without_delete_permission_the_request_stays_and_is_explained_once() {
    let cluster = Cluster::shared();
    let env = Env::bootstrap(cluster);
    let before = env.kubeconfig_bytes();
    let user = unique("cannotdelete");
    let child = env.spawn(&[&user, "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let run = finish(child, "kubectl onboard (interrupted, bootstrap)")
        .code(130)
        .error_says("stays (you may not delete it; the cluster removes pending ones after 24 h)");
    assert_eq!(run.stderr.matches("24 h").count(), 1, "{run}");
    assert!(csr_exists(cluster, &csr), "CSR {csr} vanished");
    assert_eq!(env.kubeconfig_bytes(), before);
    cluster.admin(&["delete", "csr", &csr]);
}

#[test]
fn a_name_clash_needs_force() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("twice");
    env.onboard(&[&user, "--approve"]).success();
    let before = env.kubeconfig_bytes();
    env.onboard(&[&user, "--approve"])
        .code(1)
        .error_says("already exists");
    assert_eq!(env.kubeconfig_bytes(), before);
    let all = cluster.admin(&["get", "csr", "-o", "json"]);
    assert_eq!(
        all.matches(&format!("\"kubectl-onboard/user\": \"{user}\""))
            .count(),
        0,
        "the clash was found only after a CSR was made"
    );

    let context = format!("{user}@{}", cluster.name);
    let run = env
        .onboard(&[&user, "--approve", "--force", "--group", "ops"])
        .success();
    assert!(
        run.stdout.starts_with(&format!(
            "Replaced user \"{user}\" and replaced context \"{context}\" in "
        )),
        "{run}"
    );
    // The credentials of the context in use: said plainly (sent with the admin's context).
    let admin = env
        .kubectl_ok(&["config", "current-context"])
        .trim()
        .to_string();
    env.kubectl_ok(&["config", "use-context", &context]);
    let again = [
        &user,
        "--approve",
        "--force",
        "--group",
        "ops",
        "--context",
        &admin,
    ];
    let run = env
        .onboard(&[&again[..], &["-o", "json"]].concat())
        .success();
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        summary["replaced"],
        serde_json::json!({"user": true, "context": true})
    );
    let run = env.onboard(&again).success();
    assert!(
        run.stdout.starts_with(&format!(
            "Replaced user \"{user}\", used by the current context, and replaced context"
        )),
        "{run}"
    );
    let (_, groups) = env.whoami(&context);
    assert!(
        groups.contains(&"ops".to_string()),
        "--force did not replace the credentials"
    );
    let view = env.config_view();
    let count = view["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"] == user.as_str())
        .count();
    assert_eq!(count, 1);
}

#[test]
fn use_context_switches_and_namespace_is_set() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("switch");
    env.onboard(&[&user, "--approve", "--use-context", "-n", "team-a"])
        .success();
    let context = format!("{user}@{}", cluster.name);
    assert_eq!(
        env.kubectl_ok(&["config", "current-context"]).trim(),
        context
    );
    let ns = env.kubectl_ok(&[
        "config",
        "view",
        "-o",
        &format!("jsonpath={{.contexts[?(@.name==\"{context}\")].context.namespace}}"),
    ]);
    assert_eq!(ns, "team-a");
}

#[test]
fn a_cluster_without_a_signer_times_out_with_the_explanation() {
    let cluster = Cluster::start(Options {
        signer: false,
        ..Options::default()
    });
    let env = Env::admin(&cluster);
    let before = env.kubeconfig_bytes();
    let user = unique("unsigned");
    env.onboard(&[&user, "--approve", "--timeout", "3s"])
        .code(4)
        .error_says("no signer for kubernetes.io/kube-apiserver-client")
        .error_says("--cluster-signing-cert-file");
    assert_eq!(env.kubeconfig_bytes(), before);
}

/// k3s and RKE2 sign client certificates with a client CA apart from the kubeconfig's CA: one
/// line says so, and no warning alarms. OpenShift's signer certificate ends within weeks and caps
/// every certificate at its own end: when the kubeconfig's CA bundle holds the signer, the
/// capped lifetime is put down to it, not to --cluster-signing-duration.
#[test]
fn a_separate_client_ca_is_a_line_and_a_signer_that_ends_soon_is_named() {
    let cluster = Cluster::start(Options {
        client_signer_days: Some(2),
        ..Options::default()
    });
    let env = Env::admin(&cluster);
    fs::set_permissions(&env.kubeconfig, fs::Permissions::from_mode(0o600)).unwrap();
    let user = unique("split");
    let run = env
        .onboard(&[&user, "--approve", "--group", "dev"])
        .success();
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("Signed by the cluster's client CA \"client-signer\", which is not the CA in your kubeconfig"),
        "{run}"
    );
    assert!(!run.stderr.contains("warning:"), "{run}");
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);

    // The same cluster, with the signer in the kubeconfig's CA bundle (as an OpenShift
    // kubeconfig can hold it): 30 days asked, the signer ends in 2.
    let mut bundle = fs::read(&cluster.ca_cert).unwrap();
    bundle.extend(fs::read(cluster.dir.join("pki/client-signer.crt")).unwrap());
    let text = fs::read_to_string(&env.kubeconfig).unwrap();
    let ca = Base64::encode_string(&fs::read(&cluster.ca_cert).unwrap());
    assert!(text.contains(&ca), "the admin kubeconfig embeds the CA");
    fs::write(
        &env.kubeconfig,
        text.replace(&ca, &Base64::encode_string(&bundle)),
    )
    .unwrap();
    let user = unique("openshift");
    let run = env
        .onboard(&[&user, "--approve", "--duration", "30d"])
        .success();
    assert!(
        run.stderr.contains("asked for 30d, got about")
            && run
                .stderr
                .contains("it ends when the signer's own certificate does"),
        "{run}"
    );
    assert!(!run.stderr.contains("--cluster-signing-duration"), "{run}");
}

#[test]
fn a_capped_lifetime_is_a_warning() {
    let cluster = Cluster::start(Options {
        signing_duration: Some("1h"),
        ..Options::default()
    });
    let env = Env::admin(&cluster);
    let user = unique("capped");
    let run = env
        .onboard(&[&user, "--approve", "--duration", "90d"])
        .success();
    assert!(
        run.stderr
            .contains("warning: the signer capped the lifetime: asked for 90d"),
        "{run}"
    );
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}

#[test]
fn kubectl_finds_it_as_a_plugin() {
    let dir = std::path::Path::new(crate::support::onboard::BIN)
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(crate::support::cluster::kubectl())
        .args(["onboard", "--help"])
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Usage: kubectl onboard "), "{stdout}");
}

#[test]
fn keep_csr_leaves_the_approved_request_labelled() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("kept");
    let run = env
        .onboard(&[&user, "--approve", "--keep-csr", "-o", "yaml"])
        .success();
    let summary: serde_json::Value = serde_saphyr::from_str(&run.stdout).unwrap();
    let name = summary["csrName"].as_str().unwrap().to_string();
    assert_eq!(summary["user"], user.as_str());
    assert_eq!(
        summary["context"],
        format!("{user}@{}", cluster.name).as_str()
    );
    let csr: serde_json::Value =
        serde_json::from_str(&cluster.admin(&["get", "csr", &name, "-o", "json"])).unwrap();
    assert_eq!(
        csr["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-onboard"
    );
    assert_eq!(
        csr["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );
    let approved = &csr["status"]["conditions"][0];
    assert_eq!(approved["type"], "Approved");
    assert_eq!(approved["reason"], "KubectlOnboardApprove");
    // Who approved: the inventory reads it back from here.
    assert_eq!(
        approved["message"],
        "Approved by admin with kubectl onboard."
    );
}

#[test]
fn a_caller_who_may_not_watch_falls_back_to_polling() {
    let cluster = Cluster::shared();
    let sa = unique("poller");
    cluster.admin(&["create", "serviceaccount", &sa, "-n", "default"]);
    cluster.admin(&[
        "create",
        "clusterrole",
        &sa,
        "--verb=create,get",
        "--resource=certificatesigningrequests.certificates.k8s.io",
    ]);
    cluster.admin(&[
        "create",
        "clusterrolebinding",
        &sa,
        "--clusterrole",
        &sa,
        "--serviceaccount",
        &format!("default:{sa}"),
    ]);
    let token = cluster.admin(&["create", "token", &sa, "-n", "default"]);
    let path = std::env::temp_dir().join(format!("{sa}.kubeconfig"));
    cluster.write_kubeconfig(&path, &sa, &format!("    token: {}\n", token.trim()));
    let env = Env::new(cluster, &path);
    let _ = fs::remove_file(&path);

    let user = unique("polled");
    let child = env.spawn(&[&user, "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    cluster.admin(&["certificate", "approve", &csr]);
    let run = finish(
        child,
        "kubectl onboard (as a service account without watch)",
    )
    .success();
    assert!(run.stderr.contains("may not watch"), "{run}");
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}

#[test]
fn the_wait_survives_an_api_server_restart() {
    let cluster = Cluster::start(Options::default());
    let env = Env::admin(&cluster);
    let user = unique("patient");
    let child = env.spawn(&[&user, "--timeout", "90s"]);
    let csr = wait_for_csr(&cluster, &user);
    cluster.restart_apiserver();
    cluster.admin(&["certificate", "approve", &csr]);
    finish(child, "kubectl onboard (across a restart)").success();
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}

/// A TCP relay in front of the API server whose connections can all be cut at once (a network
/// or load balancer dropping the watch), or stalled: bytes are then held, not forwarded, until
/// it flows again (a link that stops answering mid-request), with the real server behind it.
struct Relay {
    port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stalled: Arc<AtomicBool>,
}

impl Relay {
    fn to(server: &str) -> Relay {
        let target = server.trim_start_matches("https://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(Mutex::new(Vec::new()));
        let stalled = Arc::new(AtomicBool::new(false));
        let (conns, stall) = (Arc::clone(&open), Arc::clone(&stalled));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let clone = |s: &TcpStream| s.try_clone().unwrap();
                conns
                    .lock()
                    .unwrap()
                    .extend([clone(&client), clone(&server)]);
                for (mut from, mut to) in [(clone(&client), clone(&server)), (server, client)] {
                    let stall = Arc::clone(&stall);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            while stall.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            open,
            stalled,
        }
    }

    fn cut(&self) {
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// `env`'s kubeconfig, pointed at this relay.
    fn route(&self, env: &Env, cluster: &Cluster) {
        let via_relay = fs::read_to_string(&env.kubeconfig)
            .unwrap()
            .replace(&cluster.server, &format!("https://127.0.0.1:{}", self.port));
        fs::write(&env.kubeconfig, via_relay).unwrap();
    }
}

/// A server that stops answering while we wait: --timeout still ends the command (exit 4), and
/// the cleanup that cannot reach it either gives up and says what may remain.
#[test]
fn a_stalled_server_is_given_up_on_within_the_timeout() {
    let cluster = Cluster::shared();
    let relay = Relay::to(&cluster.server);
    let env = Env::admin(cluster);
    relay.route(&env, cluster);
    let user = unique("stalled");
    let before = env.kubeconfig_bytes();
    let started = std::time::Instant::now();
    let child = env.spawn(&[&user, "--timeout", "6s"]);
    let csr = wait_for_csr(cluster, &user);
    relay.stall(true);
    let run = finish(child, "kubectl onboard (server stalled)").code(4);
    let took = started.elapsed();
    relay.stall(false);
    assert!(
        took < std::time::Duration::from_secs(30),
        "took {took:?}\n{run}"
    );
    let says = format!("CertificateSigningRequest {csr} may still be there: deleting it failed");
    assert!(run.stderr.contains(&says), "{run}");
    assert!(
        run.stderr.contains(&format!("kubectl delete csr {csr}")),
        "{run}"
    );
    assert_eq!(env.kubeconfig_bytes(), before);
    // The command's own delete was held in the stall, and the relay may deliver it once the
    // stall ends: the request may be gone already.
    cluster.admin(&["delete", "csr", &csr, "--ignore-not-found"]);
}

/// Interrupted while its create is held on the way: the command cannot know whether the
/// request will land, so it says it may, by name, instead of claiming it was withdrawn.
#[test]
fn an_interrupted_create_is_looked_for_by_name_and_never_claimed_withdrawn() {
    let cluster = Cluster::shared();
    let relay = Relay::to(&cluster.server);
    let env = Env::admin(cluster);
    relay.route(&env, cluster);
    let user = unique("inflight");
    // RSA-4096 takes long enough to generate that the stall is in place before the create.
    let mut child = env.spawn(&[
        &user,
        "-v",
        "--key-algorithm",
        "rsa-4096",
        "--timeout",
        "60s",
    ]);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0 {
        seen += &line;
        if line.contains("may watch CSRs") {
            relay.stall(true);
            break;
        }
        line.clear();
    }
    assert!(seen.contains("may watch CSRs"), "{seen}");
    // The create is sent into the stall; interrupt it there.
    std::thread::sleep(std::time::Duration::from_secs(4));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    relay.stall(false);
    let all = seen + &rest;
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(!all.contains("was withdrawn"), "{all}");
    let error = all
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(error.contains("may still be there"), "{all}");
    // Whatever lands, lands under the name the message gave.
    let name = error
        .split("CertificateSigningRequest ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(name.starts_with(&user), "{all}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let _ = Command::new(crate::support::cluster::kubectl())
        .args(["--kubeconfig", cluster.admin_kubeconfig.to_str().unwrap()])
        .args(["delete", "csr", &name, "--ignore-not-found"])
        .output();
}

#[test]
fn a_dropped_watch_resumes_from_its_resource_version() {
    let cluster = Cluster::shared();
    let relay = Relay::to(&cluster.server);
    let env = Env::admin(cluster);
    relay.route(&env, cluster);
    let user = unique("dropped");
    let child = env.spawn(&[&user, "-v", "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    // Twice, a second apart: at least one cut finds the watch open.
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        relay.cut();
    }
    cluster.admin(&["certificate", "approve", &csr]);
    let run = finish(child, "kubectl onboard (watch dropped)").success();
    assert!(
        run.stderr.contains("resuming it from resourceVersion"),
        "{run}"
    );
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}

#[test]
fn a_stale_lock_stops_it_before_anything_is_requested() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let before = env.kubeconfig_bytes();
    let lock = env.home.join(".kube/config.lock");
    fs::write(&lock, b"").unwrap();
    let user = unique("locked");
    env.onboard(&[&user, "--approve"])
        .code(1)
        .error_says("config.lock exists");
    assert_eq!(env.kubeconfig_bytes(), before);
    assert!(lock.exists(), "someone else's lock must not be removed");
    assert!(!cluster.admin(&["get", "csr", "-o", "json"]).contains(&user));
}

#[test]
fn with_a_kubeconfig_list_new_entries_go_to_the_first_existing_file() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let first = env.home.join("first.yaml");
    fs::write(&first, "apiVersion: v1\nkind: Config\npreferences: {}\n").unwrap();
    let second = env.kubeconfig.clone();
    let second_before = fs::read(&second).unwrap();
    let missing = env.home.join("missing.yaml");
    let list = format!(
        "{}:{}:{}",
        missing.display(),
        first.display(),
        second.display()
    );
    let user = unique("listed");
    let run = env
        .onboard_command(&[&user, "--approve"])
        .env("KUBECONFIG", &list)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        fs::read(&second).unwrap(),
        second_before,
        "the second file changed"
    );
    assert!(!missing.exists());
    let first_text = fs::read_to_string(&first).unwrap();
    assert!(
        first_text.contains(&format!("name: {user}")),
        "{first_text}"
    );
    let out = std::process::Command::new(crate::support::cluster::kubectl())
        .args([
            "--context",
            &format!("{user}@{}", cluster.name),
            "auth",
            "whoami",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &list)
        .env("HOME", &env.home)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("\"username\": \"{user}\"")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs 20 onboardings at once into one kubeconfig, optionally with kubectl writing the same
/// file meanwhile; returns the users, the contexts kubectl reported as written, and the view.
fn crowd(kubectl_too: bool) -> (Vec<String>, Vec<String>, serde_json::Value) {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let users: Vec<String> = (0..20).map(|i| unique(&format!("crowd{i}"))).collect();
    let children: Vec<_> = users
        .iter()
        .map(|u| {
            env.spawn(&[
                u.as_str(),
                "--approve",
                "--key-algorithm",
                "ecdsa-p256",
                "--timeout",
                "120s",
            ])
        })
        .collect();
    // kubectl takes the same lock and gives up at once when it is taken, so only its
    // successful writes are owed.
    let mut kubectl_contexts = Vec::new();
    for i in 0..40 {
        if !kubectl_too {
            break;
        }
        let name = format!("kubectl-{i}");
        let out = env.kubectl(&[
            "config",
            "set-context",
            &name,
            "--cluster",
            &cluster.name,
            "--namespace",
            "ns",
        ]);
        if out.status.success() {
            kubectl_contexts.push(name);
        }
    }
    for (user, child) in users.iter().zip(children) {
        finish(child, &format!("kubectl onboard {user} (one of 20)")).success();
    }
    let view = env.config_view();
    // With kubectl writing alongside, some of our entries may be gone (see below): prove the
    // credentials of those that are there.
    let present = names(&view, "contexts");
    for user in users
        .iter()
        .filter(|u| present.contains(&format!("{u}@{}", cluster.name)))
        .step_by(7)
    {
        assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, *user);
    }
    (users, kubectl_contexts, view)
}

fn names(view: &serde_json::Value, section: &str) -> Vec<String> {
    view[section]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn twenty_at_once_into_one_kubeconfig_lose_nothing() {
    let (users, _, view) = crowd(false);
    let (all_users, all_contexts) = (names(&view, "users"), names(&view, "contexts"));
    for user in &users {
        assert!(all_users.contains(user), "user {user} lost");
        assert!(
            all_contexts.contains(&format!("{user}@local")),
            "context of {user} lost"
        );
    }
    assert!(
        all_users.contains(&"admin".to_string())
            && all_contexts.contains(&"admin@local".to_string())
    );
}

/// kubectl itself may delete entries added while it runs: `kubectl config set-context` reads
/// the file before it takes the lock, and client-go's ModifyConfig then deletes whatever is in
/// the file under the lock but not in that earlier read. So with kubectl writing alongside,
/// what we owe is that our writes never lose kubectl's entries, and that the file stays whole.
#[test]
fn twenty_at_once_while_kubectl_edits_the_same_file_keep_kubectl_s_entries() {
    let (users, kubectl_contexts, view) = crowd(true);
    assert!(!kubectl_contexts.is_empty(), "kubectl never got to write");
    let all_contexts = names(&view, "contexts");
    for name in &kubectl_contexts {
        assert!(all_contexts.contains(name), "kubectl's context {name} lost");
    }
    assert!(names(&view, "users").contains(&"admin".to_string()));
    let kept = users
        .iter()
        .filter(|u| names(&view, "users").contains(u))
        .count();
    eprintln!("{kept} of 20 onboarded users survived kubectl's concurrent writes");
}

#[test]
fn no_private_key_bytes_in_any_output_even_verbose() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    for extra in [
        &["-v", "--timings"][..],
        &["-v", "-o", "json"][..],
        &["-v", "-o", "yaml"][..],
    ] {
        let user = unique("secret");
        let mut args = vec![user.as_str(), "--approve"];
        args.extend_from_slice(extra);
        let run = env.onboard(&args).success();
        let key_b64 = env.user_entry(&user)["client-key-data"]
            .as_str()
            .unwrap()
            .to_string();
        let key_pem = String::from_utf8(Base64::decode_vec(&key_b64).unwrap()).unwrap();
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(!output.contains("PRIVATE KEY"), "{run}");
        assert!(!output.contains(&key_b64[..40]), "{run}");
        for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(
                !output.contains(&line[..line.len().min(24)]),
                "a line of the key leaked\n{run}"
            );
        }
        if extra.contains(&"--timings") {
            for phase in [
                "kubeconfig read",
                "permission check",
                "key",
                "create",
                "approve",
                "wait for certificate",
                "verify",
                "selfsubjectreview",
                "kubeconfig write",
                "total",
            ] {
                assert!(
                    run.stderr.contains(&format!("  {phase} ")),
                    "no {phase} in --timings\n{run}"
                );
            }
        }
    }
}

/// An HTTP CONNECT proxy on loopback, counting the tunnels it opened: what `proxy-url:
/// http://…` in a kubeconfig sends the connection through.
fn connect_proxy() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&tunnels);
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let target = request
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let (mut up_from, mut up_to) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_from, &mut up_to);
                    let _ = up_to.shutdown(Shutdown::Both);
                });
                let (mut down_from, mut down_to) = (server, client);
                let _ = std::io::copy(&mut down_from, &mut down_to);
                let _ = down_to.shutdown(Shutdown::Both);
            });
        }
    });
    (port, tunnels)
}

/// kubectl honours `proxy-url` in a cluster entry; so does kubectl onboard.
#[test]
fn the_cluster_is_reached_through_its_proxy_url() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let (port, tunnels) = connect_proxy();
    let text = fs::read_to_string(&env.kubeconfig).unwrap();
    let server_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap();
    let indent = &server_line[..server_line.len() - server_line.trim_start().len()];
    let proxied = text.replace(
        server_line,
        &format!("{server_line}\n{indent}proxy-url: http://127.0.0.1:{port}"),
    );
    fs::write(&env.kubeconfig, proxied).unwrap();
    let user = unique("proxied");
    env.onboard(&[&user, "--approve"]).success();
    assert!(
        tunnels.load(Ordering::SeqCst) > 0,
        "nothing went through the proxy"
    );
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}
