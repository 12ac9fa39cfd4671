//! What every command that talks to the cluster starts from: the kubeconfig files kubectl
//! reads, the cluster of the context in use, a connection, and what the caller may do.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::access::{self, Permissions};
use crate::cluster::rbac::Grant;
use crate::cluster::{self, Connection};
use crate::duration::format_duration;
use crate::error::{Kind, Result};
use crate::kubeconfig::{self, Loaded, Target};
use crate::signals::Signals;
use crate::ui::progress::Progress;

/// The kubeconfig side, read before anything is sent.
pub struct Local {
    pub loaded: Loaded,
    pub target: Target,
}

impl Local {
    pub fn load(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        progress: &mut Progress,
    ) -> Result<Local> {
        let started = Instant::now();
        let loaded = kubeconfig::load(kubeconfig)?;
        let target = loaded.read_target(context)?;
        progress.detail(&format!(
            "kubeconfig: read {}; new entries go to {}",
            display_paths(&loaded.sources.read),
            loaded.sources.destination.display()
        ));
        progress.detail(&format!(
            "context {}: cluster {} at {}",
            target.context.as_deref().unwrap_or_default(),
            target.cluster_name,
            target.server
        ));
        progress.phase("kubeconfig read", started);
        if let Some(warning) = target.insecure_warning() {
            progress.warn(&warning);
        }
        Ok(Local { loaded, target })
    }

    /// Connects and asks the cluster what the caller may do (with `approve`: approve too;
    /// `request`: the request's name when it is fixed).
    /// At most `timeout` (--timeout): a server that stops answering is given up on.
    pub async fn connect(
        self,
        approve: bool,
        grants: &[Grant],
        request: Option<&str>,
        timeout: Duration,
        signals: &mut Signals,
        progress: &mut Progress,
    ) -> Result<Session> {
        let started = Instant::now();
        let conn = signals
            .interruptible(Connection::open(&self.loaded, &self.target))
            .await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let limit = format!("{} (--timeout)", format_duration(timeout));
        let checking = access::check_requester(&conn, approve, grants, request);
        let permissions = signals
            .interruptible(cluster::within(
                deadline,
                &limit,
                "checking your permissions",
                checking,
            ))
            .await
            .map_err(|e| match e.kind {
                Kind::Timeout => e.context("nothing was requested"),
                _ => e,
            })?;
        progress.phase("permission check", started);
        progress.detail(&format!(
            "may watch CSRs: {}; may delete CSRs: {}",
            permissions.watch, permissions.delete
        ));
        Ok(Session {
            local: self,
            conn,
            permissions,
        })
    }
}

/// A connection to the cluster of `context` (or of the current one), for the commands that
/// read and decide about objects there; each checks its own permissions. Every answer is
/// awaited at most `request_timeout` (--request-timeout, [`REQUEST_TIMEOUT`] by default).
pub async fn connection(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    request_timeout: Option<&str>,
    progress: &mut Progress,
) -> Result<Connection> {
    let limit = request_timeout_flag(request_timeout)?;
    let local = Local::load(kubeconfig, context, progress)?;
    Connection::open_bounded(&local.loaded, &local.target, limit).await
}

/// How long a command waits for each answer of the API server, unless --request-timeout says.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `--request-timeout`: more than zero; [`REQUEST_TIMEOUT`] by default.
pub fn request_timeout_flag(text: Option<&str>) -> Result<Duration> {
    let limit = match text {
        Some(t) => crate::duration::parse_duration("--request-timeout", t)?,
        None => return Ok(REQUEST_TIMEOUT),
    };
    if limit.is_zero() {
        return Err(crate::error::Error::usage(
            "--request-timeout must be more than 0s, e.g. 10s or 1m",
        ));
    }
    Ok(limit)
}

pub struct Session {
    pub local: Local,
    pub conn: Connection,
    pub permissions: Permissions,
}

pub fn display_paths(paths: &[impl AsRef<Path>]) -> String {
    if paths.is_empty() {
        return "(none)".into();
    }
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.as_ref().display().to_string())
        .collect();
    names.join(", ")
}
