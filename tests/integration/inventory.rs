//! The certificate inventory on the real control plane: what kubectl onboard records outlives
//! the CertificateSigningRequest, names each certificate by the fingerprint openssl computes and
//! the credential id the API server reports, and `kubectl onboard certificates` lists it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::Cluster;
use crate::support::onboard::{Env, csr_exists, finish, unique, wait_for_csr};
use base64ct::{Base64, Encoding};
use serde_json::Value;

/// The inventory as `kubectl onboard certificates -o json` prints it, for these users only
/// (other tests record theirs in the same cluster).
fn listed(env: &Env, args: &[&str], users: &[&str]) -> Vec<Value> {
    let mut all = vec!["certificates", "-o", "json"];
    all.extend_from_slice(args);
    let run = env.onboard(&all).success();
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{run}"));
    v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| users.contains(&c["user"].as_str().unwrap()))
        .cloned()
        .collect()
}

/// `openssl x509 -fingerprint -sha256` of user `name`'s certificate in the kubeconfig: lowercase
/// hex without colons.
fn openssl_fingerprint(env: &Env, name: &str) -> String {
    let entry = env.user_entry(name);
    let pem = Base64::decode_vec(entry["client-certificate-data"].as_str().unwrap()).unwrap();
    let file = env.home.join(format!("{name}.crt"));
    fs::write(&file, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

#[test]
fn issued_certificates_are_recorded_beyond_their_requests() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let (jane, bob) = (unique("inv-jane"), unique("inv-bob"));
    let run = env
        .onboard(&[&jane, "--group", "dev", "--approve", "-v"])
        .success();
    let csr = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("Created CertificateSigningRequest "))
        .unwrap()
        .to_string();
    assert!(
        !csr_exists(cluster, &csr),
        "the request is deleted when done"
    );
    assert!(
        run.stderr
            .contains("inventory: recorded as kubectl-onboard/x509sha256-"),
        "{run}"
    );
    env.onboard(&[
        &bob,
        "--group",
        "ops",
        "--group",
        "dev",
        "--approve",
        "--key-algorithm",
        "ecdsa-p256",
    ])
    .success();

    let records = listed(&env, &[], &[&jane, &bob]);
    assert_eq!(records.len(), 2, "{records:?}");
    let of = |user: &str| records.iter().find(|r| r["user"] == user).unwrap().clone();
    let (j, b) = (of(&jane), of(&bob));
    assert_eq!(j["fingerprint"], openssl_fingerprint(&env, &jane));
    assert_eq!(b["fingerprint"], openssl_fingerprint(&env, &bob));
    assert_eq!(j["groups"], serde_json::json!(["dev"]));
    assert_eq!(
        b["groups"],
        serde_json::json!(["dev", "ops"]),
        "as the certificate orders them"
    );
    assert_eq!(b["key"], "ECDSA-P256");
    assert_eq!(j["how"], "admin");
    assert_eq!(j["csr"], csr.as_str());
    assert_eq!(j["requester"], "admin");
    assert_eq!(j["approver"], "admin");
    assert_eq!(j["state"], "valid");

    // The fingerprint is the credential id the API server gives the certificate's user.
    let whoami: Value = serde_json::from_str(&env.kubectl_ok(&[
        "--context",
        &format!("{jane}@{}", cluster.name),
        "auth",
        "whoami",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        whoami["status"]["userInfo"]["extra"]["authentication.kubernetes.io/credential-id"][0],
        j["credentialId"]
    );

    // The table, one user; --warn as a check (the signer's default lifetime is a year).
    let table = env.onboard(&["certificates", &jane]).success();
    let line = table.stdout.lines().find(|l| l.starts_with(&jane)).unwrap();
    let short: String = j["fingerprint"]
        .as_str()
        .unwrap()
        .chars()
        .take(16)
        .collect();
    assert!(
        line.contains(&short) && line.contains("valid") && line.contains("admin"),
        "{table}"
    );
    assert!(!table.stdout.contains(&bob), "{table}");
    env.onboard(&["certificates", &jane, "--warn", "400d"])
        .code(5)
        .error_says(&jane);
    env.onboard(&["certificates", &jane, "--warn", "30d"])
        .success();

    // renew records the new certificate, as made by renew.
    env.onboard(&["renew", &jane, "--approve"]).success();
    let records = listed(&env, &[], &[&jane]);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().any(|r| r["how"] == "renew"), "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r["fingerprint"] == openssl_fingerprint(&env, &jane))
    );

    // sign (a colleague's request) and batch record theirs too.
    let dana = unique("inv-dana");
    let csr_file = env.home.join("dana.csr");
    env.onboard(&["request", &dana, "--csr-out", csr_file.to_str().unwrap()])
        .success();
    let signed = env.home.join("dana.kubeconfig");
    env.onboard(&[
        "sign",
        csr_file.to_str().unwrap(),
        "--approve",
        "--output-kubeconfig",
        signed.to_str().unwrap(),
    ])
    .success();
    let erin = unique("inv-erin");
    let team = env.home.join("team.yaml");
    fs::write(&team, format!("- name: {erin}\n  groups: [qa]\n")).unwrap();
    let out = env.home.join("out");
    env.onboard(&[
        "batch",
        team.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--approve",
        "--key-algorithm",
        "ecdsa-p256",
    ])
    .success();
    let hows: Vec<Value> = listed(&env, &[], &[&dana, &erin])
        .iter()
        .map(|r| r["how"].clone())
        .collect();
    assert_eq!(hows.len(), 2, "{hows:?}");
    assert!(
        hows.contains(&"sign".into()) && hows.contains(&"batch".into()),
        "{hows:?}"
    );

    // Signed here with the CA's key: recorded by the user of the context for the same server
    // (the administrator), one at a time and in a batch.
    let (fred, gina) = (unique("inv-fred"), unique("inv-gina"));
    let (ca_cert, ca_key) = (
        cluster.ca_cert.to_str().unwrap(),
        cluster.ca_key.to_str().unwrap(),
    );
    let offline = [
        "--ca-cert",
        ca_cert,
        "--ca-key",
        ca_key,
        "--server",
        &cluster.server,
    ];
    let alone = env.home.join("fred.kubeconfig");
    let mut args = vec![
        fred.as_str(),
        "--output-kubeconfig",
        alone.to_str().unwrap(),
    ];
    args.extend(offline);
    env.onboard(&args).success();
    fs::write(&team, format!("- name: {gina}\n  groups: [qa]\n")).unwrap();
    let mut args = vec!["batch", team.to_str().unwrap(), "--output-dir"];
    let offline_out = env.home.join("offline-out");
    args.push(offline_out.to_str().unwrap());
    args.extend(offline);
    env.onboard(&args).success();
    let records = listed(&env, &[], &[&fred, &gina]);
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(
            (&r["how"], &r["approver"], &r["csr"]),
            (&"offline".into(), &"admin".into(), &Value::Null),
            "{r}"
        );
    }

    // --no-record leaves no trace.
    let carol = unique("inv-carol");
    env.onboard(&[&carol, "--approve", "--no-record"]).success();
    assert!(listed(&env, &["--all"], &[&carol]).is_empty());
}

