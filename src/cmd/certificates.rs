//! `kubectl onboard certificates`: every certificate issued through kubectl onboard, from the
//! cluster's inventory (`records/inventory.rs`), which outlives the CertificateSigningRequests: who holds
//! one, in which groups, until when, and how it was made. `--warn 30d` makes it a check.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::cluster::session;
use crate::duration::format_duration;
use crate::duration::{days_left, warn_window};
use crate::error::Result;
use crate::error::check_due;
use crate::flags::cli::flags;
use crate::records::inventory::{self, Record, State, state};
use crate::records::revocation;
use crate::ui::report::Output;

flags! {
    /// List the certificates issued through kubectl onboard, from the cluster's inventory.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Every valid certificate, and jane's:\n  $ {command_name}\n  $ {command_name} jane",
        example = "Which expire within a month? (exit 5 if any)\n  $ {command_name} --warn 30d",
        note = "Recorded by every kubectl onboard that has a certificate issued through the cluster, in ConfigMaps of namespace kubectl-onboard (--no-record skips it). Expired certificates are shown with --all.",
        error_code(5, "--warn: a certificate shown expires within the window or has expired.")
    )]
    pub struct Args {
        /// only this user's certificates
        #[argh(positional)]
        pub user: Option<String>,
        /// show expired certificates too
        #[argh(switch)]
        pub all: bool,
        /// mark certificates that expire within this long, e.g. 30d, and exit 5 if there are any
        #[argh(option)]
        pub warn: Option<String>,
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
    if let Some(user) = &args.user {
        crate::flags::plan::validate_name("user", user)?;
    }
    let warn = warn_window(args.warn.as_deref())?;
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);
    let conn = session::connection(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        args.request_timeout.as_deref(),
        &mut progress,
    )
    .await?;
    let now = SystemTime::now();
    let (all, untrusted) = inventory_now(&conn, now, &mut progress).await?;
    progress.detail(&format!(
        "inventory: {} certificates recorded in namespace {}",
        all.len(),
        inventory::NAMESPACE
    ));
    let shown = select(all, args.user.as_deref(), args.all, now);
    for r in &shown {
        if let Some(why) = untrusted.get(&r.fingerprint) {
            progress.warn(&format!(
                "the record {}/{} names {} but cannot be trusted: {why}; it may be forged: look at it, and delete it (kubectl -n {} delete configmap {})",
                inventory::NAMESPACE,
                r.object_name(),
                crate::terminal::printable(&r.user),
                inventory::NAMESPACE,
                r.object_name()
            ));
        }
    }
    // Revoked ones are marked (a list we may not read marks none).
    let revoked: HashSet<String> = match revocation::list(&conn).await {
        Ok(list) => {
            let marked = shown.iter().filter(|r| list.contains_key(&r.fingerprint));
            revocation::enforcement::warn_if_broken(&conn, marked.count(), &mut progress).await;
            list.into_keys().collect()
        }
        Err(e) => {
            progress.detail(&format!("revocation list not read: {e}"));
            HashSet::new()
        }
    };
    // Expired first (it works for nobody), then untrusted (never shown as working).
    let label = |r: &Record| match label(r, now, warn, &revoked) {
        "expired" => "expired",
        _ if untrusted.contains_key(&r.fingerprint) => "untrusted",
        other => other,
    };
    output.print(
        || to_value(&shown, now, &label, &untrusted),
        &table(&shown, now, &label),
    )?;
    if let Some(window) = warn {
        let due: Vec<&str> = shown
            .iter()
            .filter(|r| {
                state(r, now, Some(window)) != State::Valid
                    && !revoked.contains(&r.fingerprint)
                    && !untrusted.contains_key(&r.fingerprint)
            })
            .map(|r| r.user.as_str())
            .collect();
        check_due(&due, shown.len(), args.warn.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// The inventory as it stands at `now`, after recording the issued requests it lacks (approved
/// with plain kubectl, or for a requester who could not record them: recorded first, while the
/// cluster still has them) and pruning the records past retention; with the records that do not
/// hold together (fingerprint → why), which are shown as such, never as certificates that work.
async fn inventory_now(
    conn: &crate::cluster::Connection,
    now: SystemTime,
    progress: &mut crate::ui::progress::Progress,
) -> Result<(Vec<Record>, HashMap<String, String>)> {
    let mut checked = list_checked(conn, progress).await?;
    let known: HashSet<String> = checked
        .iter()
        .filter(|c| c.problem.is_none())
        .map(|c| c.record.fingerprint.clone())
        .collect();
    match inventory::sweep(conn, None, Some(&known)).await {
        Ok(swept) => {
            for line in &swept.mismatched {
                progress.warn(line);
            }
            if swept.added > 0 {
                progress.detail(&format!(
                    "inventory: recorded {} certificates of issued requests it lacked",
                    swept.added
                ));
                checked = list_checked(conn, progress).await?;
            }
        }
        Err(why) => progress.detail(&format!("inventory: issued requests not looked at: {why}")),
    }
    let untrusted: HashMap<String, String> = checked
        .iter()
        .filter_map(|c| Some((c.record.fingerprint.clone(), c.problem.clone()?)))
        .collect();
    let mut all: Vec<Record> = checked.into_iter().map(|c| c.record).collect();
    let stale = inventory::stale(&all, now);
    if !stale.is_empty() {
        match inventory::prune(conn, &stale).await {
            Ok(n) => {
                progress.detail(&format!(
                    "inventory: pruned {n} records of certificates expired over {} ago",
                    format_duration(inventory::RETENTION)
                ));
                let gone: HashSet<String> = stale.iter().map(|r| r.fingerprint.clone()).collect();
                all.retain(|r| !gone.contains(&r.fingerprint));
            }
            Err(why) => progress.detail(&format!("inventory: not pruned: {why}")),
        }
    }
    Ok((all, untrusted))
}

/// The inventory, each record checked ([`inventory::check`]); why the issuer was not checked
/// is said with -v.
async fn list_checked(
    conn: &crate::cluster::Connection,
    progress: &mut crate::ui::progress::Progress,
) -> Result<Vec<inventory::Checked>> {
    let (checked, unchecked) = inventory::list_checked(conn).await?;
    if let Some(why) = unchecked {
        progress.detail(&format!(
            "inventory: records checked against themselves, not against the cluster's client CA: {why}"
        ));
    }
    Ok(checked)
}

/// The records to show, by user and then by end: `user`'s only, if given; expired ones only with
/// `all`.
pub fn select(records: Vec<Record>, user: Option<&str>, all: bool, now: SystemTime) -> Vec<Record> {
    let mut shown: Vec<Record> = records
        .into_iter()
        .filter(|r| user.is_none_or(|u| r.user == u))
        .filter(|r| all || state(r, now, None) != State::Expired)
        .collect();
    shown.sort_by(|a, b| a.user.cmp(&b.user).then(a.not_after.cmp(&b.not_after)));
    shown
}

/// What the STATE column says: `revoked` for a certificate on the revocation list that still
/// works, else its [`State`].
fn label(
    record: &Record,
    now: SystemTime,
    warn: Option<Duration>,
    revoked: &HashSet<String>,
) -> &'static str {
    match state(record, now, warn) {
        State::Expired => State::Expired.as_str(),
        _ if revoked.contains(&record.fingerprint) => "revoked",
        other => other.as_str(),
    }
}

fn to_value(
    records: &[Record],
    now: SystemTime,
    label: &dyn Fn(&Record) -> &'static str,
    untrusted: &HashMap<String, String>,
) -> Value {
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "untrusted": untrusted.get(&r.fingerprint),
                "user": r.user,
                "groups": r.groups,
                "serial": r.serial,
                "fingerprint": r.fingerprint,
                "credentialId": format!("X509SHA256={}", r.fingerprint),
                "notBefore": r.not_before,
                "notAfter": r.not_after,
                "daysLeft": r.not_after_time().map(|end| days_left(end, now)),
                "state": label(r),
                "key": r.key,
                "how": r.how,
                "requester": r.requester,
                "approver": r.approver,
                "csr": r.csr,
            })
        })
        .collect();
    json!({ "certificates": items })
}

