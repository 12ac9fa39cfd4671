//! Invitations on the real control plane, with the real kubectl as the checker: invite →
//! accept (waiting) → approve → the new user's kubectl; what the invitation's token may do
//! (request certificates, nothing else, and only until it is used, withdrawn or expired); and
//! every way `approve` keeps a request from going beyond its invitation.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Cluster;
use support::onboard::{Env, Run, csr_exists, finish, unique, wait_for_csr};

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
    let run = admin
        .onboard(&["invitations", "--revoke", &withdrawn])
        .success();
    assert!(run.stdout.contains("its token no longer works"), "{run}");
    assert!(
        run.stdout.contains(&format!("Denied {csr}, made with it.")),
        "{run}"
    );
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
