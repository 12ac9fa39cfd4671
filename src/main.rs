//! `kubectl-onboard`: prints the one fatal error and picks the exit code; the work is in the
//! library.

use std::process::ExitCode;

use kubectl_onboard::cmd;
use kubectl_onboard::cmd::Parsed;
use kubectl_onboard::cmd::complete;
use kubectl_onboard::error::{Error, Result};
use kubectl_onboard::flags::plan::Plan;

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
    let mut argv: Vec<_> = std::env::args_os().collect();
    let program = if argv.is_empty() {
        Default::default()
    } else {
        argv.remove(0)
    };
    if let Some(words) = completion_request(&program, argv.iter().cloned()) {
        print!("{}", runtime()?.block_on(complete::reply(&words)));
        return Ok(());
    }
    let args = argv
        .into_iter()
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

/// The words to complete, when kubectl runs us as `kubectl_complete-onboard` or a completion
/// script as `kubectl-onboard __complete` (a word that is not UTF-8 is taken lossily: it only
/// narrows the candidates).
fn completion_request(
    program: &std::ffi::OsStr,
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<Vec<String>> {
    let mut words: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let name = std::path::Path::new(program).file_name()?.to_string_lossy();
    if name.trim_end_matches(".exe") == kubectl_onboard::flags::cli::KUBECTL_HELPER {
        return Some(words);
    }
    if words.first().map(String::as_str) == Some(kubectl_onboard::flags::cli::HIDDEN_COMMAND) {
        words.remove(0);
        return Some(words);
    }
    None
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))
}
