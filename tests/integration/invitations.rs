//! Invitations on the real control plane, with the real kubectl as the checker: invite →
//! accept (waiting) → approve → the new user's kubectl; what the invitation's token may do
//! (request certificates, nothing else, and only until it is used, withdrawn or expired); and
//! every way `approve` keeps a request from going beyond its invitation.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use crate::support::Cluster;
use crate::support::onboard::{Env, Run, csr_exists, finish, unique, wait_for_csr};
use serde_json::Value;

/// `approve --invited` approves every matching request in the cluster, so the tests that make
/// or approve requests take turns (the cluster is shared by the tests of this file).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The real kubectl with the invitation file as its kubeconfig.
fn with_invitation(cluster: &Cluster, invitation: &Path, args: &[&str]) -> Output {
    cluster.kubectl(invitation, args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The token in an invitation file.
fn token_of(invitation: &Path) -> String {
    let text = fs::read_to_string(invitation).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in {text}"));
    line.trim_matches(['"', '\'']).to_string()
}

/// A new colleague's machine: no kubeconfig at all, the invitation copied over.
fn newcomer<'a>(cluster: &'a Cluster, invitation: &Path) -> (Env<'a>, PathBuf) {
    let env = Env::admin(cluster);
    fs::remove_dir_all(env.home.join(".kube")).unwrap();
    let copy = env.home.join("mine.invite");
    fs::copy(invitation, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    (env, copy)
}

/// `invite USER ARGS… --output FILE` as the administrator; the invitation's name and file.
fn invite(admin: &Env, user: &str, args: &[&str]) -> (String, PathBuf, Run) {
    let file = admin.home.join(format!("{user}.invite"));
    let mut all = vec!["invite", user, "--output", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = admin.onboard(&all).success();
    let name = run
        .stdout
        .strip_prefix("Invitation ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{run}"))
        .to_string();
    (name, file, run)
}

/// Whether the API server takes the invitation's token at all (401 once it is used up).
fn token_works(cluster: &Cluster, invitation: &Path) -> Result<(), String> {
    let out = with_invitation(cluster, invitation, &["auth", "whoami"]);
    match out.status.success() {
        true => Ok(()),
        false => Err(stderr(&out)),
    }
}

fn state_of(admin: &Env, name: &str) -> Value {
    let run = admin.onboard(&["invitations", "-o", "json"]).success();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    v["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {v}"))["state"]
        .clone()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn accept(env: &Env, file: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["accept", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.spawn(&args)
}

#[test]
fn invite_accept_approve_gives_the_new_user_exactly_what_was_invited() {
    let _turn = one_at_a_time();
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let role = unique("inv-pod-reader");
    cluster.admin(&[
        "create",
        "clusterrole",
        &role,
        "--verb=get,list",
        "--resource=pods",
    ]);
    let jane = unique("inv-jane");
    let (name, file, run) = invite(
        &admin,
        &jane,
        &["--group", "dev", "--clusterrole", &role, "--expires", "1h"],
    );
    assert!(
        run.stdout.contains(&format!(
            "for {jane} (groups: dev) written to {}",
            file.display()
        )),
        "{run}"
    );
    assert!(run.stdout.contains("kubectl onboard accept"), "{run}");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = token_of(&file);
    assert!(token.len() > 100, "a ServiceAccount token");
    assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
    assert_eq!(state_of(&admin, &name), "open");

    // The token may request certificates and nothing else.
    let whoami = with_invitation(
        cluster,
        &file,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        format!("system:serviceaccount:kubectl-onboard-invitations:{name}")
    );
    // Not even other people's requests: it may read and delete only the one it makes.
    for forbidden in [
        vec!["get", "csr"],
        vec!["get", "pods", "-A"],
        vec!["get", "secrets", "-n", "kubectl-onboard-invitations"],
        vec!["create", "configmap", "x", "-n", "default"],
        vec!["get", "configmaps", "-n", "kubectl-onboard-invitations"],
    ] {
        let out = with_invitation(cluster, &file, &forbidden);
        assert!(
            !out.status.success() && stderr(&out).contains("forbidden"),
            "{forbidden:?}: {}",
            stderr(&out)
        );
    }

    // The new colleague accepts, waits, and changes their mind: Ctrl-C withdraws the request
    // (named like the invitation), writes nothing, and the invitation can still be accepted.
    let (jane_env, mine) = newcomer(cluster, &file);
    let child = accept(&jane_env, &mine, &[]);
    assert_eq!(wait_for_csr(cluster, &jane), name);
    signal(&child, "INT");
    let run = finish(child, "kubectl onboard accept mine.invite (interrupted)").code(130);
    assert!(!csr_exists(cluster, &name), "withdrawn\n{run}");
    assert!(!jane_env.kubeconfig.exists(), "{run}");
    assert!(!jane_env.home.join(".kube").exists(), "{run}");

    // Accepted again, for good; the administrator sees the request matches.
    let child = accept(&jane_env, &mine, &["-v"]);
    let csr = wait_for_csr(cluster, &jane);
    assert_eq!(csr, name);
    let pending = admin.onboard(&["pending"]).success();
    let line = pending
        .stdout
        .lines()
        .find(|l| l.starts_with(&csr))
        .unwrap();
    assert!(line.contains(&format!("invite {name}")), "{pending}");
    assert!(line.trim_end().ends_with("matches"), "{pending}");
    assert_eq!(state_of(&admin, &name), "requested");

    let approved = admin.onboard(&["approve", &csr]).success();
    assert!(
        approved.stdout.contains(&format!(
            "Bound ClusterRoleBinding to ClusterRole {role} for {jane}"
        )),
        "{approved}"
    );
    let run = finish(child, "kubectl onboard accept mine.invite -v").success();
    assert!(
        run.stderr
            .contains(&format!("invites you as {jane} (groups: dev).")),
        "{run}"
    );
    assert!(run.stderr.contains("CA sha256 "), "{run}");
    assert!(
        run.stdout
            .contains(&format!("Switched to context \"{jane}@")),
        "it says the new context is current\n{run}"
    );
    assert!(
        run.stderr
            .contains("The invitation is used up: its token no longer works."),
        "{run}"
    );
    assert!(
        !run.stdout.contains(&token) && !run.stderr.contains(&token),
        "{run}"
    );

    // The new user's own kubectl: who they are, what the invitation granted, no token kept.
    let context = format!("{jane}@{}", cluster.name);
    let (user, groups) = jane_env.whoami(&context);
    let current = jane_env.kubectl_ok(&["config", "current-context"]);
    assert_eq!(
        current.trim(),
        context,
        "no kubeconfig before: the new context is current"
    );
    assert_eq!(user, jane);
    assert!(groups.contains(&"dev".to_string()), "{groups:?}");
    assert!(
        jane_env
            .kubectl(&["--context", &context, "get", "pods", "-A"])
            .status
            .success()
    );
    let written = fs::read_to_string(&jane_env.kubeconfig).unwrap();
    assert!(
        !written.contains(&token),
        "the token is not in the kubeconfig"
    );
    assert_eq!(
        fs::metadata(&jane_env.kubeconfig)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Used up: the API server refuses its token (once its informer has seen the deletion); the
    // record says used; the inventory knows how.
    wait_until("the used token refused", || {
        token_works(cluster, &file)
            .is_err_and(|e| e.contains("Unauthorized") || e.contains("provide credentials"))
    });
    assert_eq!(state_of(&admin, &name), "used");
    let listed: Value = serde_json::from_str(
        &admin
            .onboard(&["certificates", &jane, "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    let record = &listed["certificates"][0];
    assert_eq!(record["how"], "invitation", "{listed}");
    assert_eq!(record["approver"], "admin", "{listed}");

    // Accepting again: the token no longer works, and nothing is written.
    let (again, copy) = newcomer(cluster, &file);
    let run = again
        .onboard(&["accept", copy.to_str().unwrap(), "--timeout", "20s"])
        .code(1)
        .error_says("the cluster no longer accepts this invitation (401 Unauthorized)");
    assert!(!again.kubeconfig.exists(), "{run}");
}

#[test]
fn approve_keeps_every_request_within_its_invitation() {
    let _turn = one_at_a_time();
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let bob = unique("inv-bob");
    let (name, file, _) = invite(&admin, &bob, &["--group", "dev", "--duration", "1h"]);

    // Someone holding bob's token asks for another user, and for more groups.
    let holder = Env::new(cluster, &file);
    let alice = unique("inv-alice");
    let wrong_user = holder.spawn(&[
        &alice,
        "--group",
        "dev",
        "--duration",
        "1h",
        "--timeout",
        "30s",
    ]);
    let alice_csr = wait_for_csr(cluster, &alice);
    let refused = admin.onboard(&["approve", &alice_csr]).code(1);
    for says in [
        format!("it does not match invitation {name}: it is named {alice_csr}"),
        format!("it asks for user '{alice}', the invitation is for '{bob}'"),
    ] {
        assert!(refused.stderr.contains(&says), "{says}\n{refused}");
    }
    let pending = admin.onboard(&["pending"]).success();
    assert!(
        pending.stderr.contains(&format!(
            "{alice_csr}: kubectl onboard approve will refuse it"
        )),
        "{pending}"
    );
    let run = admin.onboard(&["approve", "--invited"]).success();
    assert!(!run.stdout.contains(&alice_csr), "{run}");
    let status = cluster.admin(&[
        "get",
        "csr",
        &alice_csr,
        "-o",
        "jsonpath={.status.conditions}",
    ]);
    assert_eq!(status, "", "still pending");

    // Too long a lifetime is refused as well.
    let greedy = holder.spawn(&[
        &bob,
        "--group",
        "dev",
        "--duration",
        "2h",
        "--timeout",
        "30s",
    ]);
    let greedy_csr = wait_for_csr(cluster, &bob);
    admin
        .onboard(&["approve", &greedy_csr])
        .code(1)
        .error_says("the invitation allows at most 1h");
    // And more groups than invited.
    let extra = holder.spawn(&[
        &bob,
        "--group",
        "dev",
        "--group",
        "admins",
        "--duration",
        "1h",
        "--timeout",
        "30s",
    ]);
    let extra_csr = wait_for_csr_other_than(cluster, &bob, &[&greedy_csr]);
    admin
        .onboard(&["approve", &extra_csr])
        .code(1)
        .error_says("it asks for groups [dev, admins], the invitation grants [dev]");
    // They may not read the requests they made under other names: they stop at once.
    for child in [wrong_user, greedy, extra] {
        let run = finish(child, "kubectl onboard (with the invitation)").code(1);
        assert!(run.stderr.contains("forbidden"), "{run}");
    }

    // Two accepts at once with one invitation: the second replaces the first's request (whose
    // own wait then fails), and that one is approved; once used, the invitation serves no more.
    let (first_env, first_file) = newcomer(cluster, &file);
    let first = accept(&first_env, &first_file, &["--timeout", "60s"]);
    wait_until("the first request", || csr_exists(cluster, &name));
    let (second_env, second_file) = newcomer(cluster, &file);
    let second = accept(&second_env, &second_file, &["--timeout", "60s"]);
    let run = finish(first, "accept (replaced)").code(1);
    assert!(run.stderr.contains("was deleted while we waited"), "{run}");
    assert!(!first_env.kubeconfig.exists(), "nothing written\n{run}");
    wait_until("the second request", || csr_exists(cluster, &name));
    let run = admin.onboard(&["approve", "--invited", "-v"]).success();
    assert!(run.stdout.contains(&format!("Approved {name}")), "{run}");
    let run = finish(second, "accept (approved)").success();
    assert!(run.stderr.contains("The invitation is used up"), "{run}");
    admin
        .onboard(&["approve", &extra_csr])
        .code(1)
        .error_says(&format!(
            "invitation {name} was used already (request {name})"
        ));
}

#[test]
fn withdrawn_and_expired_invitations_leave_no_working_token() {
    let _turn = one_at_a_time();
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let (carol, dan) = (unique("inv-carol"), unique("inv-dan"));
    let (withdrawn, withdrawn_file, _) = invite(&admin, &carol, &["--expires", "10m"]);
    let (expired, expired_file, _) = invite(&admin, &dan, &[]);
    token_works(cluster, &withdrawn_file).unwrap();
    token_works(cluster, &expired_file).unwrap();

    // A request made with it waits; withdrawing denies it too (kubectl certificate approve
    // would still pass it), and the waiting requester hears why.
    let (holder, held) = newcomer(cluster, &withdrawn_file);
    let waiting = accept(&holder, &held, &["--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &carol);
    // Meanwhile the token keeps asking (the API server takes it for seconds after the
    // withdrawal): every request it gets in is denied too.
    let revoking = admin.spawn(&["invitations", "--revoke", &withdrawn]);
    let request = openssl_request(&admin.home, &carol, "dev");
    let mut late = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        if let Ok(name) = request_with_token(cluster, &withdrawn_file, &carol, &request) {
            late.push(name);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let run = finish(revoking, "invitations --revoke").success();
    assert!(
        run.stdout
            .contains("its token stops working within seconds"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!("Denied {csr}, made with it.")),
        "{run}"
    );
    for name in &late {
        let conditions = cluster.admin(&[
            "get",
            "csr",
            name,
            "-o",
            "jsonpath={.status.conditions[*].type}",
        ]);
        assert_eq!(
            conditions, "Denied",
            "{name}, made after the withdrawal\n{run}"
        );
    }
    let denied = finish(waiting, "kubectl onboard (with the withdrawn invitation)").code(3);
    assert!(
        denied
            .stderr
            .contains(&format!("invitation {withdrawn} was withdrawn")),
        "{denied}"
    );
    wait_until("the withdrawn token refused", || {
        token_works(cluster, &withdrawn_file).is_err()
    });
    assert_eq!(state_of(&admin, &withdrawn), "withdrawn");

    // Its record says it expired an hour ago (as if its day had passed): any invitation command
    // deletes its credential.
    let date = std::process::Command::new("date")
        .args(["-u", "-d", "-1 hour", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let past = String::from_utf8_lossy(&date.stdout).trim().to_string();
    cluster.admin(&[
        "patch",
        "configmap",
        &expired,
        "-n",
        "kubectl-onboard-invitations",
        "--type=merge",
        "-p",
        &format!("{{\"data\":{{\"expires\":\"{past}\"}}}}"),
    ]);
    assert_eq!(state_of(&admin, &expired), "expired");
    wait_until("the expired token refused", || {
        token_works(cluster, &expired_file).is_err()
    });
    let table = admin.onboard(&["invitations"]).success();
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&expired))
        .unwrap();
    assert!(line.trim_end().ends_with("expired"), "{table}");

    // Usage errors cost nothing: a system: group, too short an expiry, both a user and --from.
    admin
        .onboard(&["invite", "eve", "--group", "system:masters"])
        .code(2)
        .error_says("system:masters");
    admin
        .onboard(&["invite", "eve", "--expires", "5m"])
        .code(2)
        .error_says("too short");
    admin
        .onboard(&["invite", "eve", "--expires", "31d"])
        .code(2)
        .error_says("too long");
    admin
        .onboard(&["invite", "eve", "--expires", "18446744073709551615s"])
        .code(2);
    admin
        .onboard(&["invite", "eve", "--from", "team.yaml"])
        .code(2)
        .error_says("not both");
    assert!(!admin.home.join("eve.invite").exists());
}

#[test]
fn invite_from_a_batch_file_writes_one_invitation_per_user() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let (erin, frank) = (unique("inv-erin"), unique("inv-frank"));
    let team = admin.home.join("team.yaml");
    fs::write(
        &team,
        format!("- name: {erin}\n  groups: [qa]\n- name: {frank}\n  groups: [qa, ops]\n"),
    )
    .unwrap();
    let dir = admin.home.join("invites");
    let run = admin
        .onboard(&[
            "invite",
            "--from",
            team.to_str().unwrap(),
            "--output-dir",
            dir.to_str().unwrap(),
            "-o",
            "json",
        ])
        .success();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["invitations"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["invitations"][1]["groups"],
        serde_json::json!(["qa", "ops"])
    );
    for user in [&erin, &frank] {
        let file = dir.join(format!("{user}.invite"));
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        token_works(cluster, &file).unwrap();
    }
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// A CSR for `user` other than `known`, once it exists.
fn wait_for_csr_other_than(cluster: &Cluster, user: &str, known: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value =
            serde_json::from_str(&cluster.admin(&["get", "csr", "-o", "json"])).unwrap();
        let found = list["items"].as_array().unwrap().iter().find(|csr| {
            csr["metadata"]["annotations"]["kubectl-onboard/user"].as_str() == Some(user)
                && !known.contains(&csr["metadata"]["name"].as_str().unwrap())
        });
        if let Some(csr) = found {
            return csr["metadata"]["name"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no new CSR for {user} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Creates a request for `request` (PEM) with the token of `invitation`, as the real kubectl
/// does, under a generated name starting with `user`; its name, or kubectl's error.
fn request_with_token(
    cluster: &Cluster,
    invitation: &Path,
    user: &str,
    request: &[u8],
) -> Result<String, String> {
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  generateName: {user}-\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [\"client auth\"]\n",
        crate::support::cluster::base64(request)
    );
    let out = crate::support::cluster::run_with_stdin(
        cluster
            .kubectl_command(invitation)
            .args(["create", "-f", "-", "-o", "name"]),
        &manifest,
    );
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("certificatesigningrequest.certificates.k8s.io/")
            .to_string()),
        false => Err(stderr(&out)),
    }
}

/// A PKCS#10 request (PEM) for `/CN=user/O=group`, made with openssl in `dir`.
fn openssl_request(dir: &Path, user: &str, group: &str) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-keyout"])
        .arg(dir.join(format!("{group}.key")))
        .args(["-subj", &format!("/CN={user}/O={group}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout
}

/// The subjects of every certificate the signer issued to requests named `name`, as a watch
/// sees them (an object deleted right after it was issued is seen too), until `stop`.
fn issued_subjects(
    kubeconfig: PathBuf,
    name: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    use futures::StreamExt;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use kube::api::{Api, WatchEvent, WatchParams};
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let api: Api<CertificateSigningRequest> = Api::all(client_of(&kubeconfig).await);
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(120);
            let mut events = api.watch(&params, "0").await.unwrap().boxed();
            let mut subjects = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let next = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
                let Ok(Some(Ok(WatchEvent::Modified(csr) | WatchEvent::Deleted(csr)))) = next
                else {
                    continue;
                };
                if let Some(cert) = csr.status.and_then(|s| s.certificate) {
                    let subject = subject_of(&cert.0);
                    if !subjects.contains(&subject) {
                        subjects.push(subject);
                    }
                }
            }
            subjects
        })
    })
}

async fn client_of(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// `CN=mal,O=dev`, as openssl prints a certificate's subject.
fn subject_of(pem: &[u8]) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), pem).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("subject=")
        .to_string()
}

/// The invitee's side of the swap: with the invitation's token, delete its request and make it
/// again, one subject and then the other, as fast as the API server allows; it stops when it
/// finds its request approved, or at `stop`. Returns how many requests it made.
fn swap_requests(
    invitation: PathBuf,
    name: String,
    requests: [Vec<u8>; 2],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestSpec,
    };
    use kube::api::{Api, DeleteParams, PostParams};
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let api: Api<CertificateSigningRequest> = Api::all(client_of(&invitation).await);
            let object = |pem: &[u8]| CertificateSigningRequest {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: CertificateSigningRequestSpec {
                    request: ByteString(pem.to_vec()),
                    signer_name: "kubernetes.io/kube-apiserver-client".into(),
                    usages: Some(vec!["client auth".into()]),
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                status: None,
            };
            let mut made = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(csr) = api.get(&name).await {
                    let conditions = csr.status.and_then(|s| s.conditions).unwrap_or_default();
                    if conditions.iter().any(|c| c.type_ == "Approved") {
                        break;
                    }
                }
                let _ = api.delete(&name, &DeleteParams::default()).await;
                if api
                    .create(&PostParams::default(), &object(&requests[made % 2]))
                    .await
                    .is_ok()
                {
                    made += 1;
                }
            }
            made
        })
    })
}

#[test]
fn a_request_swapped_between_check_and_approval_is_never_approved() {
    let _turn = one_at_a_time();
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let mal = unique("inv-mal");
    let (name, file, _) = invite(&admin, &mal, &["--group", "dev", "--duration", "1h"]);
    // What was invited, and a group that would give the invitee more.
    let requests = [
        openssl_request(&admin.home, &mal, "dev"),
        openssl_request(&admin.home, &mal, "platform-admins"),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = issued_subjects(cluster.admin_kubeconfig.clone(), name.clone(), stop.clone());
    let swapper = swap_requests(file.clone(), name.clone(), requests, stop.clone());
    wait_until("the first swapped request", || csr_exists(cluster, &name));

    // The administrator approves what matches, again and again, while the invitee swaps.
    let mut approvals = Vec::new();
    for _ in 0..40 {
        let run = admin.onboard(&["approve", "--invited"]);
        assert!(matches!(run.code, Some(0) | Some(1)), "{run}");
        if run.code == Some(0) && run.stdout.contains(&format!("Approved {name}")) {
            assert!(
                run.stdout.contains(&format!("user {mal}, groups dev,")),
                "{run}"
            );
            approvals.push(run);
        }
        if swapper.is_finished() {
            break;
        }
    }
    // Time for the signer to issue what was approved, then both sides stop.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let made = swapper.join().unwrap();
    let subjects = watch.join().unwrap();
    assert!(made > 2, "the invitee made {made} requests");
    assert!(
        subjects.iter().all(|s| !s.contains("platform-admins")),
        "a swapped request was approved: issued {subjects:?} after {made} swaps"
    );
    assert!(
        approvals.len() <= 1,
        "the invitation served more than once: {}",
        approvals
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    if let [approved] = approvals.as_slice() {
        assert!(
            subjects.iter().all(|s| s.contains("O=dev") || s.is_empty()),
            "{subjects:?}\n{approved}"
        );
    }
    let _ = cluster.admin(&["delete", "csr", &name, "--ignore-not-found"]);
}

#[test]
fn a_crafted_invitation_runs_nothing_reads_nothing_and_sends_nothing() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let eve = unique("inv-eve");
    let (name, file, _) = invite(&admin, &eve, &["--group", "dev"]);
    let (env, _) = newcomer(cluster, &file);
    // Where a crafted file would send what it gets: a listener that must hear nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let server = format!("https://{}", listener.local_addr().unwrap());
    let marker = env.home.join("ran");
    let secret = env.home.join(".git-credentials");
    fs::write(&secret, "https://me:hunter2@example.com\n").unwrap();
    let exec = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "sh",
        "args": ["-c", format!("touch {}", marker.display())],
        "interactiveMode": "Never",
    });
    let users = [
        serde_json::json!({"exec": exec}),
        serde_json::json!({"token": "t", "exec": exec}),
        serde_json::json!({"auth-provider": {"name": "gcp", "config": {"cmd-path": "sh", "cmd-args": format!("-c 'touch {}'", marker.display())}}}),
        serde_json::json!({"tokenFile": secret.to_str().unwrap()}),
        serde_json::json!({"tokenFile": ".git-credentials"}),
        serde_json::json!({"username": "me", "password": "hunter2"}),
        serde_json::json!({"token": "t", "client-key": secret.to_str().unwrap()}),
    ];
    let token = token_of(&file);
    let ca = base64_of(cluster.ca_pem().as_bytes());
    let clusters = [
        serde_json::json!({"server": server, "certificate-authority-data": ca}),
        serde_json::json!({"server": server, "certificate-authority": secret.to_str().unwrap()}),
        serde_json::json!({"server": server, "proxy-url": format!("http://{}", listener.local_addr().unwrap())}),
        serde_json::json!({"server": server, "insecure-skip-tls-verify": true}),
        serde_json::json!({"server": server.replace("https://", "http://"), "certificate-authority-data": ca}),
        serde_json::json!({"server": server.replace("https://", "https://me:pw@"), "certificate-authority-data": ca}),
    ];
    let mut crafted = Vec::new();
    for user in &users {
        crafted.push((clusters[0].clone(), user.clone()));
    }
    for cluster_entry in &clusters[1..] {
        crafted.push((cluster_entry.clone(), serde_json::json!({"token": token})));
    }
    for (i, (cluster_entry, user)) in crafted.iter().enumerate() {
        let path = env.home.join(format!("crafted-{i}.invite"));
        let document = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster_entry}],
            "users": [{"name": "invitation", "user": user}],
            "contexts": [{"name": "invitation", "context": {"cluster": "c", "user": "invitation"}}],
            "current-context": "invitation",
            "extensions": [{"name": "kubectl-onboard/invitation", "extension": {
                "name": name, "user": eve, "groups": ["dev"], "expires": "2999-01-01T00:00:00Z"
            }}],
        });
        fs::write(&path, document.to_string()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let run = env
            .onboard(&["accept", path.to_str().unwrap(), "--timeout", "10s"])
            .code(1)
            .error_says("is not a kubectl onboard invitation");
        assert!(run.stderr.contains("nothing was run or sent"), "{run}");
        assert!(!marker.exists(), "the file's command ran\n{run}");
        match listener.accept() {
            Ok((_, from)) => panic!("the crafted file made us connect ({from})\n{run}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        }
        assert!(!env.kubeconfig.exists(), "{run}");
    }
    // The real file is still accepted as far as the check goes (withdrawn here, not used).
    admin.onboard(&["invitations", "--revoke", &name]).success();
}

fn base64_of(data: &[u8]) -> String {
    crate::support::cluster::base64(data)
}

#[test]
fn a_flood_of_requests_from_one_invitation_is_summarised_and_withdrawn() {
    let _turn = one_at_a_time();
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let flo = unique("inv-flo");
    let (name, file, _) = invite(&admin, &flo, &["--group", "dev"]);
    let request = openssl_request(&admin.home, &flo, "dev");
    for _ in 0..15 {
        request_with_token(cluster, &file, &flo, &request).unwrap();
    }
    let listed = admin.onboard(&["pending"]).success();
    let rows: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("invite {name}")))
        .collect();
    assert_eq!(rows.len(), 4, "three rows and a summary\n{listed}");
    assert!(rows[3].starts_with("… 12 more"), "{listed}");
    let warned: Vec<&str> = listed
        .stderr
        .lines()
        .filter(|l| l.contains(&name))
        .collect();
    assert_eq!(warned.len(), 1, "one warning for the flood\n{listed}");
    assert!(warned[0].contains("has 15 requests waiting"), "{listed}");
    assert!(
        warned[0].contains(&format!("kubectl onboard invitations --revoke {name}")),
        "{listed}"
    );
    let json: Value =
        serde_json::from_str(&admin.onboard(&["pending", "-o", "json"]).success().stdout).unwrap();
    let all = json["pending"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["requester"].as_str().unwrap_or_default().ends_with(&name))
        .count();
    assert_eq!(all, 15, "-o json has every one");
    let run = admin.onboard(&["approve", "--invited"]).success();
    assert!(run.stderr.contains("has 15 requests waiting"), "{run}");
    assert!(!run.stdout.contains(&flo), "none is its own request\n{run}");
    admin.onboard(&["invitations", "--revoke", &name]).success();
    let listed = admin.onboard(&["pending"]).success();
    assert!(!listed.stdout.contains(&name), "all denied\n{listed}");
}
