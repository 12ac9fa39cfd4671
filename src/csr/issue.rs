//! Steps 3 to 6 for one request object: create it, approve it (or wait for an administrator),
//! wait for the certificate and check it. The object is deleted when done (unless --keep-csr)
//! and withdrawn when anything fails or the user interrupts; the error then says what became
//! of it. Used by every command that gets a certificate from the cluster.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;

use crate::cluster;
use crate::cluster::session::Session;
use crate::csr::submit::{self, CreateFailed, Request};
use crate::csr::wait::Waiter;
use crate::duration::format_duration;
use crate::error::{Error, Kind, Result};
use crate::pki::verify::{self, Verified};
use crate::signals::Signals;
use crate::ui::progress::Progress;

/// How long cleanup waits for the server to answer one call.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);
/// How often, and how far apart, an unanswered create is looked for by name.
const LANDING_CHECKS: u32 = 5;
const LANDING_PAUSE: Duration = Duration::from_millis(400);

pub struct Options {
    pub approve: bool,
    pub timeout: Duration,
    pub keep_csr: bool,
    /// The request's name when it is fixed (an invitation's); `None`: `<user>-<random>`. A
    /// request left by an earlier attempt under that name is replaced while it is undecided.
    pub name: Option<String>,
    /// Leave the request once issued (still withdrawn on any failure): the approver records
    /// the certificate from it (an invitation's request; the cleaner removes it within the hour).
    pub keep_issued: bool,
}

pub struct Issued {
    pub verified: Verified,
    pub csr_name: String,
    /// Who the API server says created the request (its spec.username).
    pub requester: Option<String>,
}

/// Gets a checked certificate for `request`, whose key has the SubjectPublicKeyInfo
/// `public_key_der`, in `groups`.
pub async fn issue(
    session: &Session,
    request: &Request<'_>,
    groups: &[String],
    public_key_der: &[u8],
    options: &Options,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<Issued> {
    let name = match &options.name {
        Some(fixed) => fixed.clone(),
        None => submit::object_name(request.user, &submit::random_suffix()),
    };
    let object = Object {
        session,
        name: &name,
        options,
        sent: Cell::new(Sent::No),
        uid: std::cell::RefCell::new(None),
    };
    let outcome = signals
        .interruptible(object.obtain(request, groups, public_key_der, progress))
        .await;
    let started = Instant::now();
    let withdrawn = object.clean_up(&outcome, progress).await;
    progress.phase("csr cleanup", started);
    let (verified, requester) = outcome.map_err(|e| withdrawn.explain(e))?;
    Ok(Issued {
        verified,
        csr_name: name,
        requester,
    })
}

/// How far the create request got: what there may be to clean up.
#[derive(Clone, Copy, PartialEq)]
enum Sent {
    No,
    InFlight,
    Created,
}

struct Object<'a> {
    session: &'a Session,
    name: &'a str,
    options: &'a Options,
    sent: Cell<Sent>,
    /// The created object's uid: cleanup deletes that object only.
    uid: std::cell::RefCell<Option<String>>,
}

