//! Tests of the test control plane itself (tests/support), with the real kubectl and openssl.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::cluster::{random_hex, run_with_stdin};
use crate::support::{Cluster, Options};
use serde_json::Value;

const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";

// ----- helpers -----

/// A name no other test (or earlier run against the same cluster) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(4))
}

/// A scratch dir inside the cluster dir (removed with the cluster).
fn workdir(cluster: &Cluster, name: &str) -> PathBuf {
    let dir = cluster.dir.join("work").join(name);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// `sh -ec script` in `dir` with KUBECONFIG set; panics unless it succeeds; returns stdout.
fn sh(cluster: &Cluster, dir: &Path, kubeconfig: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", cluster.dir.join("kubecache"))
        .output()
        .expect("run sh");
    assert_ok(&format!("sh -ec {script:?}"), &out)
}

/// `kubectl auth whoami -o json` → (username, groups).
fn whoami(cluster: &Cluster, kubeconfig: &Path) -> (String, Vec<String>) {
    let out = cluster.kubectl(kubeconfig, &["auth", "whoami", "-o", "json"]);
    let json: Value =
        serde_json::from_str(&assert_ok("kubectl auth whoami", &out)).expect("whoami JSON");
    let user = &json["status"]["userInfo"];
    let name = user["username"].as_str().expect("username").to_string();
    let groups = user["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (name, groups)
}

/// A fresh key and PKCS#10 request (`openssl genrsa`/`req`) for `subj`; returns the CSR's base64.
fn openssl_csr(dir: &Path, subj: &str) -> String {
    let ok = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert_ok(&format!("openssl {}", args.join(" ")), &out)
    };
    ok(&["genrsa", "-out", "u.key", "2048"]);
    ok(&[
        "req", "-new", "-key", "u.key", "-subj", subj, "-out", "u.csr",
    ]);
    crate::support::cluster::base64(&fs::read(dir.join("u.csr")).unwrap())
}

fn csr_manifest(name: &str, request_b64: &str, expiration_seconds: u64) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: {name}
spec:
  request: {request_b64}
  signerName: {KUBE_APISERVER_CLIENT}
  usages: [client auth]
  expirationSeconds: {expiration_seconds}
"
    )
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `timeout`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        sleep(Duration::from_millis(100));
    }
}

/// `.status.certificate` of a CSR (base64, empty until signed).
fn csr_certificate(cluster: &Cluster, name: &str) -> String {
    cluster
        .admin(&["get", "csr", name, "-o", "jsonpath={.status.certificate}"])
        .trim()
        .to_string()
}

/// Creates a CSR as admin, approves it, and waits up to `wait` for the certificate (PEM).
fn request_and_approve(
    cluster: &Cluster,
    name: &str,
    request_b64: &str,
    expiration_seconds: u64,
    wait: Duration,
) -> Option<String> {
    cluster.admin_stdin(
        &["apply", "-f", "-"],
        &csr_manifest(name, request_b64, expiration_seconds),
    );
    cluster.admin(&["certificate", "approve", name]);
    poll(wait, || {
        let b64 = csr_certificate(cluster, name);
        (!b64.is_empty()).then(|| {
            let out = run_with_stdin(Command::new("base64").arg("-d"), &b64);
            assert_ok("base64 -d", &out)
        })
    })
}

