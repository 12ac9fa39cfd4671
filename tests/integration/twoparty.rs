//! Two-party onboarding (request → sign → import) and renew, end to end on the real control
//! plane. The user and the administrator each get their own scratch HOME, as on two machines;
//! the real kubectl and openssl judge what came out.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::Cluster;
use crate::support::onboard::{Env, csr_exists, finish, unique, wait_for_csr, without};
use base64ct::{Base64, Encoding};

/// openssl in `dir` with `stdin`; must succeed; its stdout.
fn openssl(dir: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A user's environment with no kubeconfig at all: a new colleague's machine.
fn newcomer(cluster: &Cluster) -> Env<'_> {
    let env = Env::bootstrap(cluster);
    fs::remove_file(&env.kubeconfig).unwrap();
    env
}

/// The PEM certificate in a user entry's client-certificate-data.
fn cert_pem(entry: &serde_json::Value) -> Vec<u8> {
    Base64::decode_vec(
        entry["client-certificate-data"]
            .as_str()
            .expect("embedded cert"),
    )
    .unwrap()
}

/// notAfter of a PEM certificate, as openssl reads it, in seconds since the epoch.
fn not_after(dir: &Path, pem: &[u8]) -> i64 {
    let out = text(openssl(
        dir,
        &["x509", "-noout", "-enddate", "-dateopt", "iso_8601"],
        pem,
    ));
    let date = out
        .trim()
        .strip_prefix("notAfter=")
        .unwrap()
        .replace(' ', "T");
    date.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The SHA-256 of a CSR's public key as openssl computes it: `sha256:<hex>`.
fn openssl_fingerprint(dir: &Path, csr: &Path) -> String {
    let pubkey = openssl(
        dir,
        &["req", "-in", csr.to_str().unwrap(), "-noout", "-pubkey"],
        b"",
    );
    let der = openssl(dir, &["pkey", "-pubin", "-outform", "DER"], &pubkey);
    let digest = text(openssl(dir, &["dgst", "-sha256", "-r"], &der));
    format!("sha256:{}", digest.split_whitespace().next().unwrap())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn request_sign_import_gives_the_user_a_working_context_without_moving_the_key() {
    let cluster = Cluster::shared();
    let user_env = newcomer(cluster);
    let admin = Env::admin(cluster);
    let user = unique("jane");
    let csr = user_env.home.join(format!("{user}.csr"));

    // The user: key and request.
    let run = user_env
        .onboard(&[
            "request",
            &user,
            "--group",
            "dev",
            "--group",
            "qa",
            "--csr-out",
            csr.to_str().unwrap(),
        ])
        .success();
    assert!(
        run.stdout.contains(&format!(
            "kubectl onboard sign {user}.csr --approve --output-kubeconfig {user}.kubeconfig"
        )) && run
            .stdout
            .contains(&format!("kubectl onboard import {user}.kubeconfig")),
        "{run}"
    );
    let verified = String::from_utf8_lossy(
        &Command::new("openssl")
            .args([
                "req",
                "-in",
                csr.to_str().unwrap(),
                "-verify",
                "-noout",
                "-subject",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        verified.contains(&format!("CN = {user}, O = dev, O = qa")),
        "{verified}"
    );
    let fingerprint = openssl_fingerprint(&user_env.home, &csr);
    assert!(run.stdout.contains(&fingerprint), "{fingerprint}\n{run}");
    let keys = user_env.home.join(".kube/onboard/keys");
    let kept = files_under(&keys);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&kept[0]), 0o600);
    assert_eq!(
        kept[0].file_stem().unwrap().to_str().unwrap(),
        fingerprint.strip_prefix("sha256:").unwrap()
    );
    let key_pem = fs::read_to_string(&kept[0]).unwrap();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    user_env
        .onboard(&["request", &user, "--csr-out", csr.to_str().unwrap()])
        .code(1)
        .error_says("already exists; pass --force");

    // The administrator, on another machine, with only the request.
    let handed = admin.home.join(format!("{user}.csr"));
    fs::copy(&csr, &handed).unwrap();
    let signed = admin.home.join(format!("{user}.kubeconfig"));
    let run = admin
        .onboard(&[
            "sign",
            handed.to_str().unwrap(),
            "--approve",
            "--output-kubeconfig",
            signed.to_str().unwrap(),
        ])
        .success();
    assert!(run.stderr.contains(&fingerprint), "{run}");
    assert!(
        run.stdout
            .contains(&format!("kubectl onboard import {user}.kubeconfig")),
        "{run}"
    );
    assert_eq!(mode(&signed), 0o600);
    let view: serde_json::Value = serde_json::from_str(&admin.kubectl_ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "json",
        "--kubeconfig",
        signed.to_str().unwrap(),
    ]))
    .unwrap();
    let context = format!("{user}@{}", cluster.name);
    assert_eq!(view["current-context"], context.as_str());
    let entry = &view["users"][0]["user"];
    assert_eq!(
        entry.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["client-certificate-data"],
        "{entry}"
    );
    assert!(view["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    // The cluster's CA signed it, for the user's key: openssl says so.
    let cert = cert_pem(entry);
    fs::write(admin.home.join("issued.crt"), &cert).unwrap();
    openssl(
        &admin.home,
        &[
            "verify",
            "-CAfile",
            cluster.ca_cert.to_str().unwrap(),
            "issued.crt",
        ],
        b"",
    );
    assert_eq!(
        openssl(
            &admin.home,
            &["x509", "-in", "issued.crt", "-noout", "-pubkey"],
            b""
        ),
        openssl(
            &user_env.home,
            &["req", "-in", csr.to_str().unwrap(), "-noout", "-pubkey"],
            b""
        )
    );
    // No trace of the private key on the administrator's side.
    for path in files_under(&admin.home) {
        let bytes = fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&key_body[..64]),
            "{path:?} holds the private key"
        );
    }
    assert!(!run.stdout.contains(&key_body[..64]) && !run.stderr.contains(&key_body[..64]));

    // A file whose cluster would not check the server (its CA swapped for
    // insecure-skip-tls-verify, or dropped): refused, unless the user says so.
    let text = fs::read_to_string(&signed).unwrap();
    let ca_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
        .unwrap();
    let indent = &ca_line[..ca_line.len() - ca_line.trim_start().len()];
    for (name, replacement, says) in [
        (
            "insecure",
            format!("{indent}insecure-skip-tls-verify: true"),
            "is set to insecure-skip-tls-verify",
        ),
        ("no-ca", String::new(), "names no CA"),
    ] {
        let tampered = user_env.home.join(format!("{name}.kubeconfig"));
        fs::write(&tampered, text.replace(ca_line, &replacement)).unwrap();
        let before = fs::read(&user_env.kubeconfig).ok();
        user_env
            .onboard(&["import", tampered.to_str().unwrap()])
            .code(1)
            .error_says(says);
        assert_eq!(fs::read(&user_env.kubeconfig).ok(), before);
    }

    // The user: import, proven, and kubectl works as the user.
    let received = user_env.home.join(format!("{user}.kubeconfig"));
    fs::copy(&signed, &received).unwrap();
    let run = user_env
        .onboard(&["import", received.to_str().unwrap()])
        .success();
    // The signer writes all O values as one RDN, a DER SET, which sorts them: qa before dev.
    assert!(
        run.stdout.contains(&format!(
            "Authenticated as {user} (groups: qa, dev, system:authenticated)"
        )),
        "{run}"
    );
    let (name, mut groups) = user_env.whoami(&context);
    groups.sort();
    assert_eq!(
        (name, groups),
        (
            user.clone(),
            vec![
                "dev".to_string(),
                "qa".to_string(),
                "system:authenticated".to_string()
            ]
        )
    );
    assert_eq!(user_env.config_view()["current-context"], context.as_str());
    assert_eq!(mode(&user_env.kubeconfig), 0o600);
    assert!(kept[0].exists(), "the kept key stays");
    assert_eq!(
        user_env.kubectl_ok(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}"
        ]),
        user
    );

    // Imported twice: a clash, and nothing changes.
    let before = user_env.kubeconfig_bytes();
    user_env
        .onboard(&["import", received.to_str().unwrap()])
        .code(1)
        .error_says("already exists");
    assert_eq!(user_env.kubeconfig_bytes(), before);

    // The user may not create CSRs and has no other context: renew says what to do.
    user_env
        .onboard(&["renew"])
        .code(1)
        .error_says("--admin-context");
    assert_eq!(user_env.kubeconfig_bytes(), before);
}

