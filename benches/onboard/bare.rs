//! Item 2: the admin flow's phases (its own `--timings`), next to the bare cost of each phase
//! measured on its own in this process, through the same library calls on a warm connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use base64ct::{Base64, Encoding};
use kubectl_onboard::cluster::Connection;
use kubectl_onboard::cluster::{access, whoami};
use kubectl_onboard::csr;
use kubectl_onboard::csr::submit::{self, Request};
use kubectl_onboard::kubeconfig::file::Transaction;
use kubectl_onboard::kubeconfig::{self, Entries};
use kubectl_onboard::pki::key::{KeyAlgorithm, KeySource, PrivateKey};
use kubectl_onboard::pki::verify;
use kubectl_onboard::ui::progress::Progress;
use serde_json::json;

use crate::Bench;
use crate::flows::signed_ms;
use crate::proc::{self, Ran};
use crate::report::Section;
use crate::stats;

/// A connection with the administrator's credentials, as the command opens it.
pub async fn admin_connection(b: &Bench) -> Connection {
    let loaded = kubeconfig::load(Some(&b.cluster.admin_kubeconfig)).unwrap();
    let target = loaded.read_target(None).unwrap();
    Connection::open(&loaded, &target).await.unwrap()
}

/// The command's phases, in its order, and the bare measurement that matches each.
const PHASES: [(&str, &str); 11] = [
    ("kubeconfig read", "`kubeconfig::load` + `target`"),
    (
        "permission check",
        "open a connection (TLS) + the SelfSubjectAccessReviews, `access::check`",
    ),
    ("key", "RSA-2048 key generation, `PrivateKey::obtain`"),
    ("csr build", "`csr::build`"),
    ("create", "`submit::create`: one POST"),
    ("approve", "`submit::approve`: GET + PUT of /approval"),
    (
        "wait for certificate",
        "issued: from the approval's answer to the certificate on a watch already open",
    ),
    ("verify", "`verify::check`"),
    (
        "selfsubjectreview",
        "`whoami::prove_certificate`: new TLS connection with the new certificate + POST",
    ),
    ("csr cleanup", "`submit::delete`: one DELETE"),
    (
        "kubeconfig write",
        "`Loaded::merge`: lock, re-read, edit, write, fsync, rename",
    ),
];

/// The phases the issue names: their bare sum is what the whole command is held against.
const NAMED: [&str; 7] = [
    "key",
    "create",
    "approve",
    "wait for certificate",
    "verify",
    "kubeconfig write",
    "selfsubjectreview",
];

/// Returns the section and the command runs (item 6 reads their peak RSS).
pub async fn phases(b: &Bench) -> (Section, Vec<Ran>) {
    let mut s = Section::new("The limit: the admin flow's phases against their bare cost");
    let conn = admin_connection(b).await;
    let mut runs = vec![];
    let mut command: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut bare: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut walls = vec![];
    let mut starts = vec![];
    for i in 0..=b.runs {
        let user = format!("p{i}");
        let dir = b.dir(&format!("2-{user}"));
        let config = b.kubeconfig_in(&dir, &b.cluster.admin_kubeconfig);
        let mut cmd = b.onboard(&config);
        cmd.args([&user, "--group", "dev", "--approve", "--timings"]);
        let ran = proc::run(cmd, &dir).ok();
        let alone = once(b, &conn, i).await;
        let mut cmd = b.onboard(&config);
        cmd.arg("--version");
        let start = proc::run(cmd, &dir).ok().ms();
        println!(
            "  run {i}{}: command {:.0} ms, bare phases {:.0} ms",
            if i == 0 { " (warm-up)" } else { "" },
            ran.ms(),
            alone.values().sum::<f64>()
        );
        if i == 0 {
            continue;
        }
        for (phase, ms) in ran.timings() {
            command.entry(phase).or_default().push(ms);
        }
        for (phase, ms) in alone {
            bare.entry(phase).or_default().push(ms);
        }
        walls.push(ran.ms());
        starts.push(start);
        runs.push(ran);
    }

    let wall = stats::of(&walls);
    let start = stats::of(&starts);
    let in_command = |p: &str| command.get(p).map(|v| stats::of(v));
    s.line(format!(
        "{} runs after one warm-up. Each round: `kubectl-onboard pN --group dev --approve \
         --timings` on a fresh copy of the administrator's kubeconfig, then every phase alone \
         in this benchmark's process (same library calls, a connection opened once and kept \
         warm, except where the phase itself opens one), then `kubectl-onboard --version` for \
         the cost of a process. The certificate's arrival is seen by the benchmark's own watch \
         (see item 3).\n",
        walls.len()
    ));
    s.line("| phase | in the command (`--timings`) | bare, alone | bare: what was timed |");
    s.line("| --- | --- | --- | --- |");
    let mut bare_sum = 0.0;
    let mut all_sum = 0.0;
    for (phase, what) in PHASES {
        let alone = stats::of(&bare[phase]);
        all_sum += alone.median;
        let named = NAMED.contains(&phase);
        if named {
            bare_sum += alone.median;
        }
        let label = if named {
            format!("**{phase}**")
        } else {
            phase.to_string()
        };
        s.line(format!(
            "| {label} | {} | {} | {what} |",
            in_command(phase).map_or("–".into(), |st| st.ms()),
            alone.ms()
        ));
    }
    s.line(format!(
        "| process start and exit | (outside `total`) | {} | `kubectl-onboard --version`, spawn to exit |",
        start.ms()
    ));
    s.line(format!(
        "| total | {} | | |",
        in_command("total").map_or("–".into(), |st| st.ms())
    ));
    s.line(format!(
        "| **whole command, wall** (spawn to exit) | **{}** | | |",
        wall.ms()
    ));
    let ratio = wall.median / bare_sum;
    s.line(format!(
        "\nSum of the bare medians of the seven phases the issue names (bold): **{bare_sum:.1} ms**; \
         the whole command takes **{ratio:.2}×** that. With every phase the command has \
         (its permission check, reading the kubeconfig, building the request, deleting it) and \
         a process start, the bare sum is {:.1} ms and the command {:.2}× that.\n",
        all_sum + start.median,
        wall.median / (all_sum + start.median)
    ));
    s.verdict(
        "whole admin command vs the sum of its bare phases",
        "≤ 2×",
        format!("{ratio:.2}× ({:.0} ms vs {bare_sum:.0} ms)", wall.median),
        Some(ratio <= 2.0),
    );
    (s, runs)
}

