//! `kubectl onboard invitations`: every invitation with what became of it (open, requested,
//! used, expired, withdrawn); `--revoke NAME` withdraws one. Like every invitation command, it
//! first deletes the credentials of finished invitations.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::cluster::Connection;
use crate::cluster::session;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::invitation::{Invitation, State, Stored, server};
use crate::ui::report::Output;

flags! {
    /// List the invitations made with kubectl onboard invite, or withdraw one.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "What became of the invitations?\n  $ {command_name}",
        example = "Withdraw one that was sent to the wrong person:\n  $ {command_name} --revoke jane-x7k2q9",
        note = "STATE: open (not redeemed yet), requested (a request made with it waits for approval), used, expired, withdrawn. The credential of a used, expired or withdrawn invitation is deleted: its token no longer works. Records are kept 30 days after they expire."
    )]
    pub struct Args {
        /// withdraw this invitation: its token stops working at once
        #[argh(option)]
        pub revoke: Option<String>,
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
    if let Some(name) = &args.revoke {
        crate::flags::plan::validate_name("invitation", name)?;
    }
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
    if let Some(name) = &args.revoke {
        let text = withdraw(&conn, name).await?;
        crate::invitation::server::tidy_all(&conn, &mut progress).await;
        return output.print(|| json!({"withdrawn": name}), &text);
    }
    let invitations = server::list(&conn).await?;
    let now = SystemTime::now();
    match server::tidy(&conn, &invitations, now).await {
        Ok(done) => done.iter().for_each(|line| progress.detail(line)),
        Err(e) => progress.detail(&format!("invitations not tidied: {e}")),
    }
    let waiting = waiting_requesters(&conn).await;
    let rows: Vec<(&Invitation, State)> = invitations
        .iter()
        .filter(|i| !i.stale(now))
        .map(|i| (i, i.state(now, waiting.contains(&i.requester()))))
        .collect();
    let value = || {
        let items: Vec<Value> = rows
            .iter()
            .map(|(i, s)| crate::invitation::invitation_value(i, *s))
            .collect();
        json!({ "invitations": items })
    };
    if rows.is_empty() && output.format.is_none() {
        progress.step("No invitations. Make one with: kubectl onboard invite USER");
        return Ok(());
    }
    output.print(value, &table(&rows))
}

/// Withdraws invitation `name`: recorded as withdrawn, its credential deleted.
async fn withdraw(conn: &Connection, name: &str) -> Result<String> {
    let (invitation, version) = server::get(conn, name).await?.ok_or_else(|| {
        Error::failed(format!(
            "there is no invitation {name}; kubectl onboard invitations lists them"
        ))
    })?;
    match &invitation.stored {
        Stored::Used { request, .. } => {
            return Err(Error::failed(format!(
                "invitation {name} was used already (request {request}): {} holds a certificate; to take access back: kubectl onboard offboard {} --revoke",
                invitation.user, invitation.user
            )));
        }
        Stored::Withdrawn => {}
        Stored::Open => {
            if !server::set(conn, name, Some(&version), &Stored::Withdrawn).await? {
                return Err(Error::failed(format!(
                    "invitation {name} changed while it was being withdrawn (approved just now?); run again"
                )));
            }
        }
    }
    server::delete_credential(conn, name).await?;
    let mut text = format!(
        "Withdrew invitation {name} for {}: its token stops working within seconds (the API server caches it for about {}s), and every request made with it meanwhile is denied.\n",
        invitation.identity(),
        TOKEN_CACHE.as_secs()
    );
    // Requests made with it would still pass a plain kubectl certificate approve; and until
    // the API server forgets the token, it can still make new ones.
    let withdrawn = Invitation {
        stored: Stored::Withdrawn,
        ..invitation
    };
    let until = tokio::time::Instant::now() + TOKEN_CACHE;
    loop {
        for line in server::deny_made_with(conn, &[&withdrawn], SystemTime::now()).await? {
            text += &line;
            text += "\n";
        }
        if tokio::time::Instant::now() >= until {
            return Ok(text);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long the API server may go on taking a deleted ServiceAccount's token (FACTS: about
/// 10 s on our control plane, its token review cache), with a margin.
const TOKEN_CACHE: Duration = Duration::from_secs(12);

/// The requesters of the requests that wait for a decision (empty if they cannot be listed:
/// then nothing shows as requested).
async fn waiting_requesters(conn: &Connection) -> HashSet<String> {
    match crate::csr::queue::pending(conn).await {
        Ok(pending) => pending.into_iter().filter_map(|r| r.requester).collect(),
        Err(_) => HashSet::new(),
    }
}

fn table(rows: &[(&Invitation, State)]) -> String {
    let header = [
        "NAME", "USER", "GROUPS", "GRANTS", "CREATED", "EXPIRES", "STATE",
    ];
    let mut lines = vec![header.map(String::from).to_vec()];
    for (i, state) in rows {
        lines.push(vec![
            i.name.clone(),
            i.user.clone(),
            match i.groups.is_empty() {
                true => "-".into(),
                false => i.groups.join(","),
            },
            i.grants_text(),
            i.created.clone(),
            i.expires.clone(),
            state.as_str().into(),
        ]);
    }
    crate::ui::report::table(&lines)
}
