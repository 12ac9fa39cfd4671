//! Offline CA mode and `kubectl onboard batch`, end to end on the real control plane. The
//! judges: the real kube-apiserver (`kubectl auth whoami` with what we wrote), the real signer
//! of kube-controller-manager (its certificates, next to ours, through `openssl x509`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Cluster;
use crate::support::onboard::{Env, csr_exists, finish, unique, wait_for_csr};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `--ca-cert … --ca-key … --server …` for the shared cluster.
fn offline_flags(cluster: &Cluster) -> Vec<String> {
    vec![
        "--ca-cert".into(),
        cluster.ca_cert.display().to_string(),
        "--ca-key".into(),
        cluster.ca_key.display().to_string(),
        "--server".into(),
        cluster.server.clone(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `kubectl --kubeconfig FILE auth whoami -o json`: (username, groups).
fn whoami_with(env: &Env, kubeconfig: &Path) -> (String, Vec<String>) {
    let json = env.kubectl_ok(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "auth",
        "whoami",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let info = &v["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (info["username"].as_str().unwrap().to_string(), groups)
}

/// The client certificate of the (only) user of a standalone kubeconfig, as a PEM file.
fn certificate_of(env: &Env, kubeconfig: &Path) -> PathBuf {
    let data = env.kubectl_ok(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.users[0].user.client-certificate-data}",
    ]);
    use base64ct::{Base64, Encoding};
    let pem = Base64::decode_vec(data.trim()).unwrap();
    let path = kubeconfig.with_extension("crt");
    fs::write(&path, pem).unwrap();
    path
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `openssl x509 -text` says about a certificate, but for what differs between any two
/// certificates (serial, key, validity dates, signature bytes), with the CN made neutral.
fn profile(cert: &Path, user: &str) -> String {
    openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-text",
        "-certopt",
        "no_serial,no_pubkey,no_sigdump,no_validity",
        "-nameopt",
        "multiline,show_type",
    ])
    .replace(user, "USER")
}

/// notAfter − notBefore, in seconds.
fn lifetime(cert: &Path) -> i64 {
    let dates = openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-startdate",
        "-enddate",
    ]);
    let epoch = |line: &str| -> i64 {
        // "notBefore=Nov 25 05:12:56 2026 GMT"
        let text = line.split_once('=').unwrap().1;
        let out = Command::new("date")
            .args(["-u", "-d", text, "+%s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let lines: Vec<&str> = dates.lines().collect();
    epoch(lines[1]) - epoch(lines[0])
}

#[test]
fn offline_certificates_are_the_signers_and_the_apiserver_accepts_them() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let dir = env.home.join("compare");
    fs::create_dir_all(&dir).unwrap();
    for duration in ["90d", "1h"] {
        let (real, ours) = (unique("signed"), unique("offline"));
        let real_file = dir.join(format!("{real}.kubeconfig"));
        let our_file = dir.join(format!("{ours}.kubeconfig"));
        env.onboard(&[
            &real,
            "--group",
            "dev",
            "--group",
            "ops",
            "--duration",
            duration,
            "--approve",
            "--output-kubeconfig",
            real_file.to_str().unwrap(),
        ])
        .success();
        let mut args = vec![
            ours.clone(),
            "--group".into(),
            "dev".into(),
            "--group".into(),
            "ops".into(),
            "--duration".into(),
            duration.into(),
            "--output-kubeconfig".into(),
            our_file.display().to_string(),
        ];
        args.extend(offline_flags(cluster));
        let run = env.onboard(&strs(&args)).success();
        assert!(
            run.stdout.contains(&format!(
                "Authenticated as {ours} (groups: dev, ops, system:authenticated)"
            )),
            "{run}"
        );
        assert!(!run.stderr.contains("warning"), "{run}");
        assert!(!run.stderr.contains("CertificateSigningRequest"), "{run}");

        // The real apiserver takes it.
        let (name, groups) = whoami_with(&env, &our_file);
        assert_eq!(name, ours);
        assert!(groups.contains(&"dev".into()) && groups.contains(&"ops".into()));

        // Issuer, subject encoding, extensions (key usage, ext key usage, basic constraints,
        // authority key id), signature algorithm, lifetime: as the real signer made them.
        let (real_cert, our_cert) = (
            certificate_of(&env, &real_file),
            certificate_of(&env, &our_file),
        );
        assert_eq!(
            profile(&our_cert, &ours),
            profile(&real_cert, &real),
            "offline certificate differs from the signer's ({duration})"
        );
        let ext = |cert: &Path| {
            openssl(&[
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-noout",
                "-ext",
                "keyUsage,extendedKeyUsage,basicConstraints,authorityKeyIdentifier",
            ])
        };
        assert_eq!(ext(&our_cert), ext(&real_cert));
        assert!(ext(&our_cert).contains("TLS Web Client Authentication"));
        let expected = match duration {
            // 8 h or more: backdated 5 minutes at both ends.
            "90d" => 90 * 86_400,
            // Shorter: only the start is.
            _ => 3600 + 300,
        };
        assert_eq!(lifetime(&real_cert), expected, "the signer ({duration})");
        assert_eq!(lifetime(&our_cert), expected, "offline ({duration})");
        assert_eq!(mode(&our_file), 0o600);
    }
}

#[test]
fn offline_merges_the_cluster_into_the_kubeconfig_once() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let (first, second) = (unique("merged"), unique("merged"));
    let mut args = vec![first.clone(), "--cluster-name".into(), "offline".into()];
    args.extend(offline_flags(cluster));
    env.onboard(&strs(&args)).success();
    args[0] = second.clone();
    env.onboard(&strs(&args)).success();
    for user in [&first, &second] {
        let (name, _) = env.whoami(&format!("{user}@offline"));
        assert_eq!(&name, user);
    }
    let view = env.config_view();
    let clusters: Vec<&str> = view["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clusters.iter().filter(|c| **c == "offline").count(), 1);
    assert!(clusters.contains(&cluster.name.as_str()), "{clusters:?}");

    // Another cluster by that name is not replaced without --force.
    let mut other = vec![unique("merged"), "--cluster-name".into(), "offline".into()];
    other.extend(offline_flags(cluster));
    other[8] = "https://10.255.255.1:6443".into();
    let before = env.kubeconfig_bytes();
    env.onboard(&strs(&other))
        .code(1)
        .error_says("cluster \"offline\" already exists");
    assert_eq!(env.kubeconfig_bytes(), before);
}

#[test]
fn offline_needs_no_kubeconfig_and_makes_the_first_one() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    // A new machine: no ~/.kube at all.
    fs::remove_dir_all(env.home.join(".kube")).unwrap();
    let user = unique("first");
    let mut args = vec![user.clone(), "--use-context".into()];
    args.extend(offline_flags(cluster));
    let run = env.onboard(&strs(&args)).success();
    // Nobody here may write the inventory: said once, and onboarding goes on.
    let note = format!(
        "Not recorded in the cluster's certificate inventory: no context in the kubeconfig is for {}",
        cluster.server
    );
    assert_eq!(run.stderr.matches(&note).count(), 1, "{run}");
    assert_eq!(mode(&env.kubeconfig), 0o600);
    assert_eq!(mode(&env.home.join(".kube")), 0o755);
    // The current context is the new one: kubectl needs nothing else.
    let out = env.kubectl_ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(out, user);
}

#[test]
fn system_masters_needs_allow_masters_and_says_loudly_what_it_means() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("root");
    let file = env.home.join("root.kubeconfig");
    let mut args = vec![
        user.clone(),
        "--group".into(),
        "system:masters".into(),
        "--duration".into(),
        "1h".into(),
        "--output-kubeconfig".into(),
        file.display().to_string(),
    ];
    args.extend(offline_flags(cluster));
    env.onboard(&strs(&args))
        .code(2)
        .error_says("--allow-masters");
    assert!(!file.exists());
    // Online, the API server would refuse it: --allow-masters is for offline only.
    env.onboard(&[&user, "--group", "system:masters", "--allow-masters"])
        .code(2)
        .error_says("only offline");

    args.push("--allow-masters".into());
    let run = env.onboard(&strs(&args)).success();
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: SECURITY"))
        .unwrap_or_else(|| panic!("no loud warning\n{run}"));
    assert!(
        warning.contains("cannot revoke") && warning.contains("system:masters"),
        "{run}"
    );
    let (name, groups) = whoami_with(&env, &file);
    assert_eq!(name, user);
    assert!(groups.contains(&"system:masters".into()), "{groups:?}");
    // It is cluster-admin indeed.
    env.kubectl_ok(&[
        "--kubeconfig",
        file.to_str().unwrap(),
        "get",
        "clusterroles",
        "-o",
        "name",
    ]);
}

