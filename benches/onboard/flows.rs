//! Items 1 and 3: whole runs of the command, timed from outside.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use kubectl_onboard::csr::submit;

use crate::Bench;
use crate::bare::admin_connection;
use crate::observe::Renames;
use crate::proc::{self, Ran};
use crate::report::Section;
use crate::stats::{self, Stats};

/// Item 1: `kubectl onboard aN --group dev --approve` (A), the same binary called directly
/// (A′), and `benches/manual-flow.sh bN dev local` (B), interleaved A B A′, each on a fresh copy
/// of the administrator's kubeconfig. Run 0 warms caches and is not counted.
pub fn admin_vs_manual(b: &Bench) -> Section {
    let mut s = Section::new("End to end, admin flow: `kubectl onboard` against the manual flow");
    let script = b.repo.join("benches/manual-flow.sh");
    let admin = &b.cluster.admin_kubeconfig;
    let (mut plugin, mut manual, mut direct, mut ecdsa, mut ratios) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..=b.runs {
        let user = format!("a{i}");
        let dir = b.dir(&format!("1-{user}"));
        let config = b.kubeconfig_in(&dir, admin);
        let mut cmd = b.command("kubectl", &config);
        cmd.args(["onboard", &user, "--group", "dev", "--approve"]);
        let a = added(proc::run(cmd, &dir).ok(), &config, &user);

        let user = format!("b{i}");
        let dir = b.dir(&format!("1-{user}"));
        let config = b.kubeconfig_in(&dir, admin);
        let mut cmd = b.command("bash", &config);
        cmd.arg(&script).args([&user, "dev", &b.cluster.name]);
        cmd.current_dir(&dir);
        let m = added(proc::run(cmd, &dir).ok(), &config, &user);

        let user = format!("c{i}");
        let dir = b.dir(&format!("1-{user}"));
        let config = b.kubeconfig_in(&dir, admin);
        let mut cmd = b.onboard(&config);
        cmd.args([&user, "--group", "dev", "--approve"]);
        let d = added(proc::run(cmd, &dir).ok(), &config, &user);

        let user = format!("e{i}");
        let dir = b.dir(&format!("1-{user}"));
        let config = b.kubeconfig_in(&dir, admin);
        let mut cmd = b.command("kubectl", &config);
        cmd.args(["onboard", &user, "--group", "dev", "--approve"])
            .args(["--key-algorithm", "ecdsa-p256"]);
        let e = added(proc::run(cmd, &dir).ok(), &config, &user);

        println!(
            "  run {i}{}: kubectl onboard {:.0} ms, manual {:.0} ms, kubectl-onboard {:.0} ms, with ECDSA {:.0} ms",
            if i == 0 { " (warm-up)" } else { "" },
            a.ms(),
            m.ms(),
            d.ms(),
            e.ms()
        );
        if i > 0 {
            ratios.push(m.ms() / a.ms());
            plugin.push(a.ms());
            manual.push(m.ms());
            direct.push(d.ms());
            ecdsa.push(e.ms());
        }
    }

    // What the manual flow is made of: a kubectl call and an openssl key, alone.
    let dir = b.dir("1-parts");
    let config = b.kubeconfig_in(&dir, admin);
    let mut get = vec![];
    let mut genrsa = vec![];
    let (mut via_kubectl, mut alone) = (vec![], vec![]);
    for _ in 0..b.runs {
        let mut cmd = b.command("kubectl", &config);
        cmd.args(["onboard", "--version"]);
        via_kubectl.push(proc::run(cmd, &dir).ok().ms());
        let mut cmd = b.onboard(&config);
        cmd.arg("--version");
        alone.push(proc::run(cmd, &dir).ok().ms());
        let mut cmd = b.command("kubectl", &config);
        cmd.args(["get", "csr", "b1", "-o", "jsonpath={.status.certificate}"]);
        get.push(proc::run(cmd, &dir).ok().ms());
        let mut cmd = b.command("openssl", &config);
        cmd.args(["genrsa", "2048"]);
        genrsa.push(proc::run(cmd, &dir).ok().ms());
    }

    let (pa, pm, pd, r) = (
        stats::of(&plugin),
        stats::of(&manual),
        stats::of(&direct),
        stats::of(&ratios),
    );
    let pe = stats::of(&ecdsa);
    let (via_kubectl, alone) = (stats::of(&via_kubectl), stats::of(&alone));
    let dispatch = via_kubectl.median - alone.median;
    let ratio = pm.median / pa.median;
    s.line(format!(
        "{} runs of each, interleaved A B A′ A B A′ … after one warm-up round; each run on a \
         fresh copy of the administrator's kubeconfig, all with one HOME (kubectl's discovery \
         cache warm, as on a desk). Wall time from spawn to exit.\n",
        plugin.len()
    ));
    s.line("| | command | ms |\n| --- | --- | --- |");
    s.line(format!(
        "| A | `kubectl onboard aN --group dev --approve` (through kubectl's plugin lookup) | {} |",
        pa.ms()
    ));
    s.line(format!(
        "| A′ | `kubectl-onboard cN --group dev --approve` (the binary directly) | {} |",
        pd.ms()
    ));
    s.line(format!(
        "| B | `benches/manual-flow.sh bN dev local`: openssl genrsa 2048, openssl req, kubectl apply, kubectl certificate approve, kubectl get csr every 50 ms, base64 -d, kubectl config set-credentials --embed-certs, kubectl config set-context | {} |",
        pm.ms()
    ));
    s.line(format!(
        "| A″ | `kubectl onboard eN --group dev --approve --key-algorithm ecdsa-p256` | {} |",
        pe.ms()
    ));
    s.line(format!(
        "| | `kubectl onboard --version`: kubectl's plugin lookup and exec, and our process | {} |",
        via_kubectl.ms()
    ));
    s.line(format!(
        "| | `kubectl-onboard --version`: our process alone | {} |",
        alone.ms()
    ));
    s.line(format!(
        "| | one `kubectl get csr … -o jsonpath` alone | {} |",
        stats::of(&get).ms()
    ));
    s.line(format!(
        "| | one `openssl genrsa 2048` alone | {} |",
        stats::of(&genrsa).ms()
    ));
    s.line(format!(
        "\nB/A: **{ratio:.1}×** (ratio of the medians); per pair {}. B/A′: {:.1}×.\n",
        r.show(1),
        pm.median / pd.median
    ));
    s.line(format!(
        "Where the limit lies. The manual flow is at least six kubectl processes (each a Go \
         binary that starts, reads the kubeconfig, opens a TLS connection and, for `apply`, \
         consults discovery; {get:.0} ms each here) plus two openssl processes; kubectl-onboard \
         is one process with one TLS connection for all its requests. Typed as `kubectl \
         onboard`, it first pays for one kubectl start and plugin lookup: {dispatch:.0} ms \
         (`kubectl onboard --version` − `kubectl-onboard --version`), {:.0}% of A. Of the rest, \
         RSA-2048 key generation is the largest part (item 2); with an ECDSA key (A″) the \
         ratio is {:.1}×. Even a plugin that took no time at all behind kubectl's lookup would \
         give B / {:.0} ms = {:.0}×.",
        100.0 * dispatch / pa.median,
        pm.median / pe.median,
        via_kubectl.median,
        pm.median / via_kubectl.median,
        get = stats::of(&get).median,
    ));
    s.verdict(
        "admin flow vs the manual flow (B/A)",
        "≥ 10×",
        format!("{ratio:.1}× ({:.0} ms vs {:.0} ms)", pm.median, pa.median),
        Some(ratio >= 10.0),
    );
    s
}

