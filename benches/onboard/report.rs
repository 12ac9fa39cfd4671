//! RESULTS.md: the machine, the versions, the date, a summary of every target, then one
//! section per item with its figures and how they were taken.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Bench;
use crate::proc::output;
use crate::support::cluster::binaries_dir;

/// One target and what was measured against it.
pub struct Verdict {
    pub figure: String,
    pub target: String,
    pub measured: String,
    /// `None`: not measured.
    pub met: Option<bool>,
}

/// One item's part of the report.
pub struct Section {
    pub title: String,
    pub body: String,
    pub verdicts: Vec<Verdict>,
    load_before: String,
    load_after: String,
}

impl Section {
    /// Notes the load average: the figures of a busy machine are not this tool's.
    pub fn new(title: &str) -> Section {
        println!("bench: {title}");
        Section {
            title: title.into(),
            body: String::new(),
            verdicts: Vec::new(),
            load_before: load(),
            load_after: String::new(),
        }
    }

    pub fn line(&mut self, text: impl AsRef<str>) {
        self.body += text.as_ref();
        self.body.push('\n');
    }

    pub fn verdict(&mut self, figure: &str, target: &str, measured: String, met: Option<bool>) {
        println!("  {figure}: {measured} (target {target}: {})", mark(met));
        self.verdicts.push(Verdict {
            figure: figure.into(),
            target: target.into(),
            measured,
            met,
        });
    }
}

/// An item's rows of the summary table.
fn summary_rows(n: u32, s: &Section) -> Vec<String> {
    s.verdicts
        .iter()
        .map(|v| {
            format!(
                "| {n} | {} | {} | {} | {} |",
                v.figure,
                v.target,
                v.measured,
                mark(v.met)
            )
        })
        .collect()
}

