//! The review queue (`pending`, `approve`, `deny`) and `offboard`, end to end on the real
//! control plane: the requester is the real bootstrap user waiting in a real `kubectl onboard`,
//! and kubectl (`auth whoami`, `auth can-i`, `config view`) judges the outcome.

use std::process::Command;

use crate::support::Cluster;
use crate::support::cluster::{base64, kubectl};
use crate::support::onboard::{BIN, Env, Run, finish, unique, wait_for_csr};
use serde_json::Value;

/// `kubectl onboard pending`'s row for `csr`, split into its columns.
fn pending_row(env: &Env, csr: &str) -> Vec<String> {
    let run = env.onboard(&["pending"]).success();
    assert!(run.stdout.starts_with("NAME "), "{run}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(csr))
        .unwrap_or_else(|| panic!("{csr} is not in the queue\n{run}"));
    line.split_whitespace().map(String::from).collect()
}

fn in_queue(env: &Env, csr: &str) -> bool {
    let run = env.onboard(&["pending", "-o", "json"]).success();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    v["pending"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == csr)
}

/// The CSR's condition types, as the admin sees them.
fn conditions(cluster: &Cluster, csr: &str) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&cluster.admin(&["get", "csr", csr, "-o", "json"])).unwrap();
    v["status"]["conditions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| c["type"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A CSR made the manual way: an openssl request for `subject`, created with kubectl.
fn kubectl_csr(
    cluster: &Cluster,
    env: &Env,
    name: &str,
    subject: &str,
    signer: &str,
    usages: &[&str],
) -> std::process::Output {
    let (key, req) = (
        env.home.join(format!("{name}.key")),
        env.home.join(format!("{name}.csr")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-utf8",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&req)
        .args(["-subj", subject])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {}\n  signerName: {signer}\n  usages: [{}]\n",
        base64(&std::fs::read(&req).unwrap()),
        usages
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    crate::support::cluster::run_with_stdin(
        cluster
            .kubectl_command(&cluster.admin_kubeconfig)
            .args(["create", "-f", "-"]),
        &manifest,
    )
}

#[test]
fn a_self_service_request_is_in_the_queue_and_approve_lets_it_finish() {
    let cluster = Cluster::shared();
    let requester = Env::bootstrap(cluster);
    let admin = Env::admin(cluster);
    let user = unique("newbie");
    let child = requester.spawn(&[&user, "--group", "dev", "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);

    let row = pending_row(&admin, &csr);
    assert_eq!(
        [&row[..6], &row[7..]].concat(),
        [
            &csr,
            "onboarder",
            &user,
            "dev",
            "RSA-2048",
            "default",
            "yes",
            "-"
        ],
        "{row:?}"
    );
    let json = admin.onboard(&["pending", "-o", "json"]).success();
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let item = v["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == csr.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["requester"], "onboarder");
    assert_eq!(item["commonName"], user.as_str());
    assert_eq!(item["groups"], serde_json::json!(["dev"]));
    assert_eq!(item["managedByOnboard"], true);
    assert_eq!(item["refusals"], serde_json::json!([]));

    let run = admin.onboard(&["approve", &csr]).success();
    assert!(
        run.stdout.starts_with(&format!(
            "Approved {csr}: user {user}, groups dev, RSA-2048, the cluster's default lifetime, requested by onboarder"
        )),
        "{run}"
    );
    finish(child, "kubectl onboard (as onboarder)").success();
    let (name, groups) = requester.whoami(&format!("{user}@{}", cluster.name));
    assert_eq!(name, user);
    assert!(groups.contains(&"dev".to_string()), "{groups:?}");
    assert_eq!(conditions(cluster, &csr), ["Approved"]);

    // Like kubectl certificate approve: again is fine, and changes nothing.
    let again = admin.onboard(&["approve", &csr]).success();
    assert_eq!(
        again.stdout,
        format!("{csr} is already approved\n"),
        "{again}"
    );
    assert_eq!(conditions(cluster, &csr), ["Approved"]);
    assert!(!in_queue(&admin, &csr));
}

#[test]
fn deny_with_a_reason_reaches_the_waiting_requester() {
    let cluster = Cluster::shared();
    let requester = Env::bootstrap(cluster);
    let admin = Env::admin(cluster);
    let before = requester.kubeconfig_bytes();
    let user = unique("hopeful");
    let child = requester.spawn(&[
        &user,
        "--key-algorithm",
        "ecdsa-p256",
        "--duration",
        "30d",
        "--timeout",
        "60s",
    ]);
    let csr = wait_for_csr(cluster, &user);
    let row = pending_row(&admin, &csr);
    assert_eq!(
        [&row[..6], &row[7..]].concat(),
        [
            &csr,
            "onboarder",
            &user,
            "<none>",
            "ECDSA-P256",
            "30d",
            "yes",
            "-"
        ],
        "{row:?}"
    );

    let run = admin
        .onboard(&["deny", &csr, "--reason", "use your SSO account"])
        .success();
    assert_eq!(run.stdout, format!("Denied {csr}: use your SSO account\n"));
    finish(child, "kubectl onboard (denied)")
        .code(3)
        .error_says("was denied: KubectlOnboardDeny: use your SSO account");
    assert_eq!(requester.kubeconfig_bytes(), before);

    let again = admin.onboard(&["deny", &csr]).success();
    assert!(again.stdout.contains("is already denied"), "{again}");
    admin.onboard(&["approve", &csr]).code(1).error_says(
        "was denied (KubectlOnboardDeny: use your SSO account), so it cannot be approved",
    );
    assert_eq!(conditions(cluster, &csr), ["Denied"]);
}

#[test]
fn approve_refuses_what_is_not_a_client_certificate_for_a_person() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let (good, server, other) = (unique("manual"), unique("server"), unique("widget"));
    let client = "kubernetes.io/kube-apiserver-client";
    for (name, subject, signer, usages) in [
        (&good, "/CN=manual-user/O=dev", client, &["client auth"][..]),
        (&server, "/CN=web.example.com", client, &["server auth"][..]),
        (
            &other,
            "/CN=manual-user",
            "example.com/widgets",
            &["client auth"][..],
        ),
    ] {
        let out = kubectl_csr(cluster, &admin, name, subject, signer, usages);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Made with kubectl: in the queue, but not ours; the server one with a warning.
    let row = pending_row(&admin, &good);
    assert_eq!(
        [&row[..6], &row[7..]].concat(),
        [
            &good,
            "admin",
            "manual-user",
            "dev",
            "ECDSA-P256",
            "default",
            "no",
            "-"
        ]
    );
    let listed = admin.onboard(&["pending"]).success();
    assert!(
        listed.stderr.contains(&format!(
            "warning: {server}: kubectl onboard approve will refuse it"
        )),
        "{listed}"
    );
    assert!(
        !listed.stdout.contains(&other),
        "another signer's request is listed\n{listed}"
    );

    // One bad request among the named ones: none is approved.
    admin
        .onboard(&["approve", &good, &server])
        .code(1)
        .error_says(&format!("refusing to approve {server}: it asks for usages \"server auth\" instead of \"client auth\""))
        .error_says("nothing was approved");
    assert!(conditions(cluster, &good).is_empty());
    assert!(conditions(cluster, &server).is_empty());

    admin
        .onboard(&["approve", &other])
        .code(1)
        .error_says("it is for signer example.com/widgets");
    assert!(conditions(cluster, &other).is_empty());
    admin
        .onboard(&["approve", "no-such-request"])
        .code(1)
        .error_says("CertificateSigningRequest no-such-request not found");

    // system:masters and a tampered request never get this far: the API server refuses to
    // create them (the tampered case is a unit test of review.rs).
    let masters = kubectl_csr(
        cluster,
        &admin,
        &unique("root"),
        "/CN=mallory/O=system:masters",
        client,
        &["client auth"],
    );
    assert!(!masters.status.success());
    assert!(
        String::from_utf8_lossy(&masters.stderr).contains("system:masters"),
        "{}",
        String::from_utf8_lossy(&masters.stderr)
    );

    admin.onboard(&["approve", &good]).success();
    assert_eq!(conditions(cluster, &good), ["Approved"]);
    // What approve refused, deny can still turn down.
    admin
        .onboard(&["deny", &server, "--reason", "not a client certificate"])
        .success();
    assert_eq!(conditions(cluster, &server), ["Denied"]);
}

#[test]
fn approving_needs_only_the_documented_rules_and_names_them_when_missing() {
    let cluster = Cluster::shared();
    let requester = Env::bootstrap(cluster);
    let user = unique("waiting");
    let child = requester.spawn(&[&user, "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);

    // The bootstrap user may create requests, not approve them.
    requester
        .onboard(&["approve", &csr])
        .code(1)
        .error_says(r#"you may not approve requests for the kubernetes.io/kube-apiserver-client signer; an administrator must grant the RBAC rules {apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/approval"], verbs: ["update"]} and {apiGroups: ["certificates.k8s.io"], resources: ["signers"], verbs: ["approve"], resourceNames: ["kubernetes.io/kube-apiserver-client"]}"#);
    requester
        .onboard(&["deny", &csr])
        .code(1)
        .error_says("you may not deny requests");
    assert!(conditions(cluster, &csr).is_empty());

    // An approver with exactly the README's rules, onboarded with our own tool.
    let role = unique("csr-approver");
    cluster.admin_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {role}}}
rules:
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests"]
  verbs: ["get", "list"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests/approval"]
  verbs: ["update"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["signers"]
  resourceNames: ["kubernetes.io/kube-apiserver-client"]
  verbs: ["approve"]
"#
        ),
    );
    let admin = Env::admin(cluster);
    let approver = unique("approver");
    admin
        .onboard(&[&approver, "--approve", "--clusterrole", &role])
        .success();
    let context = format!("{approver}@{}", cluster.name);
    let row = {
        let run = admin.onboard(&["pending", "--context", &context]).success();
        run.stdout.lines().any(|l| l.starts_with(&csr))
    };
    assert!(row, "the approver does not see {csr}");
    admin
        .onboard(&["approve", &csr, "--context", &context])
        .success();
    finish(child, "kubectl onboard (approved by an approver)").success();
}

/// kubectl onboard with a KUBECONFIG list.
fn onboard_with(env: &Env, kubeconfig: &str, args: &[&str]) -> Run {
    let out = env
        .onboard_command(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    Run {
        command: format!("KUBECONFIG={kubeconfig} kubectl onboard {}", args.join(" ")),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl config view --raw -o json` of one file.
fn view(path: &std::path::Path) -> Value {
    let out = Command::new(kubectl())
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn drop_entries(view: &Value, user: &str, contexts: &[&str]) -> Value {
    let mut v = view.clone();
    if let Some(list) = v["users"].as_array_mut() {
        list.retain(|e| e["name"] != user);
    }
    if let Some(list) = v["contexts"].as_array_mut() {
        list.retain(|e| !contexts.contains(&e["name"].as_str().unwrap()));
    }
    v
}

#[test]
fn offboard_removes_the_bindings_then_the_kubeconfig_entries() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("leaver");
    let ns = unique("team");
    cluster.admin(&["create", "namespace", &ns]);
    // Not `view`: it is aggregated, and the test cluster runs only the CSR controllers.
    let reader = unique("pod-reader");
    cluster.admin(&[
        "create",
        "clusterrole",
        &reader,
        "--verb=list,get",
        "--resource=pods",
    ]);
    cluster.admin(&[
        "create",
        "role",
        "deployer",
        "-n",
        &ns,
        "--verb=create,get",
        "--resource=deployments.apps",
    ]);
    env.onboard(&[
        &user,
        "--approve",
        "--duration",
        "90d",
        "--clusterrole",
        &reader,
        "--role",
        "deployer",
        "-n",
        &ns,
        "--use-context",
    ])
    .success();
    let manual = unique("manual-binding");
    cluster.admin(&[
        "create",
        "rolebinding",
        &manual,
        "-n",
        &ns,
        "--role=deployer",
        &format!("--user={user}"),
    ]);
    let context = format!("{user}@{}", cluster.name);
    let extra = unique("extra");
    env.kubectl_ok(&[
        "config",
        "set-context",
        &extra,
        "--cluster",
        &cluster.name,
        "--user",
        &user,
    ]);
    let can_i = |args: &[&str]| {
        let mut full = vec!["--context", context.as_str(), "auth", "can-i"];
        full.extend_from_slice(args);
        String::from_utf8_lossy(&env.kubectl(&full).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can_i(&["list", "pods", "-A"]), "yes");
    let status = env.onboard(&["status", "-o", "json"]).success();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let not_after = status["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user.as_str())
        .unwrap()["notAfter"]
        .as_str()
        .unwrap()
        .to_string();

    // The current context is the leaver's: the admin names their own.
    let admin = ["--context", "admin@local"];
    let before = env.kubeconfig_bytes();
    let run = env
        .onboard(&[&["offboard", user.as_str()][..], &admin].concat())
        .success();
    assert!(
        run.stdout.contains(&format!(
            "Deleted ClusterRoleBinding kubectl-onboard:{user}:{reader}\n"
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "Deleted RoleBinding kubectl-onboard:{user}:deployer in namespace {ns}\n"
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "Kubernetes cannot revoke a client certificate: {user}'s certificate stays valid until {not_after} (89 days)"
        )),
        "{run}"
    );
    assert!(run.stderr.contains(&format!("RoleBinding {manual} in namespace {ns} was not made by kubectl onboard and still names {user}")), "{run}");
    assert!(run.stderr.contains("add --kubeconfig-entries"), "{run}");
    assert_eq!(
        env.kubeconfig_bytes(),
        before,
        "the kubeconfig changed without --kubeconfig-entries"
    );
    assert_eq!(can_i(&["list", "pods", "-A"]), "no");
    let gone = cluster.kubectl(
        &cluster.admin_kubeconfig,
        &[
            "get",
            "clusterrolebinding",
            &format!("kubectl-onboard:{user}:{reader}"),
        ],
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    // The binding we did not make is left alone.
    cluster.admin(&["get", "rolebinding", &manual, "-n", &ns]);

    let view_before = env.config_view();
    let run = env
        .onboard(
            &[
                &["offboard", user.as_str(), "--kubeconfig-entries"][..],
                &admin,
            ]
            .concat(),
        )
        .success();
    let file = env.kubeconfig.display().to_string();
    // In file order (kubectl config set-context sorted the file).
    let theirs: Vec<String> = view_before["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .filter(|c| *c == context || *c == extra)
        .map(|c| format!("\"{c}\""))
        .collect();
    assert_eq!(theirs.len(), 2);
    assert!(
        run.stdout.contains(&format!(
            "Removed user \"{user}\" and contexts {} from {file}.",
            theirs.join(", ")
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "current-context \"{context}\" is now unset in {file}"
        )),
        "{run}"
    );
    assert!(run.stdout.contains("stays valid until"), "{run}");
    let mut expected = drop_entries(&view_before, &user, &[&context, &extra]);
    expected["current-context"] = Value::String(String::new());
    assert_eq!(env.config_view(), expected);
    assert!(!env.home.join(".kube/config.lock").exists());

    let nothing = env
        .onboard(
            &[
                &["offboard", user.as_str(), "--kubeconfig-entries"][..],
                &admin,
            ]
            .concat(),
        )
        .success();
    assert!(
        nothing
            .stdout
            .starts_with(&format!("Nothing to remove for {user}")),
        "{nothing}"
    );
}

#[test]
fn offboard_edits_each_file_of_a_kubeconfig_list_where_the_entries_live() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("spread");
    // b.kubeconfig holds the user (onboarded into it); a.kubeconfig, first in the list, has a
    // context of theirs and the current context.
    let a = env.home.join("a.kubeconfig");
    let b = env.home.join("b.kubeconfig");
    std::fs::copy(&env.kubeconfig, &a).unwrap();
    std::fs::copy(&env.kubeconfig, &b).unwrap();
    onboard_with(&env, &b.display().to_string(), &[&user, "--approve"]).success();
    let theirs = unique("theirs");
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&a)
        .args([
            "config",
            "set-context",
            &theirs,
            "--cluster",
            &cluster.name,
            "--user",
            &user,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (a_before, b_before) = (view(&a), view(&b));

    let list = format!("{}:{}", a.display(), b.display());
    let run = onboard_with(&env, &list, &["offboard", &user, "--kubeconfig-entries"]).success();
    assert!(
        run.stdout.contains(&format!(
            "Removed context \"{theirs}\" from {}.",
            a.display()
        )),
        "{run}"
    );
    let context = format!("{user}@{}", cluster.name);
    assert!(
        run.stdout.contains(&format!(
            "Removed user \"{user}\" and context \"{context}\" from {}.",
            b.display()
        )),
        "{run}"
    );
    assert!(!run.stdout.contains("unset"), "{run}");
    assert_eq!(view(&a), drop_entries(&a_before, &user, &[&theirs]));
    assert_eq!(view(&b), drop_entries(&b_before, &user, &[&context]));
}

#[test]
fn review_commands_check_their_arguments_before_calling_the_cluster() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    env.onboard(&["approve"])
        .code(2)
        .error_says("kubectl onboard approve NAME");
    env.onboard(&["deny", "x", "--reason", " "])
        .code(2)
        .error_says("--reason is empty");
    env.onboard(&["pending", "-o", "wide"])
        .code(2)
        .error_says("use -o json or -o yaml");
    env.onboard(&["offboard"])
        .code(2)
        .error_says("offboard --help");
    let help = env.onboard(&["approve", "--help"]).success();
    assert!(help.stdout.contains("system:masters"), "{help}");
    assert!(std::path::Path::new(BIN).exists());
}

/// A hostile requester's CN with an escape sequence (clear the screen) and one with a
/// right-to-left override: shown escaped in the queue, refused by approve; a deny message with
/// an escape reaches the waiting requester escaped.
#[test]
fn names_and_messages_from_the_cluster_cannot_drive_the_terminal() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let client = "kubernetes.io/kube-apiserver-client";
    let (clear, reversed) = (unique("clear"), unique("rlo"));
    for (name, subject) in [
        (&clear, "/CN=eve\u{1b}[2Jroot/O=dev"),
        (&reversed, "/CN=eve\u{202E}nimda/O=dev"),
    ] {
        let out = kubectl_csr(cluster, &admin, name, subject, client, &["client auth"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run = admin.onboard(&["pending"]).success();
    for raw in ['\u{1b}', '\u{202E}'] {
        assert!(
            !run.stdout.contains(raw) && !run.stderr.contains(raw),
            "{run}"
        );
    }
    assert!(run.stdout.contains("eve\\u{1b}[2Jroot"), "{run}");
    assert!(run.stdout.contains("eve\\u{202e}nimda"), "{run}");
    // Each row is still one line: the table has a header and our rows, nothing forged.
    let ours = run.stdout.lines().filter(|l| l.contains("eve\\u{")).count();
    assert_eq!(ours, 2, "{run}");
    for name in [&clear, &reversed] {
        let refused = admin.onboard(&["approve", name]).code(1);
        let refused = refused.error_says("control or bidirectional characters");
        assert!(!refused.stderr.contains('\u{1b}') && !refused.stderr.contains('\u{202E}'));
        assert_eq!(conditions(cluster, name), Vec::<String>::new());
    }

    let requester = Env::bootstrap(cluster);
    let user = unique("escaped");
    let child = requester.spawn(&[&user, "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    admin
        .onboard(&["deny", &csr, "--reason", "no\u{1b}[2J access"])
        .success();
    let denied = finish(child, "the denied requester").code(3);
    assert!(!denied.stderr.contains('\u{1b}'), "{denied}");
    assert!(denied.stderr.contains("no\\u{1b}[2J access"), "{denied}");
}
