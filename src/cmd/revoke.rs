//! `kubectl onboard revoke USER | --fingerprint SHA256 [--reason TEXT]`, `revoke --list`: blocks
//! every write made with a user's still-valid certificates (from the inventory) or with the one
//! named, through the revocation policy (`records/revocation.rs`), and says what it cannot block: the
//! reads RBAC still grants, and until when the certificate works.

use std::collections::BTreeMap;

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::cluster::{rbac, session};
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::records::revocation::enforcement::{self, Probe, check_enforced};
use crate::records::revocation::targets::{Target, check_named, put_on_list, targets, trusted};
use crate::records::revocation::{self, credential_id};
use crate::ui::report::Output;

flags! {
    /// Refuse every write made with a user's certificates (reads stay as RBAC allows them).
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Jane left: her certificates may write nothing more\n  $ {command_name} jane --reason \"left the team\"",
        example = "One certificate, by its fingerprint:\n  $ {command_name} --fingerprint 3fa2…",
        note = "Kubernetes cannot revoke a certificate. Since 1.31 it names a certificate's user by its SHA-256 (the credential id), and a ValidatingAdmissionPolicy (kubectl-onboard-revocations) refuses creates, updates and deletes made with a revoked one. Reads never reach admission: remove the bindings too (kubectl onboard offboard USER). kubectl onboard unrevoke undoes it."
    )]
    pub struct Args {
        /// the user whose still-valid certificates (from kubectl onboard certificates) to revoke
        #[argh(positional)]
        pub user: Option<String>,
        /// revoke this one certificate: its SHA-256 fingerprint
        #[argh(option)]
        pub fingerprint: Option<String>,
        /// why, shown to the certificate's holder when a write is refused
        #[argh(option)]
        pub reason: Option<String>,
        /// print the revocation list instead, with whether the API server enforces each entry
        #[argh(switch)]
        pub list: bool,
        /// put the policy and its binding back as revoke makes them, and check every entry
        #[argh(switch)]
        pub repair: bool,
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
    if args.list && args.repair {
        return Err(Error::usage("--list or --repair, not both"));
    }
    if args.list || args.repair {
        if args.user.is_some() || args.fingerprint.is_some() {
            return Err(Error::usage(
                "--list and --repair take the whole list: name no user or --fingerprint with them",
            ));
        }
    } else {
        check_named(args.user.as_deref(), args.fingerprint.as_deref(), "revoke")?;
    }
    check_reason(args.reason.as_deref())?;
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
    if args.list {
        return show_list(&conn, &output, &mut progress).await;
    }
    if args.repair {
        return repair(&conn, &output, &mut progress).await;
    }
    let records = trusted(&conn, args.user.as_deref(), &mut progress).await?;
    let targets = targets(
        &records,
        args.user.as_deref(),
        args.fingerprint.as_deref(),
        "revoke",
    )?;
    revocation::supported(&conn).await.map_err(|why| {
        Error::failed(format!(
            "cannot revoke on this cluster: {why}; nothing was blocked"
        ))
    })?;
    if let Some(own) = revocation::own_fingerprint(&conn).await
        && targets.iter().any(|t| t.fingerprint() == own)
    {
        return Err(Error::failed(format!(
            "{} is the certificate you are using now: revoking it would refuse every write you make with it; nothing was revoked: revoke it with another administrator's credentials (--context)",
            credential_id(&own)
        )));
    }

    put_on_list(&conn, &targets, args.reason.as_deref(), &records).await?;
    let fingerprints: Vec<String> = targets
        .iter()
        .map(|t| t.fingerprint().to_string())
        .collect();
    check_enforced(&conn, &fingerprints, true, &mut progress).await?;

    let (text, still) = report(&conn, &targets).await?;
    let value = || {
        let revoked: Vec<Value> = targets
            .iter()
            .map(|t| json!({"credentialId": credential_id(t.fingerprint())}))
            .collect();
        json!({"revoked": revoked, "readsStillGrantedBy": still, "policy": revocation::POLICY})
    };
    output.print(value, &text)
}

/// `revoke --list`: the list, with whether the API server enforces each entry.
async fn show_list(
    conn: &crate::cluster::Connection,
    output: &Output,
    progress: &mut crate::ui::progress::Progress,
) -> Result<()> {
    let entries = revocation::list(conn).await?;
    enforcement::warn_if_broken(conn, entries.len(), progress).await;
    let enforced = enforced(conn, &entries).await;
    let value = || {
        let ids: BTreeMap<String, &String> = entries
            .iter()
            .map(|(hex, m)| (credential_id(hex), m))
            .collect();
        let not: Vec<String> = enforced
            .iter()
            .filter(|(_, e)| **e == Probe::Allowed)
            .map(|(hex, _)| credential_id(hex))
            .collect();
        json!({ "revoked": ids, "notEnforced": not })
    };
    output.print(value, &list_text(&entries, &enforced))
}

