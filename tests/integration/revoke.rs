//! Revocation on the real control plane, checked with the real kubectl as the revoked user: her
//! writes are refused with the reason, her reads are not, nobody else is touched, a new
//! certificate for her works, and unrevoke undoes it.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::Cluster;
use crate::support::cluster::Options;
use crate::support::onboard::{Env, unique};
use serde_json::{Value, json};

/// `kubectl --kubeconfig K --context C create configmap NAME -n default`.
fn create_configmap(cluster: &Cluster, kubeconfig: &Path, context: &str) -> Output {
    let name = unique("written");
    cluster.kubectl(
        kubeconfig,
        &[
            "--context",
            context,
            "create",
            "configmap",
            &name,
            "-n",
            "default",
        ],
    )
}

/// Polls until `check` holds (the policy takes effect within seconds), at most 30 s.
fn eventually(what: &str, mut check: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match check() {
            None => return,
            Some(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "{what} within 30 s; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A new ClusterRole that may read and create ConfigMaps; its name.
fn configmap_writer(cluster: &Cluster) -> String {
    let role = unique("cm-writer");
    cluster.admin(&[
        "create",
        "clusterrole",
        &role,
        "--verb=get,list,create",
        "--resource=configmaps",
    ]);
    role
}

#[test]
fn a_revoked_certificate_may_read_but_not_write_and_unrevoke_undoes_it() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let role = configmap_writer(cluster);
    let (jane, bob) = (unique("rv-jane"), unique("rv-bob"));
    for user in [&jane, &bob] {
        env.onboard(&[
            user.as_str(),
            "--group",
            "dev",
            "--clusterrole",
            &role,
            "--approve",
        ])
        .success();
    }
    let ctx = |user: &str| format!("{user}@{}", cluster.name);
    let writes = |kubeconfig: &Path, user: &str| create_configmap(cluster, kubeconfig, &ctx(user));
    assert!(writes(&env.kubeconfig, &jane).status.success());
    let old = env.home.join("old-jane.kubeconfig");
    fs::copy(&env.kubeconfig, &old).unwrap();

    let run = env
        .onboard(&["revoke", &jane, "--reason", "left the team"])
        .success();
    assert!(
        run.stdout
            .contains(&format!("Revoked the certificate of {jane} X509SHA256=")),
        "{run}"
    );
    assert!(run.stdout.contains("Not blocked: reads"), "{run}");
    assert!(
        run.stdout.contains(&format!("ClusterRoleBinding kubectl-onboard:{jane}:{role} (ClusterRole {role}, through User {jane})")),
        "{run}"
    );

    eventually("jane's writes refused, with the reason", || {
        let out = writes(&env.kubeconfig, &jane);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match !out.status.success() && stderr.contains("left the team") {
            true => None,
            false => Some(stderr),
        }
    });
    let reads = cluster.kubectl(
        &env.kubeconfig,
        &[
            "--context",
            &ctx(&jane),
            "get",
            "configmaps",
            "-n",
            "default",
        ],
    );
    assert!(
        reads.status.success(),
        "reads stay: {}",
        String::from_utf8_lossy(&reads.stderr)
    );
    assert!(
        writes(&env.kubeconfig, &bob).status.success(),
        "bob is not touched"
    );
    assert!(
        create_configmap(cluster, &cluster.admin_kubeconfig, "admin@local")
            .status
            .success(),
        "the administrator is not touched"
    );
    // A revoked user who may request certificates is told why the request is refused.
    let requester = unique("csr-maker");
    cluster.admin(&[
        "create",
        "clusterrole",
        &requester,
        "--verb=create,get,list,watch,delete",
        "--resource=certificatesigningrequests.certificates.k8s.io",
    ]);
    cluster.admin(&[
        "create",
        "clusterrolebinding",
        &requester,
        &format!("--clusterrole={requester}"),
        &format!("--user={jane}"),
    ]);
    let again = env
        .onboard(&[
            &unique("rv-again"),
            "--context",
            &ctx(&jane),
            "--timeout",
            "20s",
        ])
        .code(1)
        .error_says("refused by an admission policy");
    assert!(again.stderr.contains("left the team"), "{again}");
    assert!(
        !again
            .stderr
            .contains("ask an administrator for the permission"),
        "{again}"
    );

    let states: Value = serde_json::from_str(
        &env.onboard(&["certificates", &jane, "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(states["certificates"][0]["state"], "revoked", "{states}");
    let listed: Value = serde_json::from_str(
        &env.onboard(&["revoke", "--list", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    let message = listed["revoked"]
        .as_object()
        .unwrap()
        .values()
        .find(|m| m.as_str().unwrap().contains(&jane))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        message
            .as_str()
            .unwrap()
            .ends_with("revoked: left the team"),
        "{message}"
    );

    // status reads the revocation list of the current context's cluster and marks her, only her.
    let status: Value =
        serde_json::from_str(&env.onboard(&["status", "-o", "json"]).success().stdout).unwrap();
    let state_of = |cn: &str| {
        let user = status["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["commonName"] == cn)
            .unwrap_or_else(|| panic!("{cn} in {status}"));
        (user["state"].clone(), user["revoked"].clone())
    };
    let (state, revoked) = state_of(&jane);
    assert_eq!(state, "revoked", "{status}");
    assert!(
        revoked
            .as_str()
            .unwrap()
            .ends_with("revoked: left the team"),
        "{status}"
    );
    assert_eq!(state_of(&bob), (json!("ok"), Value::Null), "{status}");

    // Renewing a revoked certificate says so: the new one is not revoked.
    let renewed = env
        .onboard(&[
            "renew",
            &jane,
            "--approve",
            "--admin-context",
            "admin@local",
        ])
        .success();
    assert!(
        renewed
            .stderr
            .contains("is revoked, and the new one will not be"),
        "{renewed}"
    );
    assert!(
        writes(&env.kubeconfig, &jane).status.success(),
        "jane's new certificate writes"
    );
    assert!(
        !writes(&old, &jane).status.success(),
        "the old one still may not"
    );

    // unrevoke, for mistakes: the old certificate writes again.
    let old_fingerprint = message_key(&listed, &jane);
    env.onboard(&["unrevoke", "--fingerprint", &old_fingerprint])
        .success();
    eventually("the old certificate's writes accepted again", || {
        let out = writes(&old, &jane);
        match out.status.success() {
            true => None,
            false => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    });
    assert!(
        create_configmap(cluster, &cluster.admin_kubeconfig, "admin@local")
            .status
            .success(),
        "the administrator still writes after every change"
    );
}

/// The credential id of the entry naming `user` in `revoke --list -o json`.
fn message_key(listed: &Value, user: &str) -> String {
    listed["revoked"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, m)| m.as_str().unwrap().contains(user))
        .map(|(id, _)| id.trim_start_matches("X509SHA256=").to_string())
        .unwrap()
}

/// `offboard --revoke`: the bindings kubectl onboard made go, the certificates the inventory
/// knows are listed and revoked, and what still grants them access (a group's binding) is named;
/// with the group's write access left, the policy is what refuses the writes.
#[test]
fn offboard_revoke_names_what_remains_and_refuses_the_writes() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let role = configmap_writer(cluster);
    let group = unique("writers");
    let via_group = unique("writers-binding");
    cluster.admin(&[
        "create",
        "clusterrolebinding",
        &via_group,
        &format!("--clusterrole={role}"),
        &format!("--group={group}"),
    ]);
    let carol = unique("rv-carol");
    env.onboard(&[&carol, "--group", &group, "--approve"])
        .success();
    let context = format!("{carol}@{}", cluster.name);
    assert!(
        create_configmap(cluster, &env.kubeconfig, &context)
            .status
            .success()
    );

    let run = env
        .onboard(&["offboard", &carol, "--revoke", "--context", "admin@local"])
        .success();
    assert!(
        run.stdout
            .contains(&format!("of {carol} (groups {group}) is valid until"))
            && run.stdout.contains(": revoked, its writes are refused"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "ClusterRoleBinding {via_group} (ClusterRole {role}, through Group {group})"
        )),
        "{run}"
    );
    eventually("carol's writes refused by the policy", || {
        let out = create_configmap(cluster, &env.kubeconfig, &context);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match !out.status.success() && stderr.contains(&format!("{carol} was offboarded")) {
            true => None,
            false => Some(stderr),
        }
    });
    let reads = cluster.kubectl(
        &env.kubeconfig,
        &["--context", &context, "get", "configmaps", "-n", "default"],
    );
    assert!(
        reads.status.success(),
        "reads stay, as the group's binding grants them"
    );
}

#[test]
fn an_administrator_cannot_revoke_the_certificate_they_are_using() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let whoami: Value =
        serde_json::from_str(&env.kubectl_ok(&["auth", "whoami", "-o", "json"])).unwrap();
    let id = whoami["status"]["userInfo"]["extra"]["authentication.kubernetes.io/credential-id"][0]
        .as_str()
        .unwrap()
        .to_string();
    let fingerprint = id.strip_prefix("X509SHA256=").unwrap();
    let run = env
        .onboard(&["revoke", "--fingerprint", fingerprint])
        .code(1)
        .error_says("is the certificate you are using now");
    assert!(run.stderr.contains("nothing was revoked"), "{run}");
    let after = env.onboard(&["revoke", "--list", "-o", "json"]).success();
    // (Other tests revoke beside this one: only our entry is ours to assert on.)
    assert!(!after.stdout.contains(fingerprint), "{after}");
    assert!(
        create_configmap(cluster, &cluster.admin_kubeconfig, "admin@local")
            .status
            .success(),
        "the administrator still writes"
    );

    // Another administrator, revoked by the first, may still undo it: the revocation
    // machinery's own objects are never blocked.
    let other = unique("rv-admin");
    env.onboard(&[&other, "--clusterrole", "cluster-admin", "--approve"])
        .success();
    let ctx = format!("{other}@{}", cluster.name);
    env.onboard(&["revoke", &other]).success();
    eventually("the other administrator's writes refused", || {
        let out = create_configmap(cluster, &env.kubeconfig, &ctx);
        match out.status.success() {
            false => None,
            true => Some("still writes".into()),
        }
    });
    env.onboard(&["unrevoke", &other, "--context", &ctx])
        .success();
    eventually("the other administrator writes again", || {
        let out = create_configmap(cluster, &env.kubeconfig, &ctx);
        match out.status.success() {
            true => None,
            false => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    });
}

#[test]
fn a_policy_taken_apart_is_said_wherever_revocations_show_and_repair_puts_it_back() {
    // A control plane of its own: without its binding, an API server freezes the policy's
    // parameters until it restarts (kubernetes/kubernetes#130887), which would upset the
    // other tests' revocations.
    let cluster = &Cluster::start(Options::default());
    let env = Env::admin(cluster);
    let role = configmap_writer(cluster);
    let jane = unique("rv-broken");
    env.onboard(&[&jane, "--clusterrole", &role, "--approve"])
        .success();
    let ctx = format!("{jane}@{}", cluster.name);
    let writes = || {
        create_configmap(cluster, &env.kubeconfig, &ctx)
            .status
            .success()
    };
    // revoke checks, by a dry run as the certificate, that the API server refuses it.
    let run = env.onboard(&["revoke", &jane, "-v"]).success();
    assert!(
        run.stderr
            .contains("the API server does what the revocation list says"),
        "{run}"
    );
    assert!(!writes(), "refused as soon as revoke returns");
    let listed = env.onboard(&["revoke", "--list"]).success();
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains(&jane))
        .unwrap()
        .to_string();
    assert!(row.contains("   yes   "), "{listed}");

    // Someone with rights on admission objects deletes the binding: revocation is off, and
    // every command that shows revocations says so.
    cluster.admin(&[
        "delete",
        "validatingadmissionpolicybinding",
        "kubectl-onboard-revocations",
    ]);
    eventually("jane writes again without the binding", || match writes() {
        true => None,
        false => Some("still refused".into()),
    });
    let missing = "the revocation binding (ValidatingAdmissionPolicyBinding kubectl-onboard-revocations) is missing";
    let listed = env.onboard(&["revoke", "--list"]).success();
    assert!(listed.stderr.contains(missing), "{listed}");
    assert!(
        listed.stderr.contains("kubectl onboard revoke --repair"),
        "{listed}"
    );
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains(&jane))
        .unwrap()
        .to_string();
    assert!(row.contains("   NO   "), "{listed}");
    let json: Value = serde_json::from_str(
        &env.onboard(&["revoke", "--list", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert!(
        json["notEnforced"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| json["revoked"][id.as_str().unwrap()]
                .as_str()
                .unwrap()
                .contains(&jane)),
        "{json}"
    );
    let shown = env.onboard(&["certificates", &jane]).success();
    assert!(shown.stderr.contains(missing), "{shown}");
    let status = env.onboard(&["status"]).success();
    assert!(status.stderr.contains(missing), "{status}");

    // --repair puts them back and checks; what it says is what the API server does.
    let repaired = env.onboard(&["revoke", "--repair"]);
    match repaired.code {
        Some(0) => assert!(!writes(), "repaired, so refused\n{repaired}"),
        _ => {
            let repaired = repaired
                .code(1)
                .error_says("the API server still accepts writes");
            assert!(writes(), "said not enforced, so accepted\n{repaired}");
        }
    }
    let listed = env.onboard(&["revoke", "--list"]).success();
    assert!(!listed.stderr.contains(missing), "{listed}");
    // The API server now enforces a frozen copy of the list (the bug above): unrevoke says so,
    // and what it says is what the API server does.
    let unrevoked = env.onboard(&["unrevoke", &jane]);
    match unrevoked.code {
        Some(0) => assert!(writes(), "unrevoked, so accepted\n{unrevoked}"),
        _ => {
            let unrevoked = unrevoked
                .code(1)
                .error_says("the API server still refuses writes");
            assert!(
                unrevoked.stderr.contains("kubernetes/kubernetes#130887"),
                "{unrevoked}"
            );
            assert!(!writes(), "said still refused, so refused\n{unrevoked}");
            // As the advice says: a restarted API server reads the list afresh.
            cluster.restart_apiserver();
            eventually("accepted after the restart", || match writes() {
                true => None,
                false => Some("still refused".into()),
            });
            let listed = env.onboard(&["revoke", "--list", "-o", "json"]).success();
            assert!(!listed.stdout.contains(&jane), "{listed}");
        }
    }
}