#[test]
fn sign_refuses_tampered_and_forbidden_requests_before_sending_anything() {
    let cluster = Cluster::shared();
    let user_env = newcomer(cluster);
    let admin = Env::admin(cluster);
    let user = unique("tamper");
    let csr = user_env.home.join("req.csr");
    user_env
        .onboard(&[
            "request",
            &user,
            "--group",
            "dev",
            "--key-algorithm",
            "ecdsa-p256",
            "--csr-out",
            csr.to_str().unwrap(),
        ])
        .success();

    // Same length, another group: the signature no longer matches.
    let der = openssl(
        &user_env.home,
        &["req", "-in", "req.csr", "-outform", "DER"],
        b"",
    );
    let at = der.windows(3).position(|w| w == b"dev").unwrap();
    let mut forged = der.clone();
    forged[at..at + 3].copy_from_slice(b"adm");
    let forged_pem = openssl(
        &user_env.home,
        &["req", "-inform", "DER", "-outform", "PEM"],
        &forged,
    );
    let forged_path = admin.home.join("forged.csr");
    fs::write(&forged_path, forged_pem).unwrap();
    let out = admin.home.join("out.kubeconfig");
    let sign = |request: &Path| {
        admin.onboard(&[
            "sign",
            request.to_str().unwrap(),
            "--approve",
            "--output-kubeconfig",
            out.to_str().unwrap(),
        ])
    };
    sign(&forged_path)
        .code(2)
        .error_says("its signature does not match its contents");

    // A request for system:masters, made with openssl as the manual procedure does.
    openssl(
        &admin.home,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "masters.key",
            "-subj",
            &format!("/CN={user}/O=system:masters"),
            "-out",
            "masters.csr",
        ],
        b"",
    );
    sign(&admin.home.join("masters.csr"))
        .code(2)
        .error_says("group system:masters cannot be requested");
    // A private key sent by mistake.
    sign(&admin.home.join("masters.key"))
        .code(2)
        .error_says("it holds a private key, not a certificate request");
    // A user name the cluster would not take.
    openssl(
        &admin.home,
        &[
            "req",
            "-new",
            "-key",
            "masters.key",
            "-subj",
            "/CN=system:evil",
            "-out",
            "sys.csr",
        ],
        b"",
    );
    sign(&admin.home.join("sys.csr"))
        .code(2)
        .error_says("reserved for Kubernetes components");
    // Subject alternative names, which the signer would copy into the certificate.
    let subject = format!("/CN={user}/O=dev");
    let san = ["-addext", "subjectAltName=DNS:kubernetes.default"];
    let args = [
        &["req", "-new", "-key", "masters.key", "-subj", &subject][..],
        &san,
        &["-out", "san.csr"],
    ]
    .concat();
    openssl(&admin.home, &args, b"");
    sign(&admin.home.join("san.csr"))
        .code(2)
        .error_says("it asks for subject alternative names");
    // Groups of Kubernetes components: a kubelet's, a namespace's service accounts'.
    for (file, group) in [
        ("nodes.csr", "system:nodes"),
        ("sa.csr", "system:serviceaccounts:kube-system"),
    ] {
        let subject = format!("/CN={user}/O={group}");
        let args = [
            "req",
            "-new",
            "-key",
            "masters.key",
            "-subj",
            &subject,
            "-out",
            file,
        ];
        openssl(&admin.home, &args, b"");
        sign(&admin.home.join(file))
            .code(2)
            .error_says(&format!("group '{group}' is in the system: namespace"));
    }

    assert!(!out.exists());
    let list: serde_json::Value =
        serde_json::from_str(&cluster.admin(&["get", "csr", "-o", "json"])).unwrap();
    assert!(
        !list["items"].as_array().unwrap().iter().any(|c| {
            c["metadata"]["annotations"]["kubectl-onboard/user"].as_str() == Some(user.as_str())
        }),
        "a CSR was created for {user}"
    );

    // Untampered, the same request goes through; without --output-kubeconfig it is refused.
    admin
        .onboard(&["sign", csr.to_str().unwrap(), "--approve"])
        .code(2)
        .error_says("--output-kubeconfig FILE is required");
    sign(&csr).success();
    assert!(out.exists());
    sign(&csr)
        .code(1)
        .error_says("already exists; pass --force");
}

