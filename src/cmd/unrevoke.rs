//! `kubectl onboard unrevoke USER | --fingerprint SHA256`: takes certificates off the revocation
//! list (`revoke.rs`), for mistakes; their writes are accepted again within seconds.

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use crate::cluster::session;
use crate::error::Result;
use crate::flags::cli::flags;
use crate::records::revocation::enforcement::check_enforced;
use crate::records::revocation::targets::{Target, check_named, expired_entries, targets, trusted};
use crate::records::revocation::{self, credential_id};
use crate::ui::report::Output;

flags! {
    /// Take certificates off the revocation list: their writes are accepted again.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(example = "Undo kubectl onboard revoke jane:\n  $ {command_name} jane")]
    pub struct Args {
        /// the user whose still-valid certificates to take off the list
        #[argh(positional)]
        pub user: Option<String>,
        /// this one certificate: its SHA-256 fingerprint
        #[argh(option)]
        pub fingerprint: Option<String>,
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
    check_named(
        args.user.as_deref(),
        args.fingerprint.as_deref(),
        "unrevoke",
    )?;
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
    let records = trusted(&conn, args.user.as_deref(), &mut progress).await?;
    let targets = targets(
        &records,
        args.user.as_deref(),
        args.fingerprint.as_deref(),
        "unrevoke",
    )?;
    let entries = revocation::list(&conn).await?;
    let mut remove = expired_entries(&entries, &records);
    let mut text = String::new();
    let mut taken_off = Vec::new();
    for t in &targets {
        let id = credential_id(t.fingerprint());
        if entries.contains_key(t.fingerprint()) {
            text += &format!("{id} is no longer revoked: its writes are accepted again\n");
            remove.push(t.fingerprint().to_string());
            taken_off.push(id);
        } else {
            text += &format!("{id} was not revoked\n");
        }
    }
    if !remove.is_empty() {
        revocation::update(&conn, &Default::default(), &remove).await?;
        let taken: Vec<String> = targets
            .iter()
            .map(|t| t.fingerprint().to_string())
            .filter(|hex| remove.contains(hex))
            .collect();
        check_enforced(&conn, &taken, false, &mut progress).await?;
    }
    if let [Target::Recorded(r), ..] = targets.as_slice() {
        progress.detail(&format!(
            "user {}: {} certificates looked at",
            r.user,
            targets.len()
        ));
    }
    output.print(|| json!({"unrevoked": taken_off}), &text)
}
