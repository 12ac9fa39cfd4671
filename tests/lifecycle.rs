//! The lifecycle subcommands end to end, on the real control plane, with the real kubectl
//! (and openssl) as the judges.

mod support;

use support::Cluster;
use support::onboard::{Env, unique};

#[test]
fn status_lists_certificates_with_their_expiry_and_warns() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let (short, long, files) = (unique("short"), unique("long"), unique("files"));
    env.onboard(&[&short, "--approve", "--duration", "10m", "--group", "dev"])
        .success();
    env.onboard(&[&long, "--approve", "--duration", "90d"])
        .success();
    env.onboard(&[&files, "--approve", "--duration", "60d", "--embed=false"])
        .success();

    let run = env.onboard(&["status"]).success();
    for user in [&short, &long, &files, &"admin".to_string()] {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(user.as_str())),
            "{user} missing\n{run}"
        );
    }
    assert!(run.stdout.starts_with("USER "), "{run}");

    let run = env
        .onboard(&["status", "--warn", "30d", "-o", "json"])
        .code(5)
        .error_says("expire within 30d");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let find = |u: &str| {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["user"] == u)
            .unwrap()
            .clone()
    };
    let s = find(&short);
    assert_eq!(s["state"], "expiring");
    assert_eq!(s["daysLeft"], 0);
    assert_eq!(s["groups"], serde_json::json!(["dev"]));
    assert_eq!(s["commonName"], short.as_str());
    let l = find(&long);
    assert_eq!(l["state"], "ok");
    assert!((88..=90).contains(&l["daysLeft"].as_i64().unwrap()), "{l}");
    let f = find(&files);
    assert_eq!(f["state"], "ok");
    assert!(f["issuer"].as_str().unwrap().contains("CN="), "{f}");
    // The admin's certificate comes from the harness, valid for a year or more.
    assert_eq!(find("admin")["state"], "ok");

    env.onboard(&["status", "--warn", "1d"])
        .code(5)
        .error_says(&short);
    let all_fine = env
        .onboard(&["status", "--warn", "1m", "-o", "yaml"])
        .success();
    assert!(all_fine.stdout.contains("state: ok"), "{all_fine}");
}