#[test]
fn offline_refuses_what_needs_the_api_and_a_key_that_is_not_the_cas() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("refused");
    let before = env.kubeconfig_bytes();
    for (extra, says) in [
        (vec!["--approve"], "--approve has no meaning offline"),
        (vec!["--timeout", "1m"], "--timeout has no meaning offline"),
        (vec!["--keep-csr"], "--keep-csr has no meaning offline"),
        (vec!["--clusterrole", "view"], "does not call"),
    ] {
        let mut args = vec![user.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(offline_flags(cluster));
        env.onboard(&strs(&args)).code(2).error_says(says);
    }
    env.onboard(&[&user, "--ca-key", cluster.ca_key.to_str().unwrap()])
        .code(2)
        .error_says("add --ca-cert and --server");

    // The admin's key is not the CA's.
    let wrong_key = env.home.join("wrong.key");
    let out = Command::new("openssl")
        .args(["genrsa", "-out", wrong_key.to_str().unwrap(), "2048"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut args = vec![user.clone()];
    args.extend(offline_flags(cluster));
    args[4] = wrong_key.display().to_string();
    env.onboard(&strs(&args))
        .code(2)
        .error_says("does not belong to the CA certificate");
    assert_eq!(env.kubeconfig_bytes(), before);
}

/// A roster of `n` users named `<prefix>-<i>` in group dev, the even ones bound to `view`.
fn roster(n: usize, prefix: &str) -> (String, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let text = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let roles = if i % 2 == 0 {
                "\n  clusterRoles: [view]"
            } else {
                ""
            };
            format!("- name: {name}\n  groups: [dev]{roles}\n")
        })
        .collect();
    (text, names)
}