/// An item's section, from its heading.
fn section_md(n: u32, s: &Section) -> String {
    format!(
        "## {n}. {}\n\n_Load average (1/5/15 min) before: {}; after: {}._\n\n{}",
        s.title, s.load_before, s.load_after, s.body
    )
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        // Not run, or a figure the issues ask for without a target: the row says which.
        None => "-",
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct Report {
    date: String,
    machine: Vec<(String, String)>,
    versions: Vec<(String, String)>,
    runs: usize,
    items: Vec<(u32, Section)>,
    took: Duration,
}

impl Report {
    pub fn new(runs: usize) -> Report {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0);
        let fs = output(
            "df",
            &["--output=fstype", &std::env::temp_dir().to_string_lossy()],
        );
        let machine = vec![
            ("CPU".into(), cpu),
            (
                "cores".into(),
                std::thread::available_parallelism()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ),
            (
                "memory".into(),
                format!("{:.1} GiB", mem_kib as f64 / 1048576.0),
            ),
            ("kernel".into(), output("uname", &["-srm"])),
            (
                "temp dir file system".into(),
                format!(
                    "{} ({})",
                    std::env::temp_dir().display(),
                    fs.lines().last().unwrap_or("").trim()
                ),
            ),
            ("load at start (1/5/15 min)".into(), load()),
        ];
        Report {
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine,
            versions: Vec::new(),
            runs,
            items: Vec::new(),
            took: Duration::ZERO,
        }
    }

    pub fn versions(&mut self, bench: &Bench) {
        let bin = bench.bin.to_string_lossy();
        let cp = binaries_dir();
        let first = |s: String| s.lines().next().unwrap_or("").to_string();
        let repo = bench.repo.to_string_lossy();
        self.versions = vec![
            (
                "kubectl-onboard".into(),
                format!(
                    "{} (git {}), {}",
                    output(&bin, &["--version"]),
                    output("git", &["-C", &repo, "describe", "--always", "--dirty"]),
                    bin
                ),
            ),
            ("rustc".into(), output("rustc", &["-V"])),
            (
                "kube-apiserver".into(),
                output(&cp.join("kube-apiserver").to_string_lossy(), &["--version"]),
            ),
            (
                "kube-controller-manager".into(),
                output(
                    &cp.join("kube-controller-manager").to_string_lossy(),
                    &["--version"],
                ),
            ),
            (
                "etcd".into(),
                first(output(&cp.join("etcd").to_string_lossy(), &["--version"])),
            ),
            (
                "kubectl".into(),
                first(output("kubectl", &["version", "--client"])),
            ),
            ("openssl".into(), output("openssl", &["version"])),
            ("bash".into(), first(output("bash", &["--version"]))),
            (
                "hyperfine".into(),
                match output("hyperfine", &["--version"]) {
                    v if v.is_empty() => "not installed (item 6 times --help itself)".into(),
                    v => v,
                },
            ),
        ];
    }

    pub fn item(&mut self, n: u32, mut section: Section) {
        section.load_after = load();
        self.items.push((n, section));
    }

    pub fn finish(&mut self, took: Duration) {
        self.took = took;
    }

    pub fn render(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        let _ = writeln!(w, "# Benchmarks\n");
        let _ = writeln!(
            w,
            "Written by `make bench` on {} in {:.0} s ({} runs per figure unless stated). \
             Each figure is the **median (min–max)**; times in ms unless stated. \
             Regenerate with `make bench`; the targets are checked here, never in `make test`.\n",
            self.date,
            self.took.as_secs_f64(),
            self.runs
        );
        let _ = writeln!(w, "## Machine\n\n| | |\n| --- | --- |");
        for (k, v) in &self.machine {
            let _ = writeln!(w, "| {k} | {v} |");
        }
        let _ = writeln!(w, "\n## Versions\n\n| | |\n| --- | --- |");
        for (k, v) in &self.versions {
            let _ = writeln!(w, "| {k} | {v} |");
        }
        let _ = writeln!(
            w,
            "\n## Summary\n\n| # | figure | target | measured | |\n| --- | --- | --- | --- | --- |"
        );
        for (n, s) in &self.items {
            for row in summary_rows(*n, s) {
                let _ = writeln!(w, "{row}");
            }
        }
        for (n, s) in &self.items {
            let _ = write!(w, "\n{}", section_md(*n, s));
        }
        md
    }

    /// `existing` (a RESULTS.md of every item) with this run's items put in place of theirs:
    /// their summary rows and sections, each section saying when and where it was measured
    /// on its own. What `--only` writes, so that one item does not wipe out the others.
    pub fn merge_into(&self, existing: &str) -> String {
        let mut out = existing.to_string();
        let cpu = self.machine.first().map(|(_, v)| v.as_str()).unwrap_or("");
        for (n, s) in &self.items {
            let rows = summary_rows(*n, s).join("\n");
            let prefix = format!("| {n} | ");
            let mut lines: Vec<String> = out.lines().map(String::from).collect();
            let first = lines.iter().position(|l| l.starts_with(&prefix));
            lines.retain(|l| !l.starts_with(&prefix));
            let at = first.unwrap_or_else(|| {
                let summary = lines.iter().position(|l| l == "## Summary").unwrap_or(0);
                lines[summary..]
                    .iter()
                    .skip(4)
                    .position(|l| !l.starts_with('|'))
                    .map_or(lines.len(), |i| summary + 4 + i)
            });
            lines.insert(at, rows);
            out = lines.join("\n") + "\n";

            let note = format!(
                "\nMeasured on its own (`make bench BENCH_ARGS=\"--only {n}\"`) on {}, on {cpu}.\n",
                self.date
            );
            let section = section_md(*n, s) + &note;
            let heading = format!("\n## {n}. ");
            match out.find(&heading) {
                Some(start) => {
                    let end = out[start + 1..]
                        .find("\n## ")
                        .map_or(out.len(), |i| start + 1 + i);
                    out.replace_range(start + 1..end, &section);
                }
                None => out = format!("{}\n\n{section}", out.trim_end()),
            }
        }
        out
    }
}
