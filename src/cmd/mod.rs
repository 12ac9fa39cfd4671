//! Subcommands: `kubectl onboard <subcommand> …`, one file each. `kubectl onboard <user>`
//! stays the one-command path (`onboard.rs`). To add one: a module with an argh `Args` and
//! `run`, a `Command` variant, and a line in `parse`, `run` and `infos`.

pub mod approve;
pub mod batch;
pub mod completion;
pub mod deny;
pub mod import;
pub mod offboard;
pub mod onboard;
pub mod pending;
pub mod renew;
pub mod request;
pub mod sign;
pub mod status;

use argh::{ArgsInfo, SubCommandInfo};

use crate::cli::{COMMAND, Parsed, parse_as};
use crate::error::Result;

#[derive(Debug)]
pub enum Command {
    Status(status::Args),
    Batch(Box<batch::Args>),
    Pending(pending::Args),
    Approve(approve::Args),
    Deny(deny::Args),
    Offboard(offboard::Args),
    Request(request::Args),
    Sign(sign::Args),
    Import(import::Args),
    Renew(renew::Args),
}

/// `Some` when `name` is a subcommand: its parse of `rest`.
pub fn parse(name: &str, rest: &[String]) -> Option<Result<Parsed>> {
    let command = format!("{COMMAND} {name}");
    let parsed = match name {
        completion::NAME => return Some(completion::parse(&command, rest)),
        "status" => parse_as::<status::Args>(&command, rest).map(|r| r.map(Command::Status)),
        "batch" => parse_as::<batch::Args>(&command, rest)
            .map(|r| r.map(|args| Command::Batch(Box::new(args)))),
        "pending" => parse_as::<pending::Args>(&command, rest).map(|r| r.map(Command::Pending)),
        "approve" => parse_as::<approve::Args>(&command, rest).map(|r| r.map(Command::Approve)),
        "deny" => parse_as::<deny::Args>(&command, rest).map(|r| r.map(Command::Deny)),
        "offboard" => parse_as::<offboard::Args>(&command, rest).map(|r| r.map(Command::Offboard)),
        "request" => parse_as::<request::Args>(&command, rest).map(|r| r.map(Command::Request)),
        "sign" => parse_as::<sign::Args>(&command, rest).map(|r| r.map(Command::Sign)),
        "import" => parse_as::<import::Args>(&command, rest).map(|r| r.map(Command::Import)),
        "renew" => parse_as::<renew::Args>(&command, rest).map(|r| r.map(Command::Renew)),
        _ => return None,
    };
    Some(parsed.map(|r| match r {
        Ok(command) => Parsed::Command(command),
        Err(help) => Parsed::Print(help),
    }))
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Status(args) => status::run(args).await,
        Command::Batch(args) => batch::run(*args).await,
        Command::Pending(args) => pending::run(args).await,
        Command::Approve(args) => approve::run(args).await,
        Command::Deny(args) => deny::run(args).await,
        Command::Offboard(args) => offboard::run(args).await,
        Command::Request(args) => request::run(args).await,
        Command::Sign(args) => sign::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Renew(args) => renew::run(args).await,
    }
}

/// Every subcommand's flags, for the completion scripts.
pub fn infos() -> Vec<SubCommandInfo> {
    let info = |name: &'static str, mut command: argh::CommandInfoWithArgs| {
        // argh names a top-level struct after its type; the scripts match on this name.
        command.name = name;
        SubCommandInfo { name, command }
    };
    vec![
        info(completion::NAME, completion::Completion::get_args_info()),
        info("status", status::Args::get_args_info()),
        info("batch", batch::Args::get_args_info()),
        info("pending", pending::Args::get_args_info()),
        info("approve", approve::Args::get_args_info()),
        info("deny", deny::Args::get_args_info()),
        info("offboard", offboard::Args::get_args_info()),
        info("request", request::Args::get_args_info()),
        info("sign", sign::Args::get_args_info()),
        info("import", import::Args::get_args_info()),
        info("renew", renew::Args::get_args_info()),
    ]
}
