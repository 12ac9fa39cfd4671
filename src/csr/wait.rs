//! Waiting for the certificate (certify through the CSR API, `issue.rs`). A watch on our one
//! CSR, resumed from the last resourceVersion when it drops (a restarted API server, a closed
//! stream, 410 Gone); GET with backoff only when the caller may not watch. The state is shown
//! as it changes.

use std::cell::RefCell;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::ResourceExt;
use kube::api::{Api, WatchEvent, WatchParams};
use tokio::time::{Instant, sleep_until};

use crate::cluster::Connection;
use crate::error::{Error, Kind, Result};
use crate::flags::plan::format_duration;
use crate::ui::progress::Progress;

/// After this long approved without a certificate, say that no signer seems to run.
const NO_SIGNER_AFTER: Duration = Duration::from_secs(10);
const SPINNER_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Pending,
    Approved,
    Issued(Vec<u8>),
    Denied { reason: String, message: String },
    Failed { reason: String, message: String },
}

/// What the object says, in the order that matters: a certificate beats everything.
pub fn state(csr: &CertificateSigningRequest) -> State {
    let status = csr.status.as_ref();
    if let Some(cert) = status
        .and_then(|s| s.certificate.as_ref())
        .filter(|c| !c.0.is_empty())
    {
        return State::Issued(cert.0.clone());
    }
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let find = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    let text = |c: &k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition| {
        (
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    };
    if let Some(c) = find("Denied") {
        let (reason, message) = text(c);
        return State::Denied { reason, message };
    }
    if let Some(c) = find("Failed") {
        let (reason, message) = text(c);
        return State::Failed { reason, message };
    }
    if find("Approved").is_some() {
        return State::Approved;
    }
    State::Pending
}

pub struct Waiter<'a> {
    pub conn: &'a Connection,
    pub name: &'a str,
    /// When to give up (set before the request was created: --timeout bounds it all).
    pub deadline: Instant,
    /// --timeout, for the message.
    pub timeout: Duration,
    pub may_watch: bool,
    /// We approved it ourselves: no need to say we wait for an administrator.
    pub approved: bool,
}