/// Each file's bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let meta = fs::metadata(&p).unwrap();
            (p.clone(), fs::read(&p).unwrap(), meta.modified().unwrap())
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn a_batch_of_twenty_logs_in_and_a_second_run_changes_nothing() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let prefix = unique("team");
    let (text, names) = roster(20, &prefix);
    let file = env.home.join("team.yaml");
    fs::write(&file, text).unwrap();
    let out = env.home.join("out");
    let args = [
        "batch",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--approve",
        "--key-algorithm",
        "ecdsa-p256",
    ];
    let run = env.onboard(&args).success();
    assert_eq!(mode(&out), 0o700);
    let table: Vec<&str> = run.stdout.lines().collect();
    assert!(table[0].starts_with("USER "), "{run}");
    assert_eq!(table.len(), 21, "{run}");
    for name in &names {
        let row = table
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}\n{run}"));
        assert_eq!(row.split_whitespace().nth(1), Some("ok"), "{run}");
        let path = out.join(format!("{name}.kubeconfig"));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        let (user, groups) = whoami_with(&env, &path);
        assert_eq!(&user, name);
        assert!(groups.contains(&"dev".into()));
    }
    // The bindings of the even ones.
    let bindings = cluster.admin(&["get", "clusterrolebindings", "-o", "name"]);
    for (i, name) in names.iter().enumerate() {
        let binding = format!("kubectl-onboard:{name}:view");
        assert_eq!(bindings.contains(&binding), i % 2 == 0, "{binding}");
    }
    // No request object is left.
    let csrs = cluster.admin(&["get", "csr", "-o", "name"]);
    assert!(!csrs.contains(&prefix), "{csrs}");

    let before = snapshot(&out);
    let again = env.onboard(&args).success();
    let skipped = again
        .stdout
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("skipped"))
        .count();
    assert_eq!(skipped, 20, "{again}");
    assert!(again.stderr.contains("nothing left to do"), "{again}");
    assert_eq!(snapshot(&out), before, "the second run changed a file");
}

