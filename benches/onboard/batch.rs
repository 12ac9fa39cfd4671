//! Item 5: `kubectl onboard batch team.yaml --output-dir DIR --approve` for 100 and 500 users.

use std::fmt::Write as _;
use std::fs;

use crate::Bench;
use crate::proc;
use crate::report::Section;
use crate::stats::{self, Stats};
use crate::support::{Cluster, Options};

const SIZES: [(usize, usize); 2] = [(100, 3), (500, 3)];

pub fn teams(b: &Bench) -> Section {
    let mut s = Section::new("Batch: 100 and 500 users");
    let dir = b.dir("5-help");
    let mut cmd = b.onboard(&b.cluster.admin_kubeconfig);
    cmd.args(["batch", "--help"]);
    let help = proc::run(cmd, &dir);
    if help.code != Some(0) || !help.stdout.contains("--output-dir") {
        s.line("Not run: this build of kubectl-onboard has no `batch` subcommand.");
        for (n, _) in SIZES {
            s.verdict(
                &format!("batch of {n} users"),
                if n == 500 { "≤ 20 s" } else { "–" },
                "not run: batch subcommand missing".into(),
                None,
            );
        }
        return s;
    }

    s.line(
        "`kubectl-onboard batch team.yaml --output-dir DIR --approve` with the administrator's \
         kubeconfig and the default parallelism; team.yaml lists N users, each in group `dev`. \
         Each run writes to an empty DIR and must exit 0.\n",
    );
    s.line("| users | runs | wall, s | per user, ms |\n| --- | --- | --- | --- |");
    let mut per_user = 0.0;
    for (n, runs) in SIZES {
        let st = timed(b, &b.cluster, n, runs, &format!("5-{n}"), &[]);
        s.line(format!(
            "| {n} | {runs} | {} | {:.1} |",
            st.show(2),
            st.median * 1000.0 / n as f64
        ));
        per_user = st.median * 1000.0 / n as f64;
        s.verdict(
            &format!("batch of {n} users"),
            if n == 500 { "≤ 20 s" } else { "–" },
            format!("{:.2} s", st.median),
            if n == 500 {
                Some(st.median <= 20.0)
            } else {
                Some(true)
            },
        );
    }
    where_the_limit_lies(b, &mut s, per_user);
    s
}

/// 500 users again, taking away one cost at a time: the RSA keys (ECDSA instead), the signer's
/// rate limit (a second control plane whose kube-controller-manager may make 500 requests a
/// second), and the cluster round trips altogether (offline signing with the CA key).
fn where_the_limit_lies(b: &Bench, s: &mut Section, per_user: f64) {
    const N: usize = 500;
    const RUNS: usize = 2;
    let fast_signer = Cluster::start(Options {
        controller_manager_qps: Some(500),
        ..Options::default()
    });
    let ecdsa = ["--key-algorithm", "ecdsa-p256"];
    let ca_cert = b.cluster.ca_cert.display().to_string();
    let ca_key = b.cluster.ca_key.display().to_string();
    let offline = [
        "--ca-cert",
        &ca_cert,
        "--ca-key",
        &ca_key,
        "--server",
        &b.cluster.server,
    ];
    let offline_ecdsa: Vec<&str> = offline.iter().chain(&ecdsa).copied().collect();
    let cases: [(&str, &Cluster, &[&str]); 5] = [
        (
            "ECDSA P-256 keys, signer at its default 20 requests/s",
            &b.cluster,
            &ecdsa,
        ),
        (
            "RSA-2048 keys, signer allowed 500 requests/s",
            &fast_signer,
            &[],
        ),
        (
            "ECDSA P-256 keys, signer allowed 500 requests/s",
            &fast_signer,
            &ecdsa,
        ),
        (
            "RSA-2048 keys, offline (`--ca-cert --ca-key --server`), each proven with a SelfSubjectReview",
            &b.cluster,
            &offline,
        ),
        (
            "ECDSA P-256 keys, offline, each proven",
            &b.cluster,
            &offline_ecdsa,
        ),
    ];
    s.line(format!(
        "\n**Where the limit lies.** The run above takes {per_user:.0} ms a user, and the signer is \
         what paces it: kube-controller-manager issues each certificate with one status update \
         through its own client, which client-go limits to `--kube-api-qps` (default 20 a \
         second, burst 30): 500 certificates take at least (500 − 30) / 20 = 23.5 s however \
         fast the requester is. {N} users again, {RUNS} runs each, taking away one cost at a \
         time (the second control plane differs from the first only in \
         `--kube-api-qps=500 --kube-api-burst=1000`; kube-apiserver, etcd and the controller \
         manager share these 2 cores with the batch):\n"
    ));
    s.line("| 500 users | wall, s | per user, ms |\n| --- | --- | --- |");
    let mut medians = vec![];
    for (i, (what, cluster, extra)) in cases.iter().enumerate() {
        let st = timed(b, cluster, N, RUNS, &format!("5-limit-{i}"), extra);
        s.line(format!(
            "| {what} | {} | {:.1} |",
            st.show(2),
            st.median * 1000.0 / N as f64
        ));
        medians.push(st.median);
    }
    let [ecdsa_slow, rsa_fast, ecdsa_fast, rsa_offline, ecdsa_offline] = medians[..] else {
        unreachable!("five cases")
    };
    s.line(format!(
        "\nTwo limits, the signer's rate and the CPU cost of RSA keys. With the default \
         signer, ECDSA keys change nothing ({ecdsa_slow:.1} s). With a signer allowed 500 \
         requests a second, RSA keys still take {rsa_fast:.1} s, and {rsa_offline:.1} s \
         offline, where no request waits on the cluster at all: each RSA-2048 key costs about \
         {:.0} ms of CPU (2 cores, shared with the control plane). With ECDSA keys and a \
         signer that may keep up, 500 users take {ecdsa_fast:.1} s ({ecdsa_offline:.1} s \
         offline). For large batches: `--key-algorithm ecdsa-p256`, and a controller manager \
         with a higher `--kube-api-qps`, or offline signing.",
        rsa_offline * 2.0 * 1000.0 / N as f64
    ));
    s.verdict(
        "batch of 500, ECDSA keys, signer allowed 500 requests/s",
        "≤ 20 s",
        format!("{ecdsa_fast:.2} s"),
        Some(ecdsa_fast <= 20.0),
    );
}

/// `runs` runs of a batch of `n` users on `cluster`, each into an empty directory; must exit 0.
fn timed(b: &Bench, cluster: &Cluster, n: usize, runs: usize, name: &str, extra: &[&str]) -> Stats {
    let mut walls = vec![];
    for r in 0..runs {
        let run_dir = b.dir(&format!("{name}-{r}"));
        let mut team = String::new();
        for k in 0..n {
            let _ = writeln!(team, "- name: {name}-{r}-{k}\n  groups: [dev]");
        }
        let team_file = run_dir.join("team.yaml");
        fs::write(&team_file, team).unwrap();
        let mut cmd = b.onboard(&cluster.admin_kubeconfig);
        cmd.arg("batch")
            .arg(&team_file)
            .arg("--output-dir")
            .arg(run_dir.join("out"))
            .args(extra);
        if !extra.contains(&"--ca-key") {
            cmd.arg("--approve");
        }
        let ran = proc::run(cmd, &run_dir).ok();
        println!(
            "  {n} users {}, run {r}: {:.1} s",
            extra.join(" "),
            ran.wall.as_secs_f64()
        );
        walls.push(ran.wall.as_secs_f64());
    }
    stats::of(&walls)
}