impl Object<'_> {
    async fn obtain(
        &self,
        request: &Request<'_>,
        groups: &[String],
        public_key_der: &[u8],
        progress: &mut Progress,
    ) -> Result<(Verified, Option<String>)> {
        let conn = &self.session.conn;
        progress.detail(&format!(
            "request: signer {}, usages {:?}, expirationSeconds {}",
            submit::SIGNER,
            submit::usages(request.rsa),
            request
                .duration
                .map_or("(cluster default)".to_string(), |d| d.as_secs().to_string())
        ));
        // --timeout bounds every call from here on: a server that stops answering mid-request
        // is given up on like one that never approves.
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let started = Instant::now();
        let created = self.create(request, deadline).await?;
        progress.phase("create", started);
        progress.step(&format!("Created CertificateSigningRequest {}", self.name));
        if self.options.approve {
            let started = Instant::now();
            // We created it: the server's spec.username is us.
            let us = created.spec.username.as_deref();
            let approving = submit::approve(conn, &created, us);
            self.before(deadline, "approving it", approving).await?;
            progress.phase("approve", started);
            progress.step(&format!("Approved {}", self.name));
        }
        let waiter = Waiter {
            conn,
            name: self.name,
            deadline,
            timeout: self.options.timeout,
            may_watch: self.session.permissions.watch,
            approved: self.options.approve,
        };
        let started = Instant::now();
        let issued = waiter.until_issued(&created, progress).await?;
        progress.phase("wait for certificate", started);
        let started = Instant::now();
        let verified = verify::certificate(
            &issued,
            &verify::Expected {
                user: request.user,
                groups,
                public_key_der,
                duration: request.duration,
                ca_pem: self.session.local.target.ca_pem.as_deref(),
                now: SystemTime::now(),
            },
        )?;
        progress.phase("verify", started);
        progress.detail(&format!(
            "certificate: CN={} O={:?}, valid {} to {}",
            verified.info.common_name.as_deref().unwrap_or(""),
            verified.info.organizations,
            verify::rfc3339(verified.info.not_before),
            verify::rfc3339(verified.info.not_after)
        ));
        progress.step(&format!(
            "Certificate issued, valid until {}",
            verify::rfc3339(verified.info.not_after)
        ));
        for note in &verified.notes {
            progress.step(note);
        }
        for warning in &verified.warnings {
            progress.warn(warning);
        }
        Ok((verified, created.spec.username.clone()))
    }

    /// Creates the object, under the deadline. Refused by the server, there is nothing to clean
    /// up; unanswered, there may be (see `landed`).
    async fn create(
        &self,
        request: &Request<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<CertificateSigningRequest> {
        let conn = &self.session.conn;
        if self.options.name.is_some() {
            self.before(
                deadline,
                "replacing an earlier request",
                self.replace_earlier(),
            )
            .await?;
        }
        self.sent.set(Sent::InFlight);
        let creating = async {
            submit::create(conn, self.name, request)
                .await
                .map_err(|e| match e {
                    CreateFailed::Refused(e) => {
                        self.sent.set(Sent::No); // the server said no: nothing to clean up
                        e
                    }
                    CreateFailed::Unanswered(e) => e,
                })
        };
        let created = self.before(deadline, "creating it", creating).await?;
        self.sent.set(Sent::Created);
        *self.uid.borrow_mut() = created.metadata.uid.clone();
        Ok(created)
    }

    /// A request of the fixed name left by an earlier attempt (interrupted, timed out) is
    /// deleted while undecided: its key is gone with that attempt. One approved already cannot
    /// be taken back: that is an error.
    async fn replace_earlier(&self) -> Result<()> {
        let conn = &self.session.conn;
        let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
        let doing = format!("reading CertificateSigningRequest {}", self.name);
        let Some(earlier) = api
            .get_opt(self.name)
            .await
            .map_err(|e| conn.api_error(&doing, e))?
        else {
            return Ok(());
        };
        use crate::csr::wait::State;
        match crate::csr::wait::state(&earlier) {
            State::Approved | State::Issued(_) => Err(Error::failed(format!(
                "CertificateSigningRequest {} was approved already, for a key an earlier attempt made and did not keep; ask for a new invitation",
                self.name
            ))),
            State::Pending | State::Denied { .. } | State::Failed { .. } => {
                let doing = format!(
                    "deleting the earlier CertificateSigningRequest {}",
                    self.name
                );
                let uid = earlier.metadata.uid.as_deref();
                submit::delete(conn, self.name, uid)
                    .await
                    .map_err(|e| conn.api_error(&doing, e))
            }
        }
    }

    /// `call` before `deadline` (set from --timeout when the request was made).
    async fn before<T>(
        &self,
        deadline: tokio::time::Instant,
        doing: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = format!("{} (--timeout)", format_duration(self.options.timeout));
        cluster::within(deadline, &limit, doing, call).await
    }

    /// Deletes the request object unless --keep-csr: when done, and when anything failed
    /// after it may have been created. Says what became of it.
    async fn clean_up<T>(&self, outcome: &Result<T>, progress: &mut Progress) -> Withdrawn {
        let name = self.name.to_string();
        // A create that was sent but not answered (interrupted, failed, timed out) may have
        // landed, or land later: look for the object by its name before saying anything.
        match self.sent.get() {
            Sent::No => return Withdrawn::NeverCreated,
            Sent::InFlight if !self.landed().await => return Withdrawn::NeverCreated,
            _ => {}
        }
        if self.options.keep_csr || (self.options.keep_issued && outcome.is_ok()) {
            return Withdrawn::Kept(name);
        }
        if !self.session.permissions.delete {
            let when = match outcome {
                Ok(_) => Some("within an hour of issuing"),
                // Its error says what became of the request.
                Err(e) if Withdrawn::is_explained_in(e) => None,
                Err(e) if e.kind == Kind::Rejected => Some("an hour after it was denied or failed"),
                Err(_) => Some("pending ones after 24 h, issued ones an hour after approval"),
            };
            if let Some(when) = when {
                progress.step(&format!(
                    "You may not delete CertificateSigningRequest {name}; the cluster removes it by itself ({when})"
                ));
            }
            return Withdrawn::NotAllowed(name);
        }
        let uid = self.uid.borrow().clone();
        let deleting = submit::delete(&self.session.conn, self.name, uid.as_deref());
        let deleted = match tokio::time::timeout(CLEANUP_WAIT, deleting).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the API server did not answer within {}",
                format_duration(CLEANUP_WAIT)
            )),
        };
        match deleted {
            Ok(()) => Withdrawn::Deleted(name),
            Err(why) => {
                let failed = Withdrawn::DeleteFailed { name, why };
                // An interruption or timeout says it in its error; anything else here.
                if !matches!(outcome, Err(e) if Withdrawn::is_explained_in(e)) {
                    progress.warn(&failed.what_became_of_it());
                }
                failed
            }
        }
    }

    /// Whether the object whose create was sent unanswered exists: asked by name a few times
    /// over about two seconds, as the create may still be on its way. An answer we cannot get
    /// counts as "it may exist", so that cleanup tries and says what it could not do.
    async fn landed(&self) -> bool {
        let api: Api<CertificateSigningRequest> = Api::all(self.session.conn.client.clone());
        for _ in 0..LANDING_CHECKS {
            match tokio::time::timeout(CLEANUP_WAIT, api.get_opt(self.name)).await {
                Ok(Ok(Some(_))) => return true,
                Ok(Ok(None)) => tokio::time::sleep(LANDING_PAUSE).await,
                Ok(Err(_)) | Err(_) => return true,
            }
        }
        false
    }
}

