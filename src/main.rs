//! kubectl-onboard: a new Kubernetes user with a client certificate, in one command.

mod access;
mod cli;
mod cluster;
mod completion;
mod csr;
mod error;
mod flow;
mod key;
mod kubeconfig;
mod plan;
mod progress;
mod report;
mod submit;
mod verify;
mod wait;
mod whoami;

use std::process::ExitCode;

use cli::Parsed;
use error::{Error, Result};
use plan::Plan;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(i32::from(e.exit_code()) as u8)
        }
    }
}

fn run() -> Result<()> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::usage(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>>>()?;
    match cli::parse(&args)? {
        Parsed::Print(text) => {
            println!("{}", text.trim_end());
            Ok(())
        }
        Parsed::Run(args) => {
            let plan = Plan::try_from(*args)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?
                .block_on(flow::onboard(plan))
        }
    }
}