#[test]
fn import_without_a_matching_key_is_refused_and_changes_nothing() {
    let cluster = Cluster::shared();
    let user_env = newcomer(cluster);
    let admin = Env::admin(cluster);
    let other = Env::bootstrap(cluster);
    let user = unique("nokey");
    let csr = user_env.home.join("req.csr");
    user_env
        .onboard(&["request", &user, "--csr-out", csr.to_str().unwrap()])
        .success();
    let signed = admin.home.join("signed.kubeconfig");
    admin
        .onboard(&[
            "sign",
            csr.to_str().unwrap(),
            "--approve",
            "--output-kubeconfig",
            signed.to_str().unwrap(),
        ])
        .success();

    // Another machine, with a kubeconfig of its own: no key for this certificate.
    let received = other.home.join("signed.kubeconfig");
    fs::copy(&signed, &received).unwrap();
    let before = other.kubeconfig_bytes();
    other
        .onboard(&["import", received.to_str().unwrap()])
        .code(1)
        .error_says("was the request made on this machine?");
    assert_eq!(other.kubeconfig_bytes(), before);
    // A key that is not the certificate's.
    openssl(
        &other.home,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "wrong.key",
        ],
        b"",
    );
    other
        .onboard(&[
            "import",
            received.to_str().unwrap(),
            "--key",
            other.home.join("wrong.key").to_str().unwrap(),
        ])
        .code(1)
        .error_says("--key is not the key of the certificate");
    assert_eq!(other.kubeconfig_bytes(), before);
    assert!(!other.home.join(".kube/onboard").exists());
    // Its own user signs in with a token: nothing to renew.
    other
        .onboard(&["renew"])
        .code(1)
        .error_says("has no client certificate");
    other
        .onboard(&["renew", "--reuse-key", "--key-algorithm", "rsa-2048"])
        .code(2)
        .error_says("exclude each other");
    assert_eq!(other.kubeconfig_bytes(), before);

    // With the right key, given as --key, into a kubeconfig that has the cluster already:
    // the cluster entry is reused, the current context kept.
    let key = files_under(&user_env.home.join(".kube/onboard/keys")).remove(0);
    let run = other
        .onboard(&[
            "import",
            received.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .success();
    assert!(run.stdout.starts_with(&format!("User \"{user}\"")), "{run}");
    let after = other.config_view();
    let before_view: serde_json::Value = {
        let copy = other.home.join("before.kubeconfig");
        fs::write(&copy, &before).unwrap();
        serde_json::from_str(&other.kubectl_ok(&[
            "config",
            "view",
            "--raw",
            "-o",
            "json",
            "--kubeconfig",
            copy.to_str().unwrap(),
        ]))
        .unwrap()
    };
    let context = format!("{user}@{}", cluster.name);
    assert_eq!(without(&after, &user, &context), before_view);
    assert_eq!(other.whoami(&context).0, user);
}

#[test]
fn renew_replaces_certificate_and_key_in_place_and_keeps_the_context() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("renew");
    let context = format!("{user}@{}", cluster.name);
    env.onboard(&[&user, "--approve", "--group", "dev", "--duration", "1h"])
        .success();
    let first = env.user_entry(&user);
    let view_before = env.config_view();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let run = env.onboard(&["renew", &user, "--approve"]).success();
    assert!(
        run.stdout.contains(&format!(
            "Context \"{context}\" authenticates as {user} (groups: dev, system:authenticated)"
        )),
        "{run}"
    );
    let second = env.user_entry(&user);
    assert_ne!(second["client-key-data"], first["client-key-data"]);
    let (old_end, new_end) = (
        not_after(&env.home, &cert_pem(&first)),
        not_after(&env.home, &cert_pem(&second)),
    );
    assert!(new_end > old_end, "notAfter {old_end} → {new_end}");
    // The old lifetime by default: an hour from now, not the cluster's year.
    assert!((new_end - now() - 3600).abs() < 120, "{}", new_end - now());
    assert_eq!(
        env.whoami(&context),
        (
            user.clone(),
            vec!["dev".into(), "system:authenticated".into()]
        )
    );
    // Nothing else in the kubeconfig changed.
    assert_eq!(
        without(&env.config_view(), &user, "-"),
        without(&view_before, &user, "-")
    );
    // The new certificate is for the new key: openssl compares.
    let key = Base64::decode_vec(second["client-key-data"].as_str().unwrap()).unwrap();
    assert_eq!(
        openssl(&env.home, &["pkey", "-pubout"], &key),
        openssl(
            &env.home,
            &["x509", "-noout", "-pubkey"],
            &cert_pem(&second)
        )
    );

    // --reuse-key: a new certificate, the key byte for byte.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.onboard(&[
        "renew",
        "--context",
        &context,
        "--approve",
        "--reuse-key",
        "--duration",
        "2h",
    ])
    .success();
    let third = env.user_entry(&user);
    assert_eq!(third["client-key-data"], second["client-key-data"]);
    assert_ne!(
        third["client-certificate-data"],
        second["client-certificate-data"]
    );
    assert!((not_after(&env.home, &cert_pem(&third)) - now() - 7200).abs() < 120);
    assert_eq!(env.whoami(&context).0, user);
}

