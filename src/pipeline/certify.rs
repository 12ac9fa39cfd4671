//! Request → certify → verify: a checked certificate for a subject's key, from the cluster's
//! CSR API or from a local CA. Both end in the same checks ([`verify::certificate`]): our key, the
//! subject asked for, a chain to the CA the kubeconfig trusts.

use std::time::{Duration, Instant, SystemTime};

use crate::cluster::session::Session;
use crate::csr;
use crate::csr::issue::{self, Issued};
use crate::csr::submit;
use crate::duration::format_duration;
use crate::error::Result;
use crate::pipeline::record;
use crate::pki::authority::{self, Authority};
use crate::pki::key::PrivateKey;
use crate::pki::verify::{self, Verified};
use crate::policy;
use crate::records::inventory;
use crate::signals::Signals;
use crate::ui::progress::Progress;

/// Whom the certificate is for: its CN and O.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
}

/// Who turns a request into a certificate.
pub enum Certifier<'a> {
    /// The cluster's CSR API: create, approve when asked, wait, clean up (`csr/issue.rs`).
    Cluster {
        session: &'a Session,
        options: issue::Options,
        /// Recorded in the cluster's inventory as made this way (`None`: --no-record).
        record: Option<inventory::How>,
    },
    /// A local CA (`--ca-cert/--ca-key`): signed here, as `kubeadm kubeconfig user` does.
    Authority(&'a Authority),
}

/// What is certified: a key we hold (the request is built from it here), or a request
/// someone else built with a key we never see (`sign`).
#[derive(Clone, Copy)]
pub enum Requester<'a> {
    Key(&'a PrivateKey),
    Received(&'a csr::Received),
}

pub struct Certified {
    pub verified: Verified,
    /// The CertificateSigningRequest it went through; `None` when signed here.
    pub csr_name: Option<String>,
}

impl<'a> Certifier<'a> {
    /// The cluster's CSR API through `session`: `approve` the request ourselves or wait for an
    /// administrator, at most `timeout`; `keep_csr` leaves the object when done. The certificate
    /// is recorded in the inventory as made `record` (`None`: not recorded).
    pub fn cluster(
        session: &'a Session,
        approve: bool,
        timeout: Duration,
        keep_csr: bool,
        record: Option<inventory::How>,
    ) -> Certifier<'a> {
        Certifier::Cluster {
            session,
            options: issue::Options {
                approve,
                timeout,
                keep_csr,
                name: None,
                keep_issued: false,
            },
            record,
        }
    }

    /// The same, for an invitation's request: of this fixed name, left once issued for the
    /// approver to record.
    pub fn invited(mut self, fixed: &str) -> Certifier<'a> {
        if let Certifier::Cluster { options, .. } = &mut self {
            options.name = Some(fixed.to_string());
            options.keep_issued = true;
        }
        self
    }

    /// A checked certificate for `subject`, lasting `duration` (`None`: the signer's default).
    pub async fn certify(
        &self,
        subject: Subject<'_>,
        requester: Requester<'_>,
        duration: Option<Duration>,
        signals: &mut Signals,
        progress: &mut Progress,
    ) -> Result<Certified> {
        let public_key_der = match requester {
            Requester::Key(key) => key.public_key_der(),
            Requester::Received(received) => received.public_key_der.clone(),
        };
        match self {
            Certifier::Cluster {
                session,
                options,
                record,
            } => {
                let started = Instant::now();
                let (pem, rsa, key_algorithm) = match requester {
                    Requester::Key(key) => (
                        csr::build(subject.user, subject.groups, key)?,
                        key.is_rsa(),
                        key.algorithm(),
                    ),
                    Requester::Received(r) => (r.pem.clone(), r.rsa, r.key_algorithm.clone()),
                };
                progress.phase("csr build", started);
                let request = submit::Request {
                    user: subject.user,
                    pem: &pem,
                    rsa,
                    duration,
                    key_algorithm: &key_algorithm,
                };
                let issued = issue::issue(
                    session,
                    &request,
                    subject.groups,
                    &public_key_der,
                    options,
                    signals,
                    progress,
                )
                .await?;
                if let Some(how) = record {
                    record_in_inventory(session, &issued, *how, options.approve, progress).await;
                }
                Ok(Certified {
                    verified: issued.verified,
                    csr_name: Some(issued.csr_name),
                })
            }
            Certifier::Authority(authority) => {
                let started = Instant::now();
                let verified = sign_here(
                    authority,
                    subject,
                    &public_key_der,
                    duration,
                    SystemTime::now(),
                    progress,
                )?;
                progress.phase("sign", started);
                progress.step(&format!(
                    "Certificate signed here with the cluster CA, valid until {}",
                    verify::rfc3339(verified.info.not_after)
                ));
                if subject.groups.iter().any(|g| g == policy::MASTERS) {
                    progress.warn(&masters_warning(subject.user, verified.info.not_after));
                }
                Ok(Certified {
                    verified,
                    csr_name: None,
                })
            }
        }
    }
}

/// Records what was `issued` in the inventory as made `how` (approved by the requester when
/// `approved_here`); a failure is one line, never an error: the certificate is issued and the
/// user still gets it.
async fn record_in_inventory(
    session: &Session,
    issued: &Issued,
    how: inventory::How,
    approved_here: bool,
    progress: &mut Progress,
) {
    let requester = issued.requester.as_deref();
    let approver = approved_here.then_some(requester).flatten();
    let csr = Some(issued.csr_name.as_str());
    let verified = &issued.verified;
    if let Some(made) = record::of(verified, how, csr, requester, approver, progress) {
        record::write(&session.conn, &made, &verified.pem, progress).await;
    }
}

/// Signs with a local CA for the key `public_key_der` and checks the result as an issued
/// certificate is checked. `lifetime` `None` is the signer's default, a year. No I/O: batch
/// runs it on a worker thread.
pub fn sign_here(
    authority: &Authority,
    subject: Subject<'_>,
    public_key_der: &[u8],
    lifetime: Option<Duration>,
    now: SystemTime,
    progress: &mut Progress,
) -> Result<Verified> {
    let lifetime = lifetime.unwrap_or(authority::DEFAULT_DURATION);
    let signed = authority.sign(subject.user, subject.groups, public_key_der, lifetime, now)?;
    let verified = verify::certificate(
        signed.pem.as_bytes(),
        &verify::Expected {
            user: subject.user,
            groups: subject.groups,
            public_key_der,
            duration: None,
            ca_pem: Some(authority.ca_pem()),
            now,
        },
    )?;
    if let Some(end) = signed.capped_at {
        progress.warn(&format!(
            "the CA certificate expires at {}, so the new certificate ends then instead of lasting {}",
            verify::rfc3339(end),
            format_duration(lifetime)
        ));
    }
    for warning in &verified.warnings {
        progress.warn(warning);
    }
    Ok(verified)
}

fn masters_warning(user: &str, not_after: SystemTime) -> String {
    format!(
        "SECURITY: {user} is in group {}: this credential is cluster-admin, beyond any RBAC rule, and Kubernetes cannot revoke a client certificate: it stays valid until {} unless the cluster CA itself is replaced. Keep it safe; prefer binding a ClusterRole and a short --duration",
        policy::MASTERS,
        verify::rfc3339(not_after)
    )
}