/// Seconds since the epoch of an `openssl x509 -enddate` date, e.g. `Nov 25 05:10:00 2026 GMT`.
fn parse_openssl_date(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    assert!(
        f.len() == 5 && f[4] == "GMT",
        "unexpected openssl date {s:?}"
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|m| *m == f[0]).expect("month") as i64 + 1;
    let d: i64 = f[1].parse().unwrap();
    let y: i64 = f[3].parse().unwrap();
    let hms: Vec<i64> = f[2].split(':').map(|x| x.parse().unwrap()).collect();
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

// ----- tests -----

#[test]
fn admin_kubeconfig_is_system_masters() {
    let c = Cluster::shared();
    assert!(c.server.starts_with("https://127.0.0.1:"), "{}", c.server);
    let readyz = c.admin(&["get", "--raw", "/readyz"]);
    assert_eq!(readyz.trim(), "ok");

    let (name, groups) = whoami(c, &c.admin_kubeconfig);
    assert_eq!(name, "admin");
    assert!(
        groups.iter().any(|g| g == "system:masters"),
        "groups: {groups:?}"
    );

    // Embedded CA and credentials, cluster "local", context "admin@local".
    let view: Value =
        serde_json::from_str(&c.admin(&["config", "view", "--raw", "-o", "json"])).unwrap();
    assert_eq!(view["current-context"], "admin@local");
    assert_eq!(view["clusters"][0]["name"], c.name.as_str());
    assert_eq!(view["clusters"][0]["cluster"]["server"], c.server.as_str());
    let ca_b64 = view["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("CA data");
    assert_eq!(
        ca_b64,
        crate::support::cluster::base64(c.ca_pem().as_bytes())
    );
    assert!(view["users"][0]["user"]["client-certificate-data"].is_string());
}

#[test]
fn bootstrap_token_can_create_a_csr_but_not_approve_it() {
    let c = Cluster::shared();
    let (name, groups) = whoami(c, &c.bootstrap_kubeconfig);
    assert_eq!(name, "onboarder");
    assert!(
        groups.iter().any(|g| g == "onboarding"),
        "groups: {groups:?}"
    );
    let ctx = assert_ok(
        "current-context",
        &c.kubectl(&c.bootstrap_kubeconfig, &["config", "current-context"]),
    );
    assert_eq!(ctx.trim(), "onboarder@local");

    let csr = unique("bootstrap");
    let request = openssl_csr(&workdir(c, &csr), "/CN=someone/O=dev");
    let out = run_with_stdin(
        c.kubectl_command(&c.bootstrap_kubeconfig)
            .args(["create", "-f", "-"]),
        &csr_manifest(&csr, &request, 3600),
    );
    assert_ok("create CSR as onboarder", &out);
    assert_ok(
        "get CSR as onboarder",
        &c.kubectl(&c.bootstrap_kubeconfig, &["get", "csr", &csr]),
    );

    let out = c.kubectl(&c.bootstrap_kubeconfig, &["certificate", "approve", &csr]);
    assert!(
        !out.status.success(),
        "onboarder approved a CSR: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("forbidden"),
        "unexpected error: {}",
        stderr(&out)
    );
    let conditions = c.admin(&["get", "csr", &csr, "-o", "jsonpath={.status.conditions}"]);
    assert_eq!(conditions.trim(), "", "the CSR changed status");

    // Nothing beyond create/get/list/watch on CSRs.
    let csrs = "certificatesigningrequests.certificates.k8s.io";
    for (args, expected) in [
        (&["create", csrs][..], "yes"),
        (&["get", csrs], "yes"),
        (&["list", csrs], "yes"),
        (&["watch", csrs], "yes"),
        (&["delete", csrs], "no"),
        (&["update", csrs], "no"),
        (&["update", csrs, "--subresource=approval"], "no"),
        (
            &["approve", "signers.certificates.k8s.io/kubernetes.io"],
            "no",
        ),
        (&["get", "secrets"], "no"),
        (&["list", "pods", "-A"], "no"),
    ] {
        let out = c.kubectl(
            &c.bootstrap_kubeconfig,
            &[&["auth", "can-i"][..], args].concat(),
        );
        assert_eq!(
            stdout(&out).trim(),
            expected,
            "can-i {args:?}: {}",
            stderr(&out)
        );
    }
    let role: Value = serde_json::from_str(&c.admin(&[
        "get",
        "clusterrole",
        "onboarding-csr-requester",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["create", "get", "list", "watch"],
        }])
    );
}

#[test]
fn documented_manual_flow_issues_a_working_client_certificate() {
    let c = Cluster::shared();
    let name = unique("manual-u");
    let dir = workdir(c, &name);
    // The steps of the documentation, verbatim, as an admin.
    sh(
        c,
        &dir,
        &c.admin_kubeconfig,
        &format!(
            r#"
openssl genrsa -out u.key 2048
openssl req -new -key u.key -subj "/CN=u/O=dev" -out u.csr
cat > csr.yaml <<EOF
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: {name}
spec:
  request: $(base64 -w0 u.csr)
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
  expirationSeconds: 3600
EOF
kubectl apply -f csr.yaml
kubectl certificate approve {name}
"#
        ),
    );
    let issued = poll(Duration::from_secs(5), || {
        sh(
            c,
            &dir,
            &c.admin_kubeconfig,
            &format!(
                "kubectl get csr {name} -o jsonpath='{{.status.certificate}}' | base64 -d > u.crt"
            ),
        );
        (fs::metadata(dir.join("u.crt")).unwrap().len() > 0).then_some(())
    });
    assert!(issued.is_some(), "no certificate within 5 s of approval");
    let cert = fs::read_to_string(dir.join("u.crt")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&c.ca_cert)
        .arg("u.crt")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_ok("openssl verify against the cluster CA", &verify);

    sh(
        c,
        &dir,
        &dir.join("u.kubeconfig"),
        &format!(
            "kubectl config set-cluster local --server={} --certificate-authority={} --embed-certs
kubectl config set-credentials u --client-certificate=u.crt --client-key=u.key --embed-certs
kubectl config set-context u@local --cluster=local --user=u
kubectl config use-context u@local",
            c.server,
            c.ca_cert.display()
        ),
    );
    let (user, groups) = whoami(c, &dir.join("u.kubeconfig"));
    assert_eq!(user, "u");
    assert!(groups.iter().any(|g| g == "dev"), "groups: {groups:?}");
}

#[test]
fn without_signer_an_approved_csr_gets_no_certificate() {
    let c = Cluster::start(Options {
        signer: false,
        ..Options::default()
    });
    let name = unique("nosigner");
    let request = openssl_csr(&workdir(&c, &name), "/CN=v/O=dev");
    // The signer answers in well under a second when it runs (see the other tests).
    let cert = request_and_approve(&c, &name, &request, 3600, Duration::from_secs(3));
    assert_eq!(cert, None, "a cluster without signer issued a certificate");
    let approved = c.admin(&[
        "get",
        "csr",
        &name,
        "-o",
        "jsonpath={.status.conditions[*].type}",
    ]);
    assert_eq!(approved.trim(), "Approved");
}

#[test]
fn signing_duration_caps_the_certificate_lifetime() {
    let c = Cluster::start(Options {
        signing_duration: Some("1h"),
        ..Options::default()
    });
    let name = unique("duration");
    let dir = workdir(&c, &name);
    let request = openssl_csr(&dir, "/CN=w/O=dev");
    let cert = request_and_approve(&c, &name, &request, 90 * 24 * 3600, Duration::from_secs(5))
        .expect("no certificate within 5 s");
    fs::write(dir.join("w.crt"), cert).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-in", "w.crt", "-noout", "-enddate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let end = assert_ok("openssl x509 -enddate", &out);
    let end = parse_openssl_date(end.trim().strip_prefix("notAfter=").expect("notAfter="));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lifetime = end - now;
    assert!(
        lifetime <= 3600,
        "certificate lives {lifetime} s, more than the 1h signing duration"
    );
    assert!(lifetime > 3000, "certificate lives only {lifetime} s");
}

#[test]
fn restart_apiserver_keeps_url_and_data() {
    let c = Cluster::start(Options::default());
    let cm = unique("before-restart");
    c.admin(&["create", "configmap", &cm, "--from-literal=k=v"]);
    let server = c.server.clone();
    let pid = |c: &Cluster| {
        c.pids()
            .into_iter()
            .find(|(n, _)| *n == "kube-apiserver")
            .unwrap()
            .1
    };
    let before = pid(&c);

    c.restart_apiserver();
    assert_ne!(pid(&c), before, "kube-apiserver was not restarted");
    assert!(
        !Path::new(&format!("/proc/{before}")).exists(),
        "the old kube-apiserver still runs"
    );
    assert_eq!(c.server, server);
    assert_eq!(c.admin(&["get", "--raw", "/readyz"]).trim(), "ok");
    assert_eq!(
        c.admin(&["get", "configmap", &cm, "-o", "jsonpath={.data.k}"]),
        "v"
    );

    // Dropping a cluster kills its processes and removes its dir.
    let (dir, pids) = (c.dir.clone(), c.pids());
    drop(c);
    assert!(!dir.exists(), "{} still exists", dir.display());
    for (name, pid) in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} ({pid}) still runs"
        );
    }
}

#[test]
fn default_route_detection() {
    let hdr = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n";
    let with = format!("{hdr}eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
    let without = format!("{hdr}eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
    let v6_lo = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
    assert!(crate::support::cluster::default_route_in(&with, ""));
    assert!(!crate::support::cluster::default_route_in(&without, v6_lo));
}

#[test]
fn openssl_dates_parse() {
    assert_eq!(parse_openssl_date("Jan  1 00:00:00 1970 GMT"), 0);
    assert_eq!(
        parse_openssl_date("Mar  1 12:00:01 2024 GMT"),
        1_709_294_401
    );
}
