//! `kubectl onboard deny NAME… --reason TEXT`: the Denied condition, with a reason the
//! requester reads where `kubectl onboard` waits (it then exits 3). Denying one that is denied
//! already is fine; an approved one cannot be denied: its certificate is, or will be, out.

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

use crate::access;
use crate::cluster::Connection;
use crate::cmd::approve::{because, fetch, names, not_found};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::review::Reviewed;
use crate::session::Local;
use crate::submit::{self, SIGNER};
use crate::wait::State;

const DEFAULT_MESSAGE: &str = "This CSR was denied by kubectl onboard deny.";

/// Deny certificate requests for people (kube-apiserver-client signer), telling the requester why.
#[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
#[argh(
    example = "Deny a request, with the reason the requester will see:\n  $ {command_name} jane-4kx9q2 --reason \"use your SSO account\"",
    error_code(1, "Not found, approved already, another signer, or not allowed.")
)]
pub struct Args {
    /// the CertificateSigningRequests to deny (kubectl onboard pending lists them)
    #[argh(positional)]
    pub names: Vec<String>,

    /// why: the requester sees it in their error message
    #[argh(option)]
    pub reason: Option<String>,

    /// path to the kubeconfig to use
    #[argh(option)]
    pub kubeconfig: Option<PathBuf>,

    /// the kubeconfig context whose cluster and credentials to use
    #[argh(option)]
    pub context: Option<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let names = names(&args.names, "deny")?;
    let message = match args.reason.as_deref().map(str::trim) {
        None => DEFAULT_MESSAGE.to_string(),
        Some("") => {
            return Err(Error::usage(
                "--reason is empty: say why, e.g. --reason \"use your SSO account\"",
            ));
        }
        Some(text) => text.to_string(),
    };
    let mut progress = Progress::new(false, false, false);
    let local = Local::load(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        &mut progress,
    )?;
    let conn = Connection::open(&local.loaded, &local.target).await?;
    access::check_reviewer(&conn, "deny").await?;

    let mut to_deny = Vec::new();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    for name in &names {
        let Some(csr) = fetch(&conn, name).await? else {
            problems.push(not_found(name));
            continue;
        };
        let r = Reviewed::of(&csr);
        if r.signer != SIGNER {
            problems.push(format!(
                "{name} is for signer {}, and kubectl onboard reviews only {SIGNER} requests; use kubectl certificate deny",
                r.signer
            ));
            continue;
        }
        match &r.state {
            State::Issued(_) | State::Approved => problems.push(format!(
                "{name} is already approved, so it cannot be denied; a certificate cannot be revoked: remove the user's RBAC bindings (kubectl onboard offboard USER)"
            )),
            State::Denied { reason, message } => notes.push(format!(
                "{name} is already denied ({})",
                because(reason, message)
            )),
            State::Failed { reason, message } => notes.push(format!(
                "{name} already failed ({}); no certificate was issued",
                because(reason, message)
            )),
            State::Pending => to_deny.push(r.name),
        }
    }
    if !problems.is_empty() {
        return Err(Error::failed(format!(
            "{}; nothing was denied",
            problems.join("; ")
        )));
    }
    for note in notes {
        println!("{note}");
    }
    for name in &to_deny {
        submit::deny(&conn, name, &message).await?;
        println!("Denied {name}: {message}");
    }
    Ok(())
}