/// A record of a certificate that expired long ago (beyond the 90 days kept) is pruned by the
/// next `certificates`; one that expired recently is kept, shown with --all.
#[test]
fn records_expired_long_ago_are_pruned() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    // The namespace exists once anything was recorded.
    admin.onboard(&[&unique("inv-seed"), "--approve"]).success();
    let (old, recent) = (unique("inv-old"), unique("inv-recent"));
    for (user, end, fingerprint) in [
        (&old, "2025-01-01T00:00:00Z", "01".repeat(32)),
        (&recent, "2026-11-01T00:00:00Z", "02".repeat(32)),
    ] {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x509sha256-{fingerprint}\n  namespace: kubectl-onboard\n  labels: {{kubectl-onboard/inventory: certificate}}\n  annotations:\n    kubectl-onboard/user: {user}\n    kubectl-onboard/fingerprint: \"{fingerprint}\"\n    kubectl-onboard/not-after: \"{end}\"\n"
        );
        cluster.admin_stdin(&["apply", "-f", "-"], &manifest);
    }
    let shown = listed(&admin, &["--all"], &[&old, &recent]);
    let users: Vec<&str> = shown.iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(users, [recent.as_str()], "{shown:?}");
    assert_eq!(shown[0]["state"], "expired");
    let left = cluster.admin(&["get", "configmaps", "-n", "kubectl-onboard", "-o", "name"]);
    assert!(
        !left.contains(&"01".repeat(32)),
        "the stale record is still there:\n{left}"
    );
    assert!(left.contains(&"02".repeat(32)), "{left}");
    assert!(
        listed(&admin, &[], &[&recent]).is_empty(),
        "expired: shown only with --all"
    );
}