#[test]
fn renew_if_expires_within_is_a_no_op_until_due() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("cron");
    env.onboard(&[&user, "--approve", "--duration", "90d"])
        .success();
    let before = env.kubeconfig_bytes();
    let run = env
        .onboard(&["renew", &user, "--approve", "--if-expires-within", "1d"])
        .success();
    assert!(
        run.stdout
            .starts_with(&format!("Not renewing user \"{user}\""))
            && run.stdout.contains("beyond --if-expires-within 1d"),
        "{run}"
    );
    assert_eq!(env.kubeconfig_bytes(), before);
    let run = env
        .onboard(&["renew", &user, "--approve", "--if-expires-within", "100d"])
        .success();
    assert!(run.stderr.contains("within 100d: renewing"), "{run}");
    assert_ne!(env.kubeconfig_bytes(), before);
}

#[test]
fn renew_of_file_credentials_replaces_the_files_and_leaves_the_kubeconfig() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("filed");
    env.onboard(&[
        &user,
        "--approve",
        "--embed=false",
        "--key-algorithm",
        "ecdsa-p384",
    ])
    .success();
    let entry = env.user_entry(&user);
    let cert = PathBuf::from(entry["client-certificate"].as_str().unwrap());
    let key = PathBuf::from(entry["client-key"].as_str().unwrap());
    let (cert_before, key_before) = (fs::read(&cert).unwrap(), fs::read(&key).unwrap());
    let config_before = env.kubeconfig_bytes();
    let run = env.onboard(&["renew", &user, "--approve"]).success();
    assert!(run.stdout.contains("New private key (ECDSA-P384)"), "{run}");
    assert_eq!(env.kubeconfig_bytes(), config_before);
    assert_ne!(fs::read(&cert).unwrap(), cert_before);
    assert_ne!(fs::read(&key).unwrap(), key_before);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}

