//! The lifecycle subcommands end to end, on the real control plane, with the real kubectl
//! (and openssl) as the judges.

use crate::support::Cluster;
use crate::support::onboard::{Env, unique};

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

#[test]
fn clusterrole_and_role_bindings_are_made_idempotently_and_labelled() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("bound");
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
    let context = format!("{user}@{}", cluster.name);
    let can_i = |args: &[&str]| {
        let mut full = vec!["--context", context.as_str(), "auth", "can-i"];
        full.extend_from_slice(args);
        String::from_utf8_lossy(&env.kubectl(&full).stdout)
            .trim()
            .to_string()
    };

    let run = env
        .onboard(&[
            &user,
            "--approve",
            "--clusterrole",
            &reader,
            "--role",
            "deployer",
            "-n",
            &ns,
        ])
        .success();
    assert!(
        run.stderr.contains(&format!(
            "Created ClusterRoleBinding to ClusterRole {reader}"
        )),
        "{run}"
    );
    assert_eq!(can_i(&["list", "pods", "-A"]), "yes");
    assert_eq!(can_i(&["create", "deployments.apps", "-n", &ns]), "yes");
    assert_eq!(
        can_i(&["create", "deployments.apps", "-n", "default"]),
        "no"
    );
    assert_eq!(can_i(&["delete", "pods", "-A"]), "no");

    let binding: serde_json::Value = serde_json::from_str(&cluster.admin(&[
        "get",
        "rolebinding",
        &format!("kubectl-onboard:{user}:deployer"),
        "-n",
        &ns,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        binding["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "kubectl-onboard"
    );
    assert_eq!(
        binding["metadata"]["annotations"]["kubectl-onboard/user"],
        user.as_str()
    );
    assert_eq!(binding["subjects"][0]["name"], user.as_str());

    let again = env
        .onboard(&[
            &user,
            "--approve",
            "--force",
            "--clusterrole",
            &reader,
            "--role",
            "deployer",
            "-n",
            &ns,
        ])
        .success();
    assert!(
        again.stderr.contains(&format!(
            "Kept the existing ClusterRoleBinding to ClusterRole {reader}"
        )),
        "{again}"
    );
}

#[test]
fn no_right_to_bind_is_found_before_anything_is_requested() {
    let cluster = Cluster::shared();
    let env = Env::bootstrap(cluster);
    let before = env.kubeconfig_bytes();
    env.onboard(&[&unique("nobind"), "--clusterrole", "view"])
        .code(1)
        .error_says(r#"you may not create the role bindings asked for (drop --clusterrole/--role, or bind later); an administrator must grant the RBAC rule {apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterrolebindings"], verbs: ["create"]}"#);
    assert_eq!(env.kubeconfig_bytes(), before);
}

#[test]
fn a_binding_to_a_role_that_does_not_exist_is_made_with_a_warning() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("norole");
    let role = unique("no-such-role");
    let run = env
        .onboard(&[&user, "--approve", "--clusterrole", &role])
        .success();
    assert!(
        run.stderr.contains(&format!(
            "warning: ClusterRole {role} does not exist (yet): the binding grants {user} nothing until it is created"
        )),
        "{run}"
    );
    let binding = format!("kubectl-onboard:{user}:{role}");
    cluster.admin(&["get", "clusterrolebinding", &binding]);
    // An existing role: no such warning.
    let run = env
        .onboard(&[&unique("hasrole"), "--approve", "--clusterrole", "view"])
        .success();
    assert!(!run.stderr.contains("does not exist"), "{run}");
}
