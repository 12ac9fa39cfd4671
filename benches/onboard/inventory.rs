//! Item 8: the inventory. `kubectl onboard certificates` over 10,000 recorded certificates (the
//! records written straight through `inventory::record`, 32 at a time), and what recording adds
//! to the admin flow: its `inventory` phase in `--timings`, one POST.

use std::time::Instant;

use futures::StreamExt;
use kubectl_onboard::records::inventory::{self, Record};

use crate::Bench;
use crate::bare::admin_connection;
use crate::proc;
use crate::report::Section;
use crate::stats;

const RECORDS: usize = 10_000;

pub async fn scale(b: &Bench) -> Section {
    let mut s = Section::new("Inventory: 10,000 records, and the cost of recording");
    let dir = b.dir("8");
    let conn = admin_connection(b).await;

    // What recording adds to the admin flow (the records of these runs are real ones).
    let kubeconfig = b.kubeconfig_in(&dir, &b.cluster.admin_kubeconfig);
    let mut recording = vec![];
    for i in 0..b.runs {
        let mut cmd = b.onboard(&kubeconfig);
        let user = format!("inv-bench-{i:03}");
        cmd.args([
            user.as_str(),
            "--approve",
            "--timings",
            "--key-algorithm",
            "ecdsa-p256",
            "--force",
        ]);
        let ran = proc::run(cmd, &dir).ok();
        let phase = ran.timings().into_iter().find(|(p, _)| p == "inventory");
        recording.push(phase.map(|(_, ms)| ms).unwrap_or(f64::NAN));
    }
    let recording = stats::of(&recording);

    let started = Instant::now();
    let pem = "-----BEGIN CERTIFICATE-----\n".to_string()
        + &"A".repeat(900)
        + "\n-----END CERTIFICATE-----\n";
    let written: usize = futures::stream::iter(0..RECORDS)
        .map(|i| {
            let (conn, pem) = (&conn, &pem);
            async move {
                let record = fake(i);
                inventory::record(conn, &record, pem, inventory::Writer::Issuer)
                    .await
                    .is_ok() as usize
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    let seeding = started.elapsed();

    let mut listing = vec![];
    for i in 0..b.runs + 1 {
        let mut cmd = b.onboard(&kubeconfig);
        cmd.args(["certificates", "--all", "-o", "json"]);
        let ran = proc::run(cmd, &dir).ok();
        assert!(
            ran.stdout.len() > RECORDS * 100,
            "certificates listed too little"
        );
        if i > 0 {
            listing.push(ran.ms());
        }
    }
    let listing = stats::of(&listing);

    s.line(format!(
        "{written} records written in {:.1} s ({:.0} a second, 32 at a time). Median (min–max) of {} runs.\n",
        seeding.as_secs_f64(),
        written as f64 / seeding.as_secs_f64(),
        b.runs
    ));
    s.line("| | ms |\n| --- | --- |");
    s.line(format!(
        "| `inventory` phase of the admin flow (`--timings`) | {} |",
        recording.show(1)
    ));
    s.line(format!(
        "| `kubectl onboard certificates --all -o json` over {RECORDS} records (+ the ones above) | {} |",
        listing.ms()
    ));
    s.verdict(
        "recording, added to the admin flow",
        "≤ 5 ms",
        format!("{:.1} ms", recording.median),
        Some(recording.median <= 5.0),
    );
    s.verdict(
        "`certificates` over 10,000 records",
        "≤ 1 s",
        format!("{:.0} ms", listing.median),
        Some(listing.median <= 1000.0),
    );
    s
}

/// A record as `kubectl onboard` writes one, for certificate number `i`.
fn fake(i: usize) -> Record {
    Record {
        user: format!("user-{:05}", i % 2000),
        groups: vec!["dev".into()],
        serial: format!("{i:x}"),
        fingerprint: format!("{i:064x}"),
        not_before: "2026-12-01T00:00:00Z".into(),
        not_after: "2027-12-01T00:00:00Z".into(),
        key: "ECDSA-P256".into(),
        requester: Some("admin".into()),
        approver: Some("admin".into()),
        how: "batch".into(),
        csr: Some(format!("user-{i:05}-abcdef")),
    }
}
