//! Item 5: `kubectl onboard batch team.yaml --output-dir DIR --approve` for 100 and 500 users.

use std::fmt::Write as _;
use std::fs;

use crate::Bench;
use crate::proc;
use crate::report::Section;
use crate::stats;

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
    for (n, runs) in SIZES {
        let mut walls = vec![];
        for r in 0..runs {
            let run_dir = b.dir(&format!("5-{n}-{r}"));
            let mut team = String::new();
            for k in 0..n {
                let _ = writeln!(team, "- name: t{n}-{r}-{k}\n  groups: [dev]");
            }
            let team_file = run_dir.join("team.yaml");
            fs::write(&team_file, team).unwrap();
            let out = run_dir.join("out");
            let mut cmd = b.onboard(&b.cluster.admin_kubeconfig);
            cmd.arg("batch")
                .arg(&team_file)
                .arg("--output-dir")
                .arg(&out)
                .arg("--approve");
            let ran = proc::run(cmd, &run_dir).ok();
            println!("  {n} users, run {r}: {:.1} s", ran.wall.as_secs_f64());
            walls.push(ran.wall.as_secs_f64());
        }
        let st = stats::of(&walls);
        s.line(format!(
            "| {n} | {runs} | {} | {:.1} |",
            st.show(2),
            st.median * 1000.0 / n as f64
        ));
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
    s
}
