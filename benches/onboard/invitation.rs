//! Item 9: an invitation, from the administrator's approval to the new user's kubeconfig. Per
//! run: `kubectl-onboard invite iN` (not timed), `kubectl-onboard accept iN.invite` on a
//! "machine" of its own (no kubeconfig yet), waiting; once the request appears, this process
//! runs `kubectl-onboard approve NAME` as the administrator (which checks the request against
//! its invitation, marks the invitation used and approves). Timed on one clock: the start of
//! that approve, the certificate visible on the API (our watch), the rename that puts the new
//! user's kubeconfig in place (inotify).

use std::time::{Duration, Instant};

use crate::Bench;
use crate::flows::signed_ms;
use crate::observe::Renames;
use crate::proc;
use crate::report::Section;
use crate::stats;

pub fn approval_to_kubeconfig(b: &Bench) -> Section {
    let mut s = Section::new("Invitation: approval → the new user's kubeconfig written");
    let renames = Renames::start();
    let admin_dir = b.dir("9-admin");
    let admin = b.kubeconfig_in(&admin_dir, &b.cluster.admin_kubeconfig);
    let (mut total, mut to_issued, mut to_written, mut approving) =
        (vec![], vec![], vec![], vec![]);
    for i in 0..=b.runs {
        let user = format!("i{i}");
        let invitation = admin_dir.join(format!("{user}.invite"));
        let mut invite = b.onboard(&admin);
        invite.args(["invite", &user, "--group", "dev", "--output"]);
        invite.arg(&invitation);
        proc::run(invite, &admin_dir).ok();

        // The new user's machine: an empty directory whose `config` does not exist yet.
        let dir = b.dir(&format!("9-{user}"));
        let wd = renames.watch(&dir);
        let mut accept = b.onboard(&dir.join("config"));
        accept.arg("accept").arg(&invitation).arg("--timings");
        let run_dir = dir.clone();
        let child = std::thread::spawn(move || proc::run(accept, &run_dir));

        let Some(request) = b.csrs.request_of(&user, Duration::from_secs(60)) else {
            let ran = child.join().unwrap();
            panic!("no request from {user} within 60 s:\n{}", ran.stderr);
        };
        let mut approve = b.onboard(&admin);
        approve.args(["approve", &request.name]);
        let approved_at = Instant::now();
        let approve_ms = proc::run(approve, &admin_dir).ok().ms();
        let (issued, _) = b
            .csrs
            .issued(&request.name, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} was not issued within 60 s", request.name));
        child.join().unwrap().ok();
        let renamed = renames
            .wait(wd, "config", Duration::from_secs(5))
            .expect("no rename of the new user's kubeconfig seen");
        let ms = signed_ms(approved_at, renamed);
        println!(
            "  run {i}{}: approve started → written {ms:.1} ms (approve command {approve_ms:.0} ms)",
            if i == 0 { " (warm-up)" } else { "" },
        );
        if i > 0 {
            total.push(ms);
            to_issued.push(signed_ms(approved_at, issued));
            to_written.push(signed_ms(issued, renamed));
            approving.push(approve_ms);
        }
    }
    let st = stats::of(&total);
    s.line(format!(
        "{} runs after one warm-up. `kubectl-onboard accept iN.invite --timings` waits with the \
         invitation's token only, writing to a kubeconfig that does not exist yet; this \
         benchmark runs `kubectl-onboard approve NAME` as the administrator as soon as its \
         watch sees the request. The approve command goes on after the approval: it waits for \
         the signer, records the certificate and tidies finished invitations, so it ends after \
         the new user's kubeconfig is written. Moments on one clock: **approve started** (the spawn of that command), \
         **issued** (our watch sees `status.certificate`), **written** (inotify `IN_MOVED_TO` \
         of the new `config`).\n",
        total.len()
    ));
    s.line("| | ms |\n| --- | --- |");
    s.line(format!(
        "| **approve started → written** | **{}** |",
        st.ms()
    ));
    s.line(format!(
        "| of which approve started → issued (approve's checks, the invitation marked used, the approval, the signer) | {} |",
        stats::of(&to_issued).ms()
    ));
    s.line(format!(
        "| of which issued → written (accept: verify, prove, write; it deletes the invitation's credential after) | {} |",
        stats::of(&to_written).ms()
    ));
    s.line(format!(
        "| the approve command, spawn to exit | {} |",
        stats::of(&approving).ms()
    ));
    s.verdict(
        "invitation: approval → the new user's kubeconfig written",
        "none (the issue asks for the figure)",
        format!("{:.1} ms", st.median),
        None,
    );
    s
}
