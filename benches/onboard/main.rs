//! `make bench`: kubectl-onboard timed on a local real control plane (the test harness's
//! etcd, kube-apiserver and kube-controller-manager), written to `benches/RESULTS.md`.
//!
//! ```sh
//! cargo bench --bench onboard -- [--runs N] [--only 1,3] [--bin PATH] [--out FILE]
//! ```
//!
//! Items (the numbering of RESULTS.md): 1 the admin flow against the documented manual flow
//! (`benches/manual-flow.sh`); 2 its phases next to each phase's bare cost; 3 issued → written
//! in self-service mode; 4 merging into large kubeconfigs; 5 `kubectl onboard batch`; 6 the
//! binary: size, `--help`, peak RSS; 7 completion latency for the cluster-backed candidates; 8
//! the inventory at 10,000 records and the cost of recording.
//! Every figure is a median with min and max; targets are reported, never asserted.

#[path = "../../tests/support/mod.rs"]
mod support;

mod bare;
mod batch;
mod binary;
mod complete;
mod flows;
mod inventory;
mod invitation;
mod merge;
mod observe;
mod proc;
mod report;
mod stats;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::{Cluster, Options};

use crate::observe::Csrs;
use crate::report::Report;

/// What every item needs: the cluster, the binary, scratch space, how many runs.
pub struct Bench {
    pub cluster: Cluster,
    pub bin: PathBuf,
    pub repo: PathBuf,
    /// One HOME for every program run (kubectl's discovery cache stays warm, as on a desk).
    pub home: PathBuf,
    pub scratch: PathBuf,
    pub runs: usize,
    pub csrs: Csrs,
    path: OsString,
}

impl Bench {
    /// A fresh directory under the scratch root.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `dir/config`: a copy of `from` (the admin or bootstrap kubeconfig).
    pub fn kubeconfig_in(&self, dir: &Path, from: &Path) -> PathBuf {
        let config = dir.join("config");
        fs::copy(from, &config).unwrap();
        config
    }

    /// `program` with HOME, kubectl's cache, PATH (the binary's directory first, so that
    /// `kubectl onboard` finds this kubectl-onboard) and KUBECONFIG set.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", &self.home)
            .env("KUBECACHEDIR", self.home.join(".kube/cache"))
            .env("PATH", &self.path)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBECTL_PLUGINS_PATH");
        cmd
    }

    /// kubectl-onboard itself, as above.
    pub fn onboard(&self, kubeconfig: &Path) -> Command {
        self.command(&self.bin, kubeconfig)
    }
}

struct Args {
    runs: usize,
    only: Option<Vec<u32>>,
    bin: PathBuf,
    out: PathBuf,
}

fn args() -> Args {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        runs: 15,
        only: None,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_kubectl-onboard")),
        out: repo.join("benches/RESULTS.md"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--only" => {
                args.only = Some(
                    value()
                        .split(',')
                        .map(|n| n.parse().expect("--only 1,2,..."))
                        .collect(),
                )
            }
            "--bin" => args.bin = value().into(),
            "--out" => args.out = value().into(),
            other => {
                panic!("unknown argument {other}; use --runs N, --only 1,3, --bin PATH, --out FILE")
            }
        }
    }
    args.bin = fs::canonicalize(&args.bin)
        .unwrap_or_else(|e| panic!("{}: {e}; run cargo build --release", args.bin.display()));
    args
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = args();
    let started = Instant::now();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let wanted = |item: u32| args.only.as_ref().is_none_or(|o| o.contains(&item));
    let mut report = Report::new(args.runs);

    println!("bench: starting a local control plane");
    let cluster = Cluster::start(Options::default());
    let scratch = cluster.dir.join("bench");
    let home = scratch.join("home");
    fs::create_dir_all(home.join(".kube")).unwrap();
    let mut path = OsString::from(args.bin.parent().unwrap());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let csrs = Csrs::start(&cluster.admin_kubeconfig);
    let bench = Bench {
        bin: args.bin.clone(),
        repo,
        home,
        scratch,
        runs: args.runs,
        csrs,
        path,
        cluster,
    };
    report.versions(&bench);

    if wanted(1) {
        report.item(1, flows::admin_vs_manual(&bench));
    }
    let mut admin_flow = None;
    if wanted(2) || wanted(6) {
        let (section, runs) = bare::phases(&bench).await;
        if wanted(2) {
            report.item(2, section);
        }
        admin_flow = Some(runs);
    }
    if wanted(3) {
        report.item(3, flows::self_service(&bench).await);
    }
    if wanted(4) {
        report.item(4, merge::scaling(&bench));
    }
    if wanted(5) {
        report.item(5, batch::teams(&bench));
    }
    if wanted(6) {
        report.item(
            6,
            binary::figures(&bench, admin_flow.as_deref().unwrap_or(&[])),
        );
    }

    if wanted(7) {
        report.item(7, complete::latency(&bench));
    }
    if wanted(8) {
        report.item(8, inventory::scale(&bench).await);
    }
    if wanted(9) {
        report.item(9, invitation::approval_to_kubeconfig(&bench));
    }

    report.finish(started.elapsed());
    // One item on its own goes in place of its own rows and section; the others stay.
    let text = match (&args.only, fs::read_to_string(&args.out)) {
        (Some(_), Ok(existing)) if existing.contains("## Summary") => report.merge_into(&existing),
        _ => report.render(),
    };
    fs::write(&args.out, text).unwrap();
    println!(
        "bench: wrote {} ({:.0?} in all)",
        args.out.display(),
        started.elapsed()
    );
}
