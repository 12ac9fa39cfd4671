//! Steps 3 to 6 for one request object: create it, approve it (or wait for an administrator),
//! wait for the certificate and check it. The object is deleted when done (unless --keep-csr)
//! and withdrawn when anything fails or the user interrupts; the error then says what became
//! of it. Used by every command that gets a certificate from the cluster.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Kind, Result};
use crate::progress::Progress;
use crate::session::Session;
use crate::signals::Signals;
use crate::submit::{self, Request};
use crate::verify::{self, Verified};
use crate::wait::Waiter;

pub struct Options {
    pub approve: bool,
    pub timeout: Duration,
    pub keep_csr: bool,
}

pub struct Issued {
    pub verified: Verified,
    pub csr_name: String,
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
    let name = submit::object_name(request.user, &submit::random_suffix());
    let object = Object {
        session,
        name: &name,
        options,
        sent: Cell::new(Sent::No),
    };
    let outcome = signals
        .interruptible(object.obtain(request, groups, public_key_der, progress))
        .await;
    let started = Instant::now();
    let withdrawn = object.clean_up(&outcome, progress).await;
    progress.phase("csr cleanup", started);
    let verified = outcome.map_err(|e| withdrawn.explain(e))?;
    Ok(Issued {
        verified,
        csr_name: name,
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
}

impl Object<'_> {
    async fn obtain(
        &self,
        request: &Request<'_>,
        groups: &[String],
        public_key_der: &[u8],
        progress: &mut Progress,
    ) -> Result<Verified> {
        let conn = &self.session.conn;
        progress.detail(&format!(
            "request: signer {}, usages {:?}, expirationSeconds {}",
            submit::SIGNER,
            submit::usages(request.rsa),
            request
                .duration
                .map_or("(cluster default)".to_string(), |d| d.as_secs().to_string())
        ));
        let started = Instant::now();
        self.sent.set(Sent::InFlight);
        let created = submit::create(conn, self.name, request).await?;
        self.sent.set(Sent::Created);
        progress.phase("create", started);
        progress.step(&format!("Created CertificateSigningRequest {}", self.name));
        if self.options.approve {
            let started = Instant::now();
            submit::approve(conn, self.name).await?;
            progress.phase("approve", started);
            progress.step(&format!("Approved {}", self.name));
        }
        let waiter = Waiter {
            conn,
            name: self.name,
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
        for warning in &verified.warnings {
            progress.warn(warning);
        }
        Ok(verified)
    }

    /// Deletes the request object unless --keep-csr: when done, and when anything failed
    /// after it may have been created. Says what became of it.
    async fn clean_up<T>(&self, outcome: &Result<T>, progress: &mut Progress) -> Withdrawn {
        // Interrupted while the create was in flight, the object may exist all the same.
        let interrupted = matches!(outcome, Err(e) if e.is_interruption());
        let exists = match self.sent.get() {
            Sent::No => false,
            Sent::InFlight => interrupted,
            Sent::Created => true,
        };
        let name = self.name.to_string();
        if !exists {
            return Withdrawn::NeverCreated;
        }
        if self.options.keep_csr {
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
        match submit::delete(&self.session.conn, self.name).await {
            Ok(()) => Withdrawn::Deleted(name),
            Err(e) => {
                let failed = Withdrawn::DeleteFailed {
                    name,
                    why: e.to_string(),
                };
                // An interruption or timeout says it in its error; anything else here.
                if !matches!(outcome, Err(e) if Withdrawn::is_explained_in(e)) {
                    progress.warn(&failed.what_became_of_it());
                }
                failed
            }
        }
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