/// The bootstrap identity may not write the inventory: it still onboards, with one line.
#[test]
fn a_requester_who_may_not_record_is_told_once_and_onboarded() {
    let cluster = Cluster::shared();
    let env = Env::bootstrap(cluster);
    fs::set_permissions(&env.kubeconfig, fs::Permissions::from_mode(0o600)).unwrap();
    let user = unique("inv-self");
    let child = env.spawn(&[&user, "--group", "dev", "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    cluster.admin(&["certificate", "approve", &csr]);
    let run = finish(child, "kubectl onboard (as onboarder)").success();
    let notes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("Not recorded in the cluster's certificate inventory"))
        .collect();
    assert_eq!(notes.len(), 1, "{run}");
    assert!(
        notes[0].contains("you may not create ConfigMaps in namespace kubectl-onboard"),
        "{run}"
    );
    assert!(!run.stderr.contains("warning:"), "{run}");
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);

    // Approved with plain kubectl: the next `certificates` of someone who may record picks it up
    // from the issued request, which the requester could not delete.
    let admin = Env::admin(cluster);
    let records = listed(&admin, &[], &[&user]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["how"], "self-service");
    assert_eq!(records[0]["requester"], "onboarder");
    assert_eq!(
        records[0]["approver"],
        Value::Null,
        "plain kubectl does not say who approved"
    );
    assert_eq!(records[0]["csr"], csr.as_str());
}

/// `kubectl onboard approve` records what it approved once the signer has issued it, with the
/// approver: the self-service path leaves a full record.
#[test]
fn approve_records_the_certificates_it_approved() {
    let cluster = Cluster::shared();
    let requester = Env::bootstrap(cluster);
    let admin = Env::admin(cluster);
    let user = unique("inv-approved");
    let child = requester.spawn(&[&user, "--group", "dev", "--timeout", "60s"]);
    let csr = wait_for_csr(cluster, &user);
    admin.onboard(&["approve", &csr]).success();
    finish(child, "kubectl onboard (as onboarder)").success();
    let records = listed(&admin, &[], &[&user]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["how"], "self-service");
    assert_eq!(records[0]["approver"], "admin");
    assert_eq!(records[0]["requester"], "onboarder");
    assert_eq!(records[0]["groups"], serde_json::json!(["dev"]));
}

#[test]
fn the_issuing_command_has_the_last_word_over_a_sweep() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let sweeper = Env::admin(cluster);
    // A colleague runs `certificates` (which records the issued requests it finds) over and
    // over while the administrator onboards: the sweep sees each request first, and guesses.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sweeping = {
        let stop = stop.clone();
        let (home, kubeconfig) = (sweeper.home.clone(), sweeper.kubeconfig.clone());
        std::thread::spawn(move || {
            let mut sweeps = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = Command::new(crate::support::onboard::BIN)
                    .args(["certificates", "-o", "json"])
                    .env("HOME", &home)
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                sweeps += 1;
            }
            sweeps
        })
    };
    let users: Vec<String> = (0..4).map(|i| unique(&format!("sweep{i}"))).collect();
    for user in &users {
        env.onboard(&[
            user,
            "--group",
            "dev",
            "--approve",
            "--key-algorithm",
            "ecdsa-p256",
        ])
        .success();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sweeps = sweeping.join().unwrap();
    assert!(sweeps > 0);
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let records = listed(&env, &[], &names);
    assert_eq!(records.len(), users.len(), "{records:?}");
    for record in &records {
        assert_eq!(record["how"], "admin", "{record}");
        assert_eq!(record["requester"], "admin", "{record}");
        assert_eq!(record["approver"], "admin", "{record}");
    }
}

