//! The certificates a revocation command names: a user's still-valid ones from the inventory,
//! or one by fingerprint; only records that hold together are taken. And the list's changes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::credential_id;
use crate::cluster::Connection;
use crate::error::{Error, Result};
use crate::records::inventory::{self, Record, State, state};
use crate::ui::progress::Progress;

/// The certificates a command names among `records` (the trusted ones, [`trusted`]): a user's
/// still-valid ones, or one by fingerprint (recorded or not).
pub fn targets(
    records: &[Record],
    user: Option<&str>,
    fingerprint: Option<&str>,
    verb: &str,
) -> Result<Vec<Target>> {
    let now = SystemTime::now();
    match (user, fingerprint) {
        (Some(user), None) => {
            let found: Vec<Target> = records
                .iter()
                .filter(|r| r.user == user && state(r, now, None) != State::Expired)
                .map(|r| Target::Recorded(Box::new(r.clone())))
                .collect();
            if found.is_empty() {
                return Err(Error::failed(format!(
                    "no still-valid certificate of {user} in the inventory that can be trusted (kubectl onboard certificates {user} --all); name one with --fingerprint to {verb} it"
                )));
            }
            Ok(found)
        }
        (None, Some(given)) => {
            let hex = super::fingerprint_arg(given)?;
            Ok(vec![match records.iter().find(|r| r.fingerprint == hex) {
                Some(r) => Target::Recorded(Box::new(r.clone())),
                None => Target::Unrecorded(hex),
            }])
        }
        _ => Err(Error::usage(format!(
            "name a user or --fingerprint (one of them): kubectl onboard {verb} USER, or kubectl onboard {verb} --fingerprint SHA256"
        ))),
    }
}

/// A certificate to revoke or unrevoke.
pub enum Target {
    Recorded(Box<Record>),
    /// Not in the inventory: only its fingerprint is known.
    Unrecorded(String),
}

impl Target {
    pub fn fingerprint(&self) -> &str {
        match self {
            Target::Recorded(r) => &r.fingerprint,
            Target::Unrecorded(hex) => hex,
        }
    }
}

/// What a command line names, checked before anything is sent: a user or a fingerprint.
pub fn check_named(user: Option<&str>, fingerprint: Option<&str>, verb: &str) -> Result<()> {
    if user.is_some() == fingerprint.is_some() {
        return Err(Error::usage(format!(
            "name a user or --fingerprint (one of them): kubectl onboard {verb} USER, or kubectl onboard {verb} --fingerprint SHA256"
        )));
    }
    if let Some(given) = fingerprint {
        super::fingerprint_arg(given)?;
    }
    if let Some(user) = user {
        crate::flags::plan::validate_name("user", user)?;
    }
    Ok(())
}

/// Adds `targets` to the revocation list (dropping the entries `records`, the trusted ones, say
/// expired) and puts the policy in place.
pub async fn put_on_list(
    conn: &Connection,
    targets: &[Target],
    reason: Option<&str>,
    records: &[Record],
) -> Result<()> {
    let mut entries = BTreeMap::new();
    for t in targets {
        let text = match t {
            Target::Recorded(r) => super::message(&r.user, &r.not_after, reason),
            Target::Unrecorded(hex) => super::message(&credential_id(hex), "its expiry", reason),
        };
        entries.insert(t.fingerprint().to_string(), text);
    }
    let expired = expired_entries(&super::list(conn).await?, records);
    super::update(conn, &entries, &expired).await
}

/// The inventory's records that hold together ([`inventory::check`]), read once: only they are
/// revoked from, and only they may say a certificate expired (anyone who may record can forge
/// one naming any user and fingerprint). Those left out that name `user` (any, without one)
/// are said in `progress`.
pub async fn trusted(
    conn: &Connection,
    user: Option<&str>,
    progress: &mut Progress,
) -> Result<Vec<Record>> {
    let (checked, unchecked) = inventory::list_checked(conn).await?;
    if let Some(why) = unchecked {
        progress.detail(&format!(
            "inventory: records checked against themselves, not against the cluster's client CA: {why}"
        ));
    }
    let mut records = Vec::with_capacity(checked.len());
    for c in checked {
        match &c.problem {
            None => records.push(c.record),
            Some(why) if user.is_none_or(|u| c.record.user == u) => progress.warn(&format!(
                "not taking the record {}/{} (it names {}): it cannot be trusted: {why}",
                inventory::NAMESPACE,
                c.record.object_name(),
                crate::terminal::printable(&c.record.user)
            )),
            Some(_) => {}
        }
    }
    Ok(records)
}

/// The entries of the list whose certificate the inventory knows to have expired: an expired
/// certificate cannot authenticate, so there is nothing left to refuse.
pub fn expired_entries(entries: &BTreeMap<String, String>, records: &[Record]) -> Vec<String> {
    let now = SystemTime::now();
    records
        .iter()
        .filter(|r| state(r, now, None) == State::Expired && entries.contains_key(&r.fingerprint))
        .map(|r| r.fingerprint.clone())
        .collect()
}