fn table(records: &[Record], now: SystemTime, label: &dyn Fn(&Record) -> &'static str) -> String {
    if records.is_empty() {
        return format!(
            "No certificates in the cluster's inventory (namespace {}) to show.\n",
            inventory::NAMESPACE
        );
    }
    let header = [
        "USER",
        "GROUPS",
        "FINGERPRINT",
        "NOT AFTER",
        "DAYS LEFT",
        "STATE",
        "HOW",
        "APPROVED BY",
    ]
    .map(String::from);
    let mut lines = vec![header.to_vec()];
    let dash = |s: &str| match s.is_empty() {
        true => "-".to_string(),
        false => crate::terminal::printable(s).into_owned(),
    };
    for r in records {
        lines.push(vec![
            dash(&r.user),
            dash(&r.groups.join(",")),
            r.fingerprint.chars().take(16).collect(),
            dash(&r.not_after),
            r.not_after_time()
                .map_or("-".to_string(), |end| days_left(end, now).to_string()),
            label(r).to_string(),
            dash(&r.how),
            dash(r.approver.as_deref().unwrap_or_default()),
        ]);
    }
    crate::ui::report::table(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, not_after: &str) -> Record {
        Record {
            user: user.into(),
            groups: vec!["dev".into()],
            serial: "01".into(),
            fingerprint: "ab".repeat(32),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: not_after.into(),
            key: "RSA-2048".into(),
            requester: None,
            approver: Some("admin".into()),
            how: "admin".into(),
            csr: None,
        }
    }

    #[test]
    fn expired_ones_are_hidden_unless_all_and_a_user_narrows_the_list() {
        let now = "2026-12-02T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .into();
        let records = vec![
            record("jane", "2027-06-01T00:00:00Z"),
            record("bob", "2026-12-01T00:00:00Z"),
            record("amy", "2026-12-20T00:00:00Z"),
        ];
        let users = |v: Vec<Record>| v.into_iter().map(|r| r.user).collect::<Vec<_>>();
        assert_eq!(
            users(select(records.clone(), None, false, now)),
            ["amy", "jane"]
        );
        assert_eq!(
            users(select(records.clone(), None, true, now)),
            ["amy", "bob", "jane"]
        );
        assert_eq!(
            users(select(records.clone(), Some("jane"), false, now)),
            ["jane"]
        );
        let month = Some(Duration::from_secs(30 * 86_400));
        assert_eq!(state(&records[2], now, month), State::Expiring);
        assert_eq!(state(&records[0], now, month), State::Valid);
        assert_eq!(state(&records[1], now, None), State::Expired);
    }
}