#[test]
fn renew_goes_with_the_users_own_credentials_when_they_may_and_an_admins_otherwise() {
    let cluster = Cluster::shared();
    let env = Env::admin(cluster);
    let user = unique("selfrenew");
    let role = unique("csr-requester");
    cluster.admin(&[
        "create",
        "clusterrole",
        &role,
        "--verb=create,get,list,watch",
        "--resource=certificatesigningrequests.certificates.k8s.io",
    ]);
    env.onboard(&[&user, "--approve", "--clusterrole", &role])
        .success();
    let before = env.user_entry(&user);

    // Without --approve the user may do it: the request is the user's, an admin approves.
    let child = env.spawn(&["renew", &user, "--timeout", "60s"]);
    let name = wait_for_csr(cluster, &user);
    let requester = cluster.admin(&["get", "csr", &name, "-o", "jsonpath={.spec.username}"]);
    assert_eq!(requester, user);
    cluster.admin(&["certificate", "approve", &name]);
    let run = finish(child, "kubectl onboard renew (self)").success();
    assert!(
        run.stderr.contains(&format!(
            "Requesting with the user's own credentials (context {user}@{})",
            cluster.name
        )),
        "{run}"
    );
    let after = env.user_entry(&user);
    assert_ne!(
        after["client-certificate-data"],
        before["client-certificate-data"]
    );
    // The user may not delete the request: it stays for the cluster's cleaner.
    assert!(csr_exists(cluster, &name));
    cluster.admin(&["delete", "csr", &name]);

    // With --approve the user may not: the current (admin) context sends and approves it.
    let admin_context = env.config_view()["current-context"]
        .as_str()
        .unwrap()
        .to_string();
    let (admin_name, _) = env.whoami(&admin_context);
    let run = env
        .onboard(&["renew", &user, "--approve", "--keep-csr"])
        .success();
    assert!(
        run.stderr.contains(&format!(
            "Requesting with context {admin_context}: the user's own credentials cannot"
        )),
        "{run}"
    );
    let name = wait_for_csr(cluster, &user);
    let requester = cluster.admin(&["get", "csr", &name, "-o", "jsonpath={.spec.username}"]);
    assert_eq!(requester, admin_name);
    cluster.admin(&["delete", "csr", &name]);
    assert_eq!(env.whoami(&format!("{user}@{}", cluster.name)).0, user);
}