impl Waiter<'_> {
    /// The PEM certificate, or an error of kind Rejected or Timeout.
    pub async fn until_issued(
        &self,
        created: &CertificateSigningRequest,
        progress: &mut Progress,
    ) -> Result<Vec<u8>> {
        if !self.may_watch {
            progress
                .step("You may not watch CertificateSigningRequests; checking every 2 s instead");
        }
        let deadline = self.deadline;
        let seen = RefCell::new(Seen {
            approved_since: self.approved.then(Instant::now),
            notes: Vec::new(),
        });
        let mut spinner = tokio::time::interval(SPINNER_EVERY);
        let follow = self.follow(created, &seen);
        tokio::pin!(follow);
        let result = loop {
            tokio::select! {
                result = &mut follow => break result,
                _ = sleep_until(deadline) => break Err(self.timed_out(&seen.borrow())),
                _ = spinner.tick() => {
                    for note in seen.borrow_mut().notes.drain(..) {
                        progress.detail(&note);
                    }
                    progress.waiting(&seen.borrow().message(self.name));
                }
            }
        };
        progress.clear();
        for note in seen.borrow_mut().notes.drain(..) {
            progress.detail(&note);
        }
        result
    }

    /// Follows the object until it is issued, denied or failed; never times out by itself.
    async fn follow(
        &self,
        created: &CertificateSigningRequest,
        seen: &RefCell<Seen>,
    ) -> Result<Vec<u8>> {
        let api: Api<CertificateSigningRequest> = Api::all(self.conn.client.clone());
        let update =
            |csr: &CertificateSigningRequest| seen.borrow_mut().update(state(csr), self.name);
        if let Some(done) = update(created)? {
            return Ok(done);
        }
        if !self.may_watch {
            return self.poll(&api, &update).await;
        }
        let note = |what: String| seen.borrow_mut().notes.push(what);
        let mut resource_version = created.resource_version().unwrap_or_default();
        let mut backoff = Backoff::default();
        loop {
            let params = WatchParams::default()
                .fields(&format!("metadata.name={}", self.name))
                .timeout(290);
            let next = match api.watch(&params, &resource_version).await {
                Ok(stream) => {
                    let events = Events {
                        api: &api,
                        update: &update,
                        note: &note,
                    };
                    self.read(events, stream.boxed(), &resource_version, &mut backoff)
                        .await?
                }
                Err(kube::Error::Api(s)) if s.code == 410 => {
                    note(format!(
                        "resourceVersion {resource_version} is gone (410); reading the request afresh"
                    ));
                    self.relist(&api, &update).await?
                }
                Err(e) => {
                    let why = e.to_string();
                    self.transient(e)?;
                    note(format!("cannot watch ({why}); trying again"));
                    backoff.sleep().await;
                    Next::ResumeFrom(resource_version.clone())
                }
            };
            match next {
                Next::Done(pem) => return Ok(pem),
                Next::ResumeFrom(rv) => resource_version = rv,
            }
        }
    }

    /// Without watch permission: reads the request again and again, backing off.
    async fn poll(
        &self,
        api: &Api<CertificateSigningRequest>,
        update: &impl Fn(&CertificateSigningRequest) -> Result<Option<Vec<u8>>>,
    ) -> Result<Vec<u8>> {
        let mut backoff = Backoff::default();
        loop {
            match api.get(self.name).await {
                Ok(csr) => {
                    if let Some(done) = update(&csr)? {
                        return Ok(done);
                    }
                }
                Err(e) => self.transient(e)?,
            }
            backoff.sleep().await;
        }
    }

    /// The events of one watch, until the certificate comes or the watch ends (then: where
    /// to resume it from).
    async fn read(
        &self,
        events: Events<
            '_,
            impl Fn(&CertificateSigningRequest) -> Result<Option<Vec<u8>>>,
            impl Fn(String),
        >,
        mut stream: futures::stream::BoxStream<
            '_,
            kube::Result<WatchEvent<CertificateSigningRequest>>,
        >,
        from: &str,
        backoff: &mut Backoff,
    ) -> Result<Next> {
        let mut resource_version = from.to_string();
        loop {
            match stream.try_next().await {
                Ok(Some(WatchEvent::Added(csr) | WatchEvent::Modified(csr))) => {
                    *backoff = Backoff::default();
                    if let Some(done) = (events.update)(&csr)? {
                        return Ok(Next::Done(done));
                    }
                    if let Some(rv) = csr.resource_version() {
                        resource_version = rv;
                    }
                }
                Ok(Some(WatchEvent::Bookmark(b))) => resource_version = b.metadata.resource_version,
                Ok(Some(WatchEvent::Deleted(_))) => {
                    return Err(Error::failed(format!(
                        "CertificateSigningRequest {} was deleted while we waited (by an administrator or the cluster's cleaner); run again",
                        self.name
                    )));
                }
                Ok(Some(WatchEvent::Error(s))) if s.code == 410 => {
                    return self.relist(events.api, events.update).await;
                }
                Ok(Some(WatchEvent::Error(s))) => {
                    return Err(self.conn.api_error(
                        "watching the CertificateSigningRequest",
                        kube::Error::Api(s),
                    ));
                }
                // The server ended the watch (timeout) or the connection dropped: resume.
                Ok(None) => {
                    (events.note)(format!(
                        "the watch ended; resuming it from resourceVersion {resource_version}"
                    ));
                    return Ok(Next::ResumeFrom(resource_version));
                }
                Err(e) => {
                    let why = e.to_string();
                    self.transient(e)?;
                    (events.note)(format!(
                        "the watch broke ({why}); resuming it from resourceVersion {resource_version}"
                    ));
                    backoff.sleep().await;
                    return Ok(Next::ResumeFrom(resource_version));
                }
            }
        }
    }

    /// After 410 Gone: read the object afresh and watch from its version.
    async fn relist(
        &self,
        api: &Api<CertificateSigningRequest>,
        update: &impl Fn(&CertificateSigningRequest) -> Result<Option<Vec<u8>>>,
    ) -> Result<Next> {
        loop {
            match api.get(self.name).await {
                Ok(csr) => {
                    return Ok(match update(&csr)? {
                        Some(pem) => Next::Done(pem),
                        None => Next::ResumeFrom(csr.resource_version().unwrap_or_default()),
                    });
                }
                Err(e) => {
                    self.transient(e)?;
                    Backoff::default().sleep().await;
                }
            }
        }
    }

    /// Errors worth waiting out (the API server restarting, a dropped connection) pass;
    /// the others end the wait.
    fn transient(&self, e: kube::Error) -> Result<()> {
        match &e {
            kube::Error::Api(s) if s.code == 404 => Err(Error::failed(format!(
                "CertificateSigningRequest {} is gone (deleted by an administrator or the cluster's cleaner); run again",
                self.name
            ))),
            kube::Error::Api(s) if matches!(s.code, 401 | 403) => {
                Err(self.conn.api_error("waiting for the certificate", e))
            }
            kube::Error::Api(s) if s.code >= 400 && s.code < 500 && s.code != 429 => {
                Err(self.conn.api_error("waiting for the certificate", e))
            }
            _ => Ok(()),
        }
    }

    fn timed_out(&self, seen: &Seen) -> Error {
        let name = self.name;
        let waited = format_duration(self.timeout);
        let message = match seen.approved_since {
            Some(_) => format!(
                "CertificateSigningRequest {name} was approved but no certificate was issued within {waited}: {}",
                crate::csr::hint::no_signer(&self.conn.server)
            ),
            None => format!(
                "no one approved CertificateSigningRequest {name} within {waited}: ask an administrator to run 'kubectl certificate approve {name}', then run again (or wait longer with --timeout)"
            ),
        };
        Error::new(Kind::Timeout, message)
    }
}

