//! Record: every certificate issued is written into the cluster's inventory
//! ([`crate::records::inventory`]) by whoever takes part and may write it: the requester or approver of a
//! request, or, offline, the administrator of a kubeconfig context for the same server. It never
//! makes onboarding fail: what cannot be recorded is said in one line, and `--no-record` skips it.

use std::time::{Duration, Instant};

use crate::cluster::Connection;
use crate::duration::format_duration;
use crate::kubeconfig::Loaded;
use crate::kubeconfig::edit::{Section, names};
use crate::pki::verify::Verified;
use crate::records::inventory::{self, How, Record};
use crate::ui::progress::Progress;

/// How long the inventory write may take before it is left undone.
const INVENTORY_WAIT: Duration = Duration::from_secs(10);

/// The line that says a certificate was not recorded, and why.
pub fn not_recorded(why: &str) -> String {
    format!("Not recorded in the cluster's certificate inventory: {why} (--no-record skips it)")
}

/// Writes `made` (its certificate `pem`) through `conn`, bounded by [`INVENTORY_WAIT`].
pub async fn write(conn: &Connection, made: &Record, pem: &str, progress: &mut Progress) {
    let started = Instant::now();
    match tokio::time::timeout(
        INVENTORY_WAIT,
        inventory::record(conn, made, pem, inventory::Writer::Issuer),
    )
    .await
    {
        Ok(Ok(())) => progress.detail(&format!(
            "inventory: recorded as {}/{}",
            inventory::NAMESPACE,
            made.object_name()
        )),
        Ok(Err(why)) => progress.step(&not_recorded(&why)),
        Err(_) => progress.step(&not_recorded(&format!(
            "no answer within {}",
            format_duration(INVENTORY_WAIT)
        ))),
    }
    progress.phase("inventory", started);
}

/// The record of `verified`, or the line that says it cannot be made.
pub fn of(
    verified: &Verified,
    how: How,
    csr: Option<&str>,
    requester: Option<&str>,
    approver: Option<&str>,
    progress: &mut Progress,
) -> Option<Record> {
    let made = Record::of(verified, how, csr, requester, approver);
    if made.is_none() {
        progress.step(&not_recorded("the certificate cannot be read back"));
    }
    made
}

/// Offline signing (`--ca-key`): who records, as the user of the first context of the
/// kubeconfig (the current one first) whose cluster is at the server signed for.
pub struct Recorder {
    conn: Connection,
    /// That user, as the cluster names them: the signer and approver of what is recorded.
    signer: Option<String>,
}

impl Recorder {
    /// The recorder for `server`, when the server can be reached and a context is for it;
    /// otherwise the line that says why nothing will be recorded.
    pub async fn offline(loaded: &Loaded, server: &str) -> std::result::Result<Recorder, String> {
        if !super::prove::reachable(server).await {
            return Err(not_recorded(&format!(
                "cannot reach the API server at {server}"
            )));
        }
        let conn = administrator_of(loaded, server)
            .await
            .map_err(|why| not_recorded(&why))?;
        let signer = inventory::caller(&conn).await;
        Ok(Recorder { conn, signer })
    }

    /// Records `verified`, signed here.
    pub async fn record(&self, verified: &Verified, progress: &mut Progress) {
        let signer = self.signer.as_deref();
        if let Some(made) = of(verified, How::Offline, None, signer, signer, progress) {
            write(&self.conn, &made, &verified.pem, progress).await;
        }
    }
}

/// A connection as the user of the first context for `server`, or why there is none.
async fn administrator_of(
    loaded: &Loaded,
    server: &str,
) -> std::result::Result<Connection, String> {
    let current = loaded.merged.current_context().map(|(_, c)| c.to_string());
    let contexts = current.into_iter().chain(
        loaded
            .merged
            .documents
            .iter()
            .flat_map(|doc| names(&doc.value, Section::Contexts)),
    );
    let target = contexts
        .filter_map(|context| loaded.read_target(Some(&context)).ok())
        .find(|target| target.server == server)
        .ok_or_else(|| {
            format!("no context in the kubeconfig is for {server}, so nobody here may write it")
        })?;
    let context = target.context.clone().unwrap_or_default();
    match tokio::time::timeout(INVENTORY_WAIT, Connection::open(loaded, &target)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("context {context}: {e}")),
        Err(_) => Err(format!("context {context} did not answer")),
    }
}
