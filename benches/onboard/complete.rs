//! Item 7: completion latency. `kubectl onboard <TAB>` runs `kubectl_complete-onboard`, which
//! for `approve` lists the pending requests and for `--clusterrole` the ClusterRoles: one
//! kubeconfig read, one connection, one list call. Timed directly and through kubectl
//! (`kubectl __complete onboard …`, what a shell runs), next to a word that needs no cluster.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::proc;
use crate::report::Section;
use crate::stats;

pub fn latency(b: &Bench) -> Section {
    let mut s = Section::new("Completion: candidates from the cluster");
    let dir = b.dir("7");
    let admin = b.kubeconfig_in(&dir, &b.cluster.admin_kubeconfig);
    let bootstrap = b.kubeconfig_in(&b.dir("7-requester"), &b.cluster.bootstrap_kubeconfig);

    // The helper beside the binary under test, as `kubectl onboard completion kubectl` makes it.
    let mut install = b.command("kubectl", &admin);
    install.args(["onboard", "completion", "kubectl"]);
    proc::run(install, &dir).ok();
    let helper = b.bin.with_file_name("kubectl_complete-onboard");

    // One request waiting for approval, so that `approve <TAB>` has something to list.
    let mut waiting = spawn_request(b, &bootstrap);
    let name = wait_for_pending(b, &admin);

    let cases: [(&str, Vec<&str>, bool); 4] = [
        (
            "`approve <TAB>` (pending requests), helper run directly",
            vec!["approve", ""],
            false,
        ),
        (
            "`approve <TAB>` through `kubectl __complete onboard`",
            vec!["approve", ""],
            true,
        ),
        (
            "`--clusterrole <TAB>` (ClusterRoles) through kubectl",
            vec!["jane", "--clusterrole", ""],
            true,
        ),
        ("`ap<TAB>` (no cluster) through kubectl", vec!["ap"], true),
    ];
    s.line(format!(
        "Median (min–max) of {} runs after 3 warm-up, wall time from spawn to exit; the pending request is {name}.\n",
        b.runs
    ));
    s.line("| candidates | ms |\n| --- | --- |");
    let mut pending_through_kubectl = None;
    for (what, words, through_kubectl) in cases {
        let mut times = vec![];
        for i in 0..b.runs + 3 {
            let mut cmd = match through_kubectl {
                true => {
                    let mut c = b.command("kubectl", &admin);
                    c.args(["__complete", "onboard"]);
                    c
                }
                false => b.command(&helper, &admin),
            };
            cmd.args(&words);
            let ran = proc::run(cmd, &dir).ok();
            if words[0] == "approve" {
                assert!(
                    ran.stdout.contains(&name),
                    "{what}: {} not offered\n{}",
                    name,
                    ran.stdout
                );
            }
            if i >= 3 {
                times.push(ran.ms());
            }
        }
        let st = stats::of(&times);
        if through_kubectl && words[0] == "approve" {
            pending_through_kubectl = Some(st.median);
        }
        s.line(format!("| {what} | {} |", st.ms()));
    }
    let _ = waiting.kill();
    let _ = waiting.wait();
    let median = pending_through_kubectl.unwrap_or(f64::NAN);
    s.verdict(
        "`kubectl onboard approve <TAB>`, median",
        "feels instant (≤ 300 ms); a silent cluster is given up on after 2 s",
        format!("{median:.1} ms"),
        Some(median <= 300.0),
    );
    s
}

fn spawn_request(b: &Bench, bootstrap: &std::path::Path) -> Child {
    let mut cmd = b.onboard(bootstrap);
    cmd.args(["bench-tab", "--group", "dev", "--timeout", "10m", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("start a self-service request")
}

fn wait_for_pending(b: &Bench, admin: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cmd = b.onboard(admin);
        cmd.args(["pending", "-o", "json"]);
        let out = cmd.output().expect("kubectl onboard pending");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(name) = v["pending"]
            .as_array()
            .and_then(|l| l.iter().find_map(|r| r["name"].as_str()))
        {
            return name.to_string();
        }
        assert!(Instant::now() < deadline, "no pending request within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
