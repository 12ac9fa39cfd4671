//! Every command prints its result for scripts with `-o json` (one JSON document on stdout,
//! nothing else there) and keeps quiet with `-q` (no progress on stderr, at most warnings),
//! end to end on the real control plane; kubectl checks what the commands say they did.

use crate::support::Cluster;
use crate::support::onboard::{Env, Run, finish, unique, wait_for_csr};
use serde_json::Value;

/// Runs `args -o json -q`: must succeed, print one JSON document and no progress.
fn json_quietly(env: &Env, args: &[&str]) -> Value {
    let run = env
        .onboard(&[args, &["-o", "json", "-q"]].concat())
        .success();
    parsed_quietly(&run)
}

fn parsed_quietly(run: &Run) -> Value {
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(progress.is_empty(), "-q printed progress\n{run}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{run}"))
}

#[test]
fn the_admin_lifecycle_in_json() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let user = unique("jsonuser");

    let onboarded = json_quietly(&admin, &[&user, "--group", "dev", "--approve"]);
    assert_eq!(onboarded["user"], user.as_str());
    assert_eq!(onboarded["authenticatedAs"]["username"], user.as_str());
    let context = onboarded["context"].as_str().unwrap().to_string();
    assert_eq!(admin.whoami(&context).0, user);

    let status = json_quietly(&admin, &["status"]);
    let row = status["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == user.as_str())
        .unwrap_or_else(|| panic!("{user} not in {status}"))
        .clone();
    assert_eq!(row["groups"], serde_json::json!(["dev"]));

    let renewed = json_quietly(&admin, &["renew", &user, "--approve"]);
    assert_eq!(renewed["user"], user.as_str());
    assert_eq!(renewed["renewed"], true);
    assert_eq!(renewed["newKey"], true);
    assert_eq!(renewed["previousNotAfter"], onboarded["notAfter"]);
    assert_eq!(renewed["authenticatedAs"]["username"], user.as_str());
    assert_eq!(admin.whoami(&context).0, user);

    let not_due = json_quietly(&admin, &["renew", &user, "--if-expires-within", "1d"]);
    assert_eq!(not_due["renewed"], false);
    assert_eq!(not_due["notAfter"], renewed["notAfter"]);

    let offboarded = json_quietly(&admin, &["offboard", &user, "--kubeconfig-entries"]);
    assert_eq!(offboarded["user"], user.as_str());
    let removed = &offboarded["kubeconfigEntriesRemoved"][0];
    assert_eq!(removed["user"], true);
    assert_eq!(removed["contexts"], serde_json::json!([context]));
    assert!(
        offboarded["certificateValidUntil"].is_string(),
        "{offboarded}"
    );
    let users = admin.config_view()["users"].clone();
    assert!(
        !users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == user.as_str()),
        "{users}"
    );
}

#[test]
fn two_party_onboarding_and_batch_in_json() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    let user = unique("jsonpair");
    let csr = admin.home.join("pair.csr");
    let kubeconfig = admin.home.join("pair.kubeconfig");

    let requested = json_quietly(
        &admin,
        &[
            "request",
            &user,
            "-g",
            "dev",
            "--csr-out",
            csr.to_str().unwrap(),
        ],
    );
    assert_eq!(requested["csr"], csr.to_str().unwrap());
    let request = requested["request"].as_str().unwrap();
    assert!(
        request.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{requested}"
    );
    assert_eq!(std::fs::read_to_string(&csr).unwrap(), request);
    assert!(std::path::Path::new(requested["keyFile"].as_str().unwrap()).exists());

    let signed = json_quietly(
        &admin,
        &[
            "sign",
            csr.to_str().unwrap(),
            "--approve",
            "--output-kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    );
    assert_eq!(signed["user"], user.as_str());
    assert_eq!(signed["kubeconfig"], kubeconfig.to_str().unwrap());
    assert!(signed["csrName"].is_string(), "{signed}");

    let imported = json_quietly(&admin, &["import", kubeconfig.to_str().unwrap()]);
    assert_eq!(imported["user"], user.as_str());
    assert_eq!(imported["groups"], serde_json::json!(["dev"]));
    assert_eq!(imported["authenticatedAs"]["username"], user.as_str());
    assert_eq!(admin.whoami(imported["context"].as_str().unwrap()).0, user);

    let team = admin.home.join("team.yaml");
    let member = unique("jsonteam");
    std::fs::write(&team, format!("- name: {member}\n  groups: [dev]\n")).unwrap();
    let out = admin.home.join("team");
    let args = [
        "batch",
        team.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--approve",
        "--key-algorithm",
        "ecdsa-p256",
    ];
    let batch = json_quietly(&admin, &args);
    let row = &batch["users"][0];
    assert_eq!(row["user"], member.as_str());
    assert_eq!(row["result"], "ok");
    let file = row["kubeconfig"].as_str().unwrap();
    let whoami = admin.kubectl_ok(&["--kubeconfig", file, "auth", "whoami", "-o", "json"]);
    assert!(
        whoami.contains(&format!("\"username\": \"{member}\"")),
        "{whoami}"
    );
    // A second run skips the user, and says so in the same shape.
    let again = json_quietly(&admin, &args);
    assert_eq!(again["users"][0]["result"], "skipped");
}

#[test]
fn the_review_queue_in_json() {
    let cluster = Cluster::shared();
    let requester = Env::bootstrap(cluster);
    let admin = Env::admin(cluster);
    let (approved_user, denied_user) = (unique("jsonok"), unique("jsonno"));
    let approved_child = requester.spawn(&[&approved_user, "--timeout", "60s"]);
    let denied_child = requester.spawn(&[&denied_user, "--timeout", "60s"]);
    let (to_approve, to_deny) = (
        wait_for_csr(cluster, &approved_user),
        wait_for_csr(cluster, &denied_user),
    );

    let pending = json_quietly(&admin, &["pending"]);
    let names: Vec<&str> = pending["pending"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&to_approve.as_str()) && names.contains(&to_deny.as_str()),
        "{pending}"
    );

    let approved = json_quietly(&admin, &["approve", &to_approve]);
    assert_eq!(approved["approved"][0]["name"], to_approve.as_str());
    assert_eq!(
        approved["approved"][0]["commonName"],
        approved_user.as_str()
    );
    assert_eq!(approved["alreadyApproved"], serde_json::json!([]));
    let again = json_quietly(&admin, &["approve", &to_approve]);
    assert_eq!(again["alreadyApproved"], serde_json::json!([to_approve]));

    let denied = json_quietly(&admin, &["deny", &to_deny, "--reason", "use SSO"]);
    assert_eq!(denied["denied"], serde_json::json!([to_deny]));
    assert_eq!(denied["message"], "use SSO");

    finish(approved_child, "the approved requester").success();
    let refused = finish(denied_child, "the denied requester").code(3);
    assert!(refused.stderr.contains("use SSO"), "{refused}");
}

#[test]
fn verbose_says_what_it_read_and_an_unknown_format_is_a_usage_error() {
    let cluster = Cluster::shared();
    let admin = Env::admin(cluster);
    for command in [&["pending"][..], &["status"], &["offboard", "nobody-here"]] {
        let run = admin.onboard(&[command, &["-v"]].concat()).success();
        assert!(run.stderr.contains("kubeconfig: read"), "{run}");
        let wide = admin.onboard(&[command, &["-o", "wide"]].concat());
        wide.code(2)
            .error_says("-o wide is not a known output format");
    }
}
