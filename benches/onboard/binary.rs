//! Item 6: the binary itself: stripped size, `--help` wall time, peak RSS of the admin flow.

use std::fs;
use std::process::Command;

use crate::Bench;
use crate::proc::{self, Ran};
use crate::report::Section;
use crate::stats;

const HELP_RUNS: usize = 300;

pub fn figures(b: &Bench, admin_flow: &[Ran]) -> Section {
    let mut s = Section::new("Binary: size, `--help`, peak RSS");
    let dir = b.dir("6");

    let size = fs::metadata(&b.bin).unwrap().len();
    let file = proc::output("file", &["-b", &b.bin.to_string_lossy()]);
    let stripped = !file.contains("not stripped") && !file.contains("with debug_info");
    let mb = size as f64 / 1e6;

    // --help: spawn to exit, stdout and stderr to files, after 20 unmeasured runs.
    let mut help = vec![];
    for i in 0..HELP_RUNS + 20 {
        let mut cmd = b.onboard(&b.cluster.admin_kubeconfig);
        cmd.arg("--help");
        let ran = proc::run(cmd, &dir).ok();
        if i >= 20 {
            help.push(ran.ms());
        }
    }
    let help = stats::of(&help);
    let hyperfine = hyperfine(b, &dir);

    let rss: Vec<f64> = admin_flow
        .iter()
        .map(|r| r.max_rss_kib as f64 / 1024.0)
        .collect();

    s.line("| | |\n| --- | --- |");
    s.line(format!(
        "| size | {size} bytes ({mb:.2} MB, {:.2} MiB) |",
        size as f64 / 1048576.0
    ));
    s.line(format!("| `file` | {file} |"));
    s.line(format!(
        "| `--help`, spawn to exit ({HELP_RUNS} runs after 20 warm-up) | {} ms |",
        help.show(2)
    ));
    if let Some(h) = &hyperfine {
        s.line(format!("| `--help`, hyperfine -N | {h} |"));
    }
    if !rss.is_empty() {
        s.line(format!(
            "| peak RSS of the admin flow (`wait4` ru_maxrss of item 2's {} runs) | {} MiB |",
            rss.len(),
            stats::of(&rss).show(1)
        ));
    }
    s.verdict(
        "stripped binary size",
        "≤ 12 MB",
        format!(
            "{mb:.2} MB{}",
            if stripped { "" } else { " (NOT stripped)" }
        ),
        Some(stripped && mb <= 12.0),
    );
    s.verdict(
        "`--help` wall time",
        "≤ 5 ms",
        format!("{:.2} ms", help.median),
        Some(help.median <= 5.0),
    );
    if rss.is_empty() {
        s.verdict(
            "peak RSS, admin flow",
            "≤ 30 MB",
            "not run (item 2 skipped)".into(),
            None,
        );
    } else {
        let st = stats::of(&rss);
        s.verdict(
            "peak RSS, admin flow",
            "≤ 30 MB",
            format!("{:.1} MiB", st.median),
            Some(st.median * 1.048576 <= 30.0),
        );
    }
    s
}

/// hyperfine's figure for `--help`, as a cross-check, when it is installed.
fn hyperfine(b: &Bench, dir: &std::path::Path) -> Option<String> {
    let json = dir.join("hyperfine.json");
    let status = Command::new("hyperfine")
        .args(["-N", "--warmup", "20", "--runs", "300", "--style", "none"])
        .arg("--export-json")
        .arg(&json)
        .arg(format!("{} --help", b.bin.display()))
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).ok()?).ok()?;
    let r = &v["results"][0];
    let ms = |k: &str| r[k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    Some(format!(
        "median {:.2} ms (min {:.2}, max {:.2}; mean {:.2} ± {:.2})",
        ms("median"),
        ms("min"),
        ms("max"),
        ms("mean"),
        ms("stddev")
    ))
}