/// `revoke --repair`: the policy and binding put back as revoke makes them, every entry checked.
async fn repair(
    conn: &crate::cluster::Connection,
    output: &Output,
    progress: &mut crate::ui::progress::Progress,
) -> Result<()> {
    revocation::update(conn, &BTreeMap::new(), &[]).await?;
    let entries = revocation::list(conn).await?;
    let fingerprints: Vec<String> = entries.keys().cloned().collect();
    check_enforced(conn, &fingerprints, true, progress).await?;
    let text = format!(
        "The revocation policy and binding are as revoke makes them; {} revoked certificate(s) are refused.\n",
        entries.len()
    );
    output.print(
        || json!({"repaired": true, "revoked": entries.len()}),
        &text,
    )
}

/// The holder's terminal shows the reason (in kubectl's error): one line, printable, short.
fn check_reason(reason: Option<&str>) -> Result<()> {
    let unsafe_char = |c: char| c.is_control() || crate::terminal::is_unsafe(c);
    match reason {
        Some(r) if r.chars().any(unsafe_char) || r.chars().count() > 200 => Err(Error::usage(
            "--reason must be one line of at most 200 printable characters",
        )),
        _ => Ok(()),
    }
}

/// What was revoked, and what it cannot block: the reads RBAC still grants (asked once per
/// user, with all the groups of their certificates), until the certificates stop working.
async fn report(
    conn: &crate::cluster::Connection,
    targets: &[Target],
) -> Result<(String, Vec<String>)> {
    let mut text = String::new();
    let mut groups_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in targets {
        match t {
            Target::Recorded(r) => {
                text += &format!(
                    "Revoked the certificate of {} {} (valid until {}): every write it makes is refused from now on\n",
                    r.user,
                    credential_id(&r.fingerprint),
                    r.not_after
                );
                groups_of
                    .entry(&r.user)
                    .or_default()
                    .extend(r.groups.iter().cloned());
            }
            Target::Unrecorded(hex) => {
                text += &format!(
                    "Revoked {}: every write made with it is refused from now on (not in the inventory: its holder and expiry are unknown here)\n",
                    credential_id(hex)
                );
            }
        }
    }
    let mut still = Vec::new();
    for (user, mut groups) in groups_of {
        groups.sort();
        groups.dedup();
        for grant in rbac::granting(conn, user, &groups).await? {
            if !still.contains(&grant) {
                still.push(grant);
            }
        }
    }
    if !still.is_empty() {
        text += "Not blocked: reads, which never reach admission, as these bindings grant them until the certificate expires (remove them: kubectl onboard offboard USER):\n";
        for grant in &still {
            text += &format!("  {grant}\n");
        }
    }
    Ok((text, still))
}

/// The most entries `revoke --list` asks the API server about (one dry run each).
const MAX_PROBES: usize = 50;

/// What the API server does with each listed certificate's writes (the first [`MAX_PROBES`]).
async fn enforced(
    conn: &crate::cluster::Connection,
    entries: &BTreeMap<String, String>,
) -> BTreeMap<String, Probe> {
    let mut seen = BTreeMap::new();
    for hex in entries.keys().take(MAX_PROBES) {
        let probe = enforcement::probe(conn, hex).await;
        let unknown = matches!(probe, Probe::Unknown(_));
        seen.insert(hex.clone(), probe);
        if unknown {
            break; // the same reason for every other entry
        }
    }
    seen
}

fn list_text(entries: &BTreeMap<String, String>, enforced: &BTreeMap<String, Probe>) -> String {
    if entries.is_empty() {
        return "No certificate is revoked.\n".to_string();
    }
    let mut lines = vec![vec![
        "CREDENTIAL ID".to_string(),
        "ENFORCED".to_string(),
        "MESSAGE".to_string(),
    ]];
    for (id, message) in entries {
        let state = match enforced.get(id) {
            Some(Probe::Refused) => "yes",
            Some(Probe::Allowed) => "NO",
            _ => "unknown",
        };
        lines.push(vec![
            credential_id(id),
            state.to_string(),
            crate::terminal::printable(message).into_owned(),
        ]);
    }
    let mut text = crate::ui::report::table(&lines);
    if enforced.values().any(|p| *p == Probe::Allowed) {
        text += &format!(
            "NO: the API server accepts its writes: {}\n",
            enforcement::ADVICE
        );
    }
    text
}
