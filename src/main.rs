//! `kubectl-onboard`: prints the one fatal error and picks the exit code; the work is in the
//! library.

use std::process::ExitCode;

use kubectl_onboard::cmd;
use kubectl_onboard::cmd::Parsed;
use kubectl_onboard::error::{Error, Result};
use kubectl_onboard::plan::Plan;

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
    match cmd::parse(&args)? {
        Parsed::Print(text) => {
            println!("{}", text.trim_end());
            Ok(())
        }
        Parsed::Run(args) => {
            let plan = Plan::try_from(*args)?;
            runtime()?.block_on(cmd::onboard::run(plan))
        }
        Parsed::Command(command) => runtime()?.block_on(cmd::run(command)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}