#[derive(Debug)]
enum Withdrawn {
    NeverCreated,
    Deleted(String),
    /// The caller has no delete permission (known from the permission check).
    NotAllowed(String),
    /// The delete was sent and failed: a stalled server, an admission webhook, anything.
    DeleteFailed {
        name: String,
        why: String,
    },
    Kept(String),
}

impl Withdrawn {
    /// Whether `explain` adds to `e` what became of the request: interruptions and timeouts.
    fn is_explained_in(e: &Error) -> bool {
        matches!(e.kind, Kind::Interrupted | Kind::Terminated | Kind::Timeout)
    }

    /// Adds to an interruption or timeout what became of the request, and that no file
    /// changed.
    fn explain(&self, e: Error) -> Error {
        if !Withdrawn::is_explained_in(&e) {
            return e;
        }
        let what = self.what_became_of_it();
        e.context(format!("{what}; no file was changed"))
    }

    fn what_became_of_it(&self) -> String {
        match self {
            Withdrawn::NeverCreated => "no CertificateSigningRequest was created".to_string(),
            Withdrawn::Deleted(name) => format!("CertificateSigningRequest {name} was withdrawn"),
            Withdrawn::NotAllowed(name) => format!(
                "CertificateSigningRequest {name} stays (you may not delete it; the cluster removes pending ones after 24 h)"
            ),
            Withdrawn::DeleteFailed { name, why } => format!(
                "CertificateSigningRequest {name} may still be there: deleting it failed ({why}); check with kubectl get csr {name} and delete it with kubectl delete csr {name}"
            ),
            Withdrawn::Kept(name) => {
                format!("CertificateSigningRequest {name} was kept (--keep-csr)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_delete_says_why_not_that_it_was_not_allowed() {
        let timeout = Error::new(Kind::Timeout, "no certificate within 10s");
        let failed = Withdrawn::DeleteFailed {
            name: "jane-x1".into(),
            why: "admission webhook \"freeze\" denied the request: CSRs are frozen".into(),
        };
        let said = failed.explain(timeout).to_string();
        assert_eq!(
            said,
            "no certificate within 10s; CertificateSigningRequest jane-x1 may still be there: deleting it failed (admission webhook \"freeze\" denied the request: CSRs are frozen); check with kubectl get csr jane-x1 and delete it with kubectl delete csr jane-x1; no file was changed"
        );
        assert!(!said.contains("you may not delete"));
        let forbidden = Withdrawn::NotAllowed("jane-x1".into());
        let said = forbidden
            .explain(Error::new(Kind::Interrupted, "interrupted"))
            .to_string();
        assert!(said.contains("you may not delete it"), "{said}");
        // Errors that are not about waiting keep their own words.
        let other = failed.explain(Error::failed("the certificate is for CN=eve"));
        assert_eq!(other.to_string(), "the certificate is for CN=eve");
    }
}
