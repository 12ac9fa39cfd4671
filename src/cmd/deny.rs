//! `kubectl onboard deny NAME… --reason TEXT`: the Denied condition, with a reason the
//! requester reads where `kubectl onboard` waits (it then exits 3). Denying one that is denied
//! already is fine; an approved one cannot be denied: its certificate is, or will be, out.

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use crate::cluster::access;
use crate::cluster::session;
use crate::csr::queue::{because, names, review_all};
use crate::csr::submit::{self, SIGNER};
use crate::csr::wait::State;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::ui::report::Output;

const DEFAULT_MESSAGE: &str = "This CSR was denied by kubectl onboard deny.";

flags! {
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
    }
    with connection, limit, output
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
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);
    let (kubeconfig, context) = (args.kubeconfig.as_deref(), args.context.as_deref());
    let conn = session::connection(
        kubeconfig,
        context,
        args.request_timeout.as_deref(),
        &mut progress,
    )
    .await?;
    access::check_reviewer(&conn, "deny").await?;

    let mut to_deny = Vec::new();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    for r in review_all(&conn, &names, &mut problems).await? {
        let name = &r.name;
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
            State::Denied { reason, message } => notes.push((
                r.name.clone(),
                format!("{name} is already denied ({})", because(reason, message)),
            )),
            State::Failed { reason, message } => notes.push((
                r.name.clone(),
                format!(
                    "{name} already failed ({}); no certificate was issued",
                    because(reason, message)
                ),
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
    let mut text = String::new();
    for (_, note) in &notes {
        text += &format!("{note}\n");
    }
    for name in &to_deny {
        submit::deny(&conn, name, &message).await?;
        progress.detail(&format!("denied {name}"));
        text += &format!("Denied {name}: {message}\n");
    }
    let value = || {
        let settled: Vec<&str> = notes.iter().map(|(name, _)| name.as_str()).collect();
        json!({"denied": to_deny, "message": message, "alreadyDecided": settled})
    };
    output.print(value, &text)
}