#[test]
fn one_bad_entry_fails_alone_and_the_rest_is_done() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let prefix = unique("mixed");
    let file = env.home.join("mixed.yaml");
    fs::write(
        &file,
        format!(
            "- name: {prefix}-a\n- name: {prefix}-bad\n  roles: [{{name: deployer, namespace: no-such-namespace}}]\n- name: {prefix}-c\n  groups: [ops]\n"
        ),
    )
    .unwrap();
    let out = env.home.join("out");
    let args = [
        "batch",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--approve",
        "--key-algorithm",
        "ecdsa-p256",
    ];
    let run = env.onboard(&args).code(1).error_says("1 of 3 users failed");
    let row = |user: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(user))
            .unwrap_or_else(|| panic!("no row for {user}\n{run}"))
            .to_string()
    };
    assert!(row(&format!("{prefix}-a")).contains(" ok "), "{run}");
    assert!(row(&format!("{prefix}-c")).contains(" ok "), "{run}");
    let bad = row(&format!("{prefix}-bad"));
    assert!(
        bad.contains("failed") && bad.contains("no-such-namespace"),
        "{run}"
    );
    assert!(!out.join(format!("{prefix}-bad.kubeconfig")).exists());
    let (user, groups) = whoami_with(&env, &out.join(format!("{prefix}-c.kubeconfig")));
    assert_eq!(user, format!("{prefix}-c"));
    assert!(groups.contains(&"ops".into()));

    // Something else where a user's file goes is not overwritten without --force.
    let clash = out.join(format!("{prefix}-a.kubeconfig"));
    fs::write(&clash, "not: a kubeconfig\n").unwrap();
    let run = env.onboard(&args).code(1).error_says("2 of 3 users failed");
    assert!(run.stdout.contains("pass --force"), "{run}");
    assert_eq!(fs::read_to_string(&clash).unwrap(), "not: a kubeconfig\n");
    let mut forced = args.to_vec();
    forced.push("--force");
    env.onboard(&forced)
        .code(1)
        .error_says("1 of 3 users failed");
    let (user, _) = whoami_with(&env, &clash);
    assert_eq!(user, format!("{prefix}-a"));
}

#[test]
fn every_problem_in_the_file_is_listed_and_nothing_is_done() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let file = env.home.join("bad.yaml");
    fs::write(
        &file,
        "- name: ok-user\n- name: jane\n  group: [dev]\n- name: 'a b'\n- name: x\n  duration: 5m\n",
    )
    .unwrap();
    let out = env.home.join("out");
    let run = env
        .onboard(&[
            "batch",
            file.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
            "--approve",
        ])
        .code(2)
        .error_says("3 problems");
    let path = file.display().to_string();
    for (line, says) in [(3, "unknown key 'group'"), (4, "'a b'"), (6, "too short")] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(&format!("{path}:{line}: ")) && l.contains(says)),
            "line {line}: {says}\n{run}"
        );
    }
    assert!(!out.exists(), "nothing is done, not even the directory");
}

#[test]
fn interrupting_a_batch_withdraws_the_requests_in_flight() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let prefix = unique("waiting");
    let (text, names) = roster(4, &prefix);
    let file = env.home.join("wait.yaml");
    fs::write(&file, text.replace("\n  clusterRoles: [view]", "")).unwrap();
    let out = env.home.join("out");
    // Without --approve, each request waits for an administrator.
    let child = env.spawn(&[
        "batch",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--parallel",
        "2",
        "--key-algorithm",
        "ecdsa-p256",
    ]);
    let first = wait_for_csr(cluster, &names[0]);
    let second = wait_for_csr(cluster, &names[1]);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let run = finish(child, "kubectl onboard batch (interrupted)")
        .code(130)
        .error_says("run the same command again");
    assert!(!csr_exists(cluster, &first), "{run}");
    assert!(!csr_exists(cluster, &second), "{run}");
    assert!(run.stdout.contains("not started"), "{run}");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "{run}");
}

#[test]
fn an_offline_batch_signs_here_and_logs_in() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let prefix = unique("local");
    let (text, names) = roster(6, &prefix);
    let file = env.home.join("local.yaml");
    fs::write(&file, text.replace("\n  clusterRoles: [view]", "")).unwrap();
    let out = env.home.join("out");
    let mut args = vec![
        "batch".to_string(),
        file.display().to_string(),
        "--output-dir".into(),
        out.display().to_string(),
    ];
    args.extend(offline_flags(cluster));
    env.onboard(&strs(&args)).success();
    for name in &names {
        let (user, _) = whoami_with(&env, &out.join(format!("{name}.kubeconfig")));
        assert_eq!(&user, name);
    }
    let csrs = cluster.admin(&["get", "csr", "-o", "name"]);
    assert!(!csrs.contains(&prefix), "offline made a request: {csrs}");

    // Roles need the API: refused offline, before anything is done.
    let (with_roles, _) = roster(2, &unique("roles"));
    fs::write(&file, with_roles).unwrap();
    env.onboard(&strs(&args))
        .code(2)
        .error_says("a problem (listed above)");
}