/// Checks that the run added `user` to `config`; a run that did not is no figure.
fn added(ran: Ran, config: &Path, user: &str) -> Ran {
    let text = fs::read_to_string(config).unwrap_or_default();
    assert!(
        text.contains(&format!("name: {user}\n")),
        "{} did not add user {user} to {}:\n{}",
        ran.command,
        config.display(),
        ran.stderr
    );
    ran
}

/// Item 3: self-service. `kubectl-onboard sN --group dev` with the bootstrap token waits; this
/// process, as the administrator, approves the request when it appears. Measured: from the
/// moment the certificate is visible on the API (our own watch sees status.certificate set)
/// to the rename that puts the new kubeconfig in place (inotify IN_MOVED_TO on its directory).
pub async fn self_service(b: &Bench) -> Section {
    let mut s = Section::new("Issued → written, self-service mode");
    let conn = admin_connection(b).await;
    let renames = Renames::start();
    let mut intervals = vec![];
    let mut phases: Vec<Vec<(String, f64)>> = vec![];
    for i in 0..=b.runs {
        let user = format!("s{i}");
        let dir = b.dir(&format!("3-{user}"));
        let config = b.kubeconfig_in(&dir, &b.cluster.bootstrap_kubeconfig);
        let wd = renames.watch(&dir);
        let mut cmd = b.onboard(&config);
        cmd.args([&user, "--group", "dev", "--timings"]);
        let run_dir = dir.clone();
        let child = std::thread::spawn(move || proc::run(cmd, &run_dir));

        let request = b
            .csrs
            .request_of(&user, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("no request from {user} within 60 s"));
        let checked = kube::Api::<CertificateSigningRequest>::all(conn.client.clone())
            .get(&request.name)
            .await
            .unwrap_or_else(|e| panic!("read {}: {e}", request.name));
        submit::approve(&conn, &checked, None)
            .await
            .unwrap_or_else(|e| panic!("approve {}: {e}", request.name));
        let (issued, _) = b
            .csrs
            .issued(&request.name, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} was not issued within 60 s", request.name));
        let ran = added(child.join().unwrap().ok(), &config, &user);
        let renamed = renames
            .wait(wd, "config", Duration::from_secs(5))
            .expect("no rename of the kubeconfig seen");
        let ms = signed_ms(issued, renamed);
        println!(
            "  run {i}{}: issued → written {ms:.1} ms (command {:.0} ms)",
            if i == 0 { " (warm-up)" } else { "" },
            ran.ms()
        );
        if i > 0 {
            intervals.push(ms);
            phases.push(ran.timings());
        }
    }
    let st = stats::of(&intervals);
    let phase = |name: &str| -> Stats {
        stats::of(
            &phases
                .iter()
                .map(|t| t.iter().find(|(p, _)| p == name).map_or(0.0, |(_, ms)| *ms))
                .collect::<Vec<_>>(),
        )
    };
    s.line(format!(
        "{} runs after one warm-up. `kubectl-onboard sN --group dev --timings` runs with the \
         bootstrap token (may create, get, list, watch CSRs; not delete) and waits; this \
         benchmark, a second process, approves the request with the administrator's \
         credentials as soon as its watch sees it.\n",
        intervals.len()
    ));
    s.line(
        "How the two moments are taken, on one clock (CLOCK_MONOTONIC, one process):\n\n\
         - **issued**: the benchmark's own watch on all CertificateSigningRequests, on its own \
           thread, connection and runtime, notes the first event whose `status.certificate` is \
           set. The API server sends that event to every watcher at once (the watch cache fans \
           it out), so this is the moment the certificate became visible to kubectl-onboard's \
           watch too, give or take the scheduling of two processes. (The object's \
           managedFields time has only second resolution, so it cannot serve.)\n\
         - **written**: inotify `IN_MOVED_TO` on the kubeconfig's directory, on another \
           thread: the rename of the temporary file over `config`, the moment the new \
           kubeconfig exists for kubectl. Nothing else renames into that directory.\n",
    );
    s.line("| | ms |\n| --- | --- |");
    s.line(format!("| **issued → written** | **{}** |", st.ms()));
    for p in [
        "verify",
        "csr cleanup",
        "selfsubjectreview",
        "kubeconfig write",
    ] {
        s.line(format!(
            "| of which `{p}` (from `--timings`) | {} |",
            phase(p).ms()
        ));
    }
    s.line(format!(
        "| `wait for certificate` (from `--timings`; includes the wait for the approval) | {} |",
        phase("wait for certificate").ms()
    ));
    s.line(
        "\n`csr cleanup` is near zero here: the bootstrap identity may not delete its request, \
         so none is sent (the cluster's cleaner removes it within the hour).",
    );
    s.verdict(
        "issued → written, self-service",
        "≤ 50 ms",
        format!("{:.1} ms", st.median),
        Some(st.median <= 50.0),
    );
    s
}

/// `to − from` in ms, negative if `to` came first.
pub fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    }
}