enum Next {
    Done(Vec<u8>),
    ResumeFrom(String),
}

/// What reading a watch's events needs: the API to read afresh after a 410, what to do with
/// each state of the request, and where to note what happened to the watch (`-v`).
struct Events<'a, U, N> {
    api: &'a Api<CertificateSigningRequest>,
    update: &'a U,
    note: &'a N,
}

/// What the wait has seen so far.
#[derive(Default)]
struct Seen {
    approved_since: Option<Instant>,
    /// What happened to the watch since the last look (shown with -v).
    notes: Vec<String>,
}

impl Seen {
    /// `Some(certificate)` when done; an error when denied or failed.
    fn update(&mut self, state: State, name: &str) -> Result<Option<Vec<u8>>> {
        match state {
            State::Issued(pem) => Ok(Some(pem)),
            State::Approved => {
                self.approved_since.get_or_insert_with(Instant::now);
                Ok(None)
            }
            State::Pending => Ok(None),
            State::Denied { reason, message } => Err(Error::new(
                Kind::Rejected,
                format!(
                    "CertificateSigningRequest {name} was denied: {}; ask the administrator who denied it before requesting again",
                    because(&reason, &message)
                ),
            )),
            State::Failed { reason, message } => Err(Error::new(
                Kind::Rejected,
                format!(
                    "the signer failed CertificateSigningRequest {name}: {}; an administrator can see why in kube-controller-manager's log, then run again",
                    because(&reason, &message)
                ),
            )),
        }
    }

    fn message(&self, name: &str) -> String {
        match self.approved_since {
            None => format!("waiting for approval; an administrator can run: kubectl onboard approve {name}"),
            Some(since) if since.elapsed() < NO_SIGNER_AFTER => "approved; waiting for the signer".into(),
            Some(_) => "approved, but no certificate yet: no signer for kubernetes.io/kube-apiserver-client seems to run (as on some managed clusters)".into(),
        }
    }
}

fn because(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (true, true) => "no reason given".into(),
        (false, true) => reason.into(),
        (true, false) => message.into(),
        (false, false) => format!("{reason}: {message}"),
    }
}

/// 250 ms, doubling to 2 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(250))
    }
}

impl Backoff {
    async fn sleep(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };

    fn csr(conditions: &[(&str, &str)], cert: Option<&str>) -> CertificateSigningRequest {
        CertificateSigningRequest {
            status: Some(CertificateSigningRequestStatus {
                certificate: cert.map(|c| ByteString(c.as_bytes().to_vec())),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            reason: Some("R".into()),
                            message: Some("M".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn states() {
        assert_eq!(state(&CertificateSigningRequest::default()), State::Pending);
        assert_eq!(state(&csr(&[("Approved", "True")], None)), State::Approved);
        assert_eq!(state(&csr(&[("Approved", "False")], None)), State::Pending);
        assert_eq!(
            state(&csr(&[("Approved", "True")], Some("PEM"))),
            State::Issued(b"PEM".to_vec())
        );
        assert_eq!(
            state(&csr(&[("Approved", "True"), ("Failed", "True")], None)),
            State::Failed {
                reason: "R".into(),
                message: "M".into()
            }
        );
        assert_eq!(
            state(&csr(&[("Denied", "True")], None)),
            State::Denied {
                reason: "R".into(),
                message: "M".into()
            }
        );
    }

    #[test]
    fn denial_is_a_rejection_with_reason_and_message() {
        let err = Seen::default()
            .update(
                State::Denied {
                    reason: "Nope".into(),
                    message: "not you".into(),
                },
                "jane-x",
            )
            .unwrap_err();
        assert_eq!(err.kind, Kind::Rejected);
        assert_eq!(
            err.to_string(),
            "CertificateSigningRequest jane-x was denied: Nope: not you; ask the administrator who denied it before requesting again"
        );
    }
}
