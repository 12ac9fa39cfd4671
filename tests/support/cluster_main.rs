//! `make cluster` (`cargo run --example cluster`): the test control plane in the foreground,
//! for trying kubectl-onboard by hand. Ctrl-C or SIGTERM tears it down.
//!
//! `cargo run --example cluster -- COMMAND [ARGS...]` (`make demo`) instead runs COMMAND against
//! the cluster, tears down when it exits and exits with its status. COMMAND gets:
//! KUBECONFIG (admin), CLUSTER_SERVER, CLUSTER_BOOTSTRAP_KUBECONFIG, CLUSTER_BOOTSTRAP_TOKEN,
//! CLUSTER_CA_CERT, CLUSTER_CA_KEY and CLUSTER_DIR.

#[path = "mod.rs"]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::Duration;

use support::{Cluster, Options};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let command: Vec<String> = std::env::args().skip(1).collect();
    // Until the handlers below are installed, a signal kills this process and the cluster's
    // watchdog tears the cluster down.
    let cluster = Cluster::start(Options::default());
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let code = if command.is_empty() {
        println!(
            "Control plane ready in {:.1?}; Ctrl-C stops it.",
            cluster.timings.total
        );
        println!();
        println!("server:               {}", cluster.server);
        println!(
            "admin kubeconfig:     export KUBECONFIG={}",
            cluster.admin_kubeconfig.display()
        );
        println!(
            "bootstrap kubeconfig: {}",
            cluster.bootstrap_kubeconfig.display()
        );
        println!("bootstrap token:      {}", cluster.bootstrap_token);
        println!("cluster CA:           {}", cluster.ca_cert.display());
        println!("logs:                 {}/*.log", cluster.dir.display());
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        println!("\nstopping the control plane");
        ExitCode::SUCCESS
    } else {
        let mut child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .env("KUBECONFIG", &cluster.admin_kubeconfig)
            .env("CLUSTER_SERVER", &cluster.server)
            .env(
                "CLUSTER_BOOTSTRAP_KUBECONFIG",
                &cluster.bootstrap_kubeconfig,
            )
            .env("CLUSTER_BOOTSTRAP_TOKEN", &cluster.bootstrap_token)
            .env("CLUSTER_CA_CERT", &cluster.ca_cert)
            .env("CLUSTER_CA_KEY", &cluster.ca_key)
            .env("CLUSTER_DIR", &cluster.dir)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", command[0]));
        // A Ctrl-C also reaches the command (same process group): wait for it to exit.
        loop {
            if let Some(status) = child.try_wait().expect("wait for the command") {
                // Killed by a signal: 128 + signal, like a shell.
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                break ExitCode::from(code as u8);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = int.recv() => {}
                _ = term.recv() => { let _ = child.kill(); }
            }
        }
    };
    drop(cluster);
    code
}