#[test]
fn a_forged_record_is_shown_as_untrusted_and_never_revoked_from() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let (jane, victim) = (unique("forge-jane"), unique("forge-victim"));
    env.onboard(&[&jane, "--group", "dev", "--approve"])
        .success();
    let whoami: Value =
        serde_json::from_str(&env.kubectl_ok(&["auth", "whoami", "-o", "json"])).unwrap();
    let admin_fingerprint =
        whoami["status"]["userInfo"]["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("X509SHA256=")
            .to_string();
    // Someone who may create ConfigMaps in the inventory's namespace writes a record that
    // names a user of their choice with the administrator's fingerprint, over jane's
    // certificate.
    let pem = Base64::decode_vec(
        env.user_entry(&jane)["client-certificate-data"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let forged = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": format!("x509sha256-{admin_fingerprint}"),
            "namespace": "kubectl-onboard",
            "labels": {"kubectl-onboard/inventory": "certificate"},
            "annotations": {
                "kubectl-onboard/user": victim,
                "kubectl-onboard/groups": "dev",
                "kubectl-onboard/fingerprint": admin_fingerprint,
                "kubectl-onboard/not-after": "2099-01-01T00:00:00Z",
                "kubectl-onboard/how": "admin",
                "kubectl-onboard/approver": "admin",
            },
        },
        "data": {"certificate": String::from_utf8(pem).unwrap()},
    });
    crate::support::cluster::run_with_stdin(
        cluster
            .kubectl_command(&cluster.admin_kubeconfig)
            .args(["create", "-f", "-"]),
        &forged.to_string(),
    );
    let shown = env
        .onboard(&["certificates", &victim, "-o", "json"])
        .success();
    let v: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["certificates"][0]["state"], "untrusted", "{shown}");
    assert!(
        v["certificates"][0]["untrusted"]
            .as_str()
            .unwrap()
            .contains("not its certificate's"),
        "{shown}"
    );
    assert!(shown.stderr.contains("it may be forged"), "{shown}");
    // jane's own record holds together.
    let mine = listed(&env, &[], &[&jane]);
    assert_eq!(mine[0]["state"], "valid", "{mine:?}");

    let refused = env
        .onboard(&["revoke", &victim])
        .code(1)
        .error_says("that can be trusted");
    assert!(
        refused.stderr.contains("not taking the record"),
        "{refused}"
    );
    let list = env.onboard(&["revoke", "--list", "-o", "json"]).success();
    assert!(!list.stdout.contains(&admin_fingerprint), "{list}");
    let _ = cluster.admin(&[
        "delete",
        "configmap",
        "-n",
        "kubectl-onboard",
        &format!("x509sha256-{admin_fingerprint}"),
    ]);
}

/// Someone deletes their request the moment the signer issues it (hoping to keep the
/// certificate out of the inventory): `approve` records it all the same.
#[test]
fn a_request_deleted_the_moment_it_is_issued_is_recorded_all_the_same() {
    use futures::StreamExt;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use kube::api::{Api, DeleteParams, WatchEvent, WatchParams};
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let user = unique("inv-hider");
    let name = format!("{user}-req");
    let key = admin.home.join("hider.key");
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .args(["-subj", &format!("/CN={user}/O=dev")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [\"client auth\"]\n",
        Base64::encode_string(&out.stdout)
    );
    cluster.admin_stdin(&["create", "-f", "-"], &manifest);
    let hider = {
        let (kubeconfig, name) = (cluster.admin_kubeconfig.clone(), name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let config = kube::Config::from_custom_kubeconfig(
                    kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
                    &Default::default(),
                )
                .await
                .unwrap();
                let api: Api<CertificateSigningRequest> =
                    Api::all(kube::Client::try_from(config).unwrap());
                let params = WatchParams::default()
                    .fields(&format!("metadata.name={name}"))
                    .timeout(60);
                let mut events = api.watch(&params, "0").await.unwrap().boxed();
                while let Some(Ok(event)) = events.next().await {
                    if let WatchEvent::Modified(csr) = event
                        && csr.status.and_then(|s| s.certificate).is_some()
                    {
                        api.delete(&name, &DeleteParams::default()).await.unwrap();
                        return true;
                    }
                }
                false
            })
        })
    };
    admin.onboard(&["approve", &name]).success();
    assert!(hider.join().unwrap(), "the request was deleted once issued");
    assert!(!csr_exists(cluster, &name));
    let records = listed(&admin, &[], &[&user]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["csr"], name.as_str());
    assert_eq!(records[0]["approver"], "admin");
}