/// Every phase once, alone. Returns ms per phase name (the command's names).
async fn once(b: &Bench, conn: &Connection, i: usize) -> BTreeMap<&'static str, f64> {
    let mut t = BTreeMap::new();
    let user = format!("q{i}");
    let groups = vec!["dev".to_string()];
    let mut quiet = Progress::new(true, false, false);
    let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;

    let dir = b.dir(&format!("2-{user}"));
    let config = b.kubeconfig_in(&dir, &b.cluster.admin_kubeconfig);
    let started = Instant::now();
    let loaded = kubeconfig::load(Some(&config)).unwrap();
    let target = loaded.read_target(None).unwrap();
    t.insert("kubeconfig read", ms(started));

    let started = Instant::now();
    let fresh = Connection::open(&loaded, &target).await.unwrap();
    access::check_requester(&fresh, true, &[], None)
        .await
        .unwrap();
    t.insert("permission check", ms(started));

    let started = Instant::now();
    let key = PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::Rsa2048)).unwrap();
    t.insert("key", ms(started));

    let started = Instant::now();
    let pem = csr::build(&user, &groups, &key).unwrap();
    t.insert("csr build", ms(started));

    let name = submit::object_name(&user, &submit::random_suffix());
    let algorithm = key.algorithm();
    let request = Request {
        user: &user,
        pem: &pem,
        rsa: true,
        duration: None,
        key_algorithm: &algorithm,
    };
    let started = Instant::now();
    let created = submit::create(conn, &name, &request).await.unwrap();
    t.insert("create", ms(started));

    let started = Instant::now();
    submit::approve(conn, &created, None).await.unwrap();
    let approved = Instant::now();
    t.insert("approve", ms(started));
    let (issued, cert) = b
        .csrs
        .issued(&name, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{name} not issued within 30 s"));
    t.insert("wait for certificate", signed_ms(approved, issued));

    let started = Instant::now();
    let public_key = key.public_key_der();
    let verified = verify::certificate(
        &cert,
        &verify::Expected {
            user: &user,
            groups: &groups,
            public_key_der: &public_key,
            duration: None,
            ca_pem: target.ca_pem.as_deref(),
            now: SystemTime::now(),
        },
    )
    .unwrap();
    t.insert("verify", ms(started));

    let started = Instant::now();
    whoami::prove_certificate(conn, &verified.pem, &key, &user, &mut quiet)
        .await
        .unwrap()
        .expect("a SelfSubjectReview answer");
    t.insert("selfsubjectreview", ms(started));

    let started = Instant::now();
    submit::delete(conn, &name, None).await.unwrap();
    t.insert("csr cleanup", ms(started));

    let entries = Entries {
        user: user.clone(),
        user_body: json!({
            "client-certificate-data": Base64::encode_string(verified.pem.as_bytes()),
            "client-key-data": Base64::encode_string(key.to_pem().as_bytes()),
        }),
        context: format!("{user}@{}", target.cluster_name),
        context_body: json!({"cluster": target.cluster_name, "user": user}),
    };
    let started = Instant::now();
    Transaction::all(|tx| loaded.merge(&entries, false, false, tx)).unwrap();
    t.insert("kubeconfig write", ms(started));
    t
}
