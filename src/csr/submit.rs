//! Steps 3 and 4: the CertificateSigningRequest object, its approval, and its removal.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::cluster::Connection;
use crate::error::{Error, Kind, Result};

pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-onboard");
const APPROVE_REASON: &str = "KubectlOnboardApprove";
/// The Approved condition's message names the approver: `Approved by <name> with kubectl onboard.`
/// (the inventory reads it back, [`approver_of`]).
const APPROVED_BY: (&str, &str) = ("Approved by ", " with kubectl onboard.");
const DENY_REASON: &str = "KubectlOnboardDeny";

/// What goes into the request object.
pub struct Request<'a> {
    pub user: &'a str,
    pub pem: &'a str,
    pub rsa: bool,
    pub duration: Option<Duration>,
    pub key_algorithm: &'a str,
}

/// `jane-x7k2p9`: readable in `kubectl get csr`, unique per run.
pub fn object_name(user: &str, suffix: &str) -> String {
    let mut base: String = user
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .take(48)
        .collect();
    base = base.trim_matches(['-', '.']).to_string();
    if base.is_empty() {
        base = "user".into();
    }
    format!("{base}-{suffix}")
}

/// Six random lowercase letters and digits.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(6);
    while out.len() < 6 {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).expect("the OS random number generator");
        // 252 = 7 × 36: rejecting the rest keeps every character equally likely.
        for b in buf.into_iter().filter(|b| *b < 252) {
            if out.len() < 6 {
                out.push(ALPHABET[(b % 36) as usize] as char);
            }
        }
    }
    out
}

/// `client auth` is what the kube-apiserver-client signer requires; `digital signature` and,
/// for RSA, `key encipherment` are the only additions it allows.
pub fn usages(rsa: bool) -> Vec<String> {
    let mut usages = vec!["client auth".to_string(), "digital signature".to_string()];
    if rsa {
        usages.push("key encipherment".into());
    }
    usages
}

pub fn object(name: &str, request: &Request) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())])),
            annotations: Some(BTreeMap::from([
                ("kubectl-onboard/user".into(), request.user.into()),
                (
                    "kubectl-onboard/key-algorithm".into(),
                    request.key_algorithm.into(),
                ),
                (
                    "kubectl-onboard/version".into(),
                    env!("CARGO_PKG_VERSION").into(),
                ),
            ])),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.pem.as_bytes().to_vec()),
            signer_name: SIGNER.into(),
            usages: Some(usages(request.rsa)),
            // Checked in plan.rs to fit an int32.
            expiration_seconds: request.duration.map(|d| d.as_secs() as i32),
            ..Default::default()
        },
        status: None,
    }
}

/// Why a create failed: the server answered with a refusal (nothing was created), or it did
/// not answer (the object may exist, or appear later).
#[derive(Debug)]
pub enum CreateFailed {
    Refused(Error),
    Unanswered(Error),
}

pub async fn create(
    conn: &Connection,
    name: &str,
    request: &Request<'_>,
) -> std::result::Result<CertificateSigningRequest, CreateFailed> {
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let csr = object(name, request);
    api.create(&PostParams::default(), &csr)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 422 || s.code == 400 => {
                CreateFailed::Refused(Error::failed(format!(
                    "the API server refused the CertificateSigningRequest: {}",
                    s.message
                )))
            }
            kube::Error::Api(s) => CreateFailed::Refused(conn.api_error(
                "creating the CertificateSigningRequest",
                kube::Error::Api(s),
            )),
            e => CreateFailed::Unanswered(
                conn.api_error("creating the CertificateSigningRequest", e),
            ),
        })
}

/// Adds the Approved condition to `checked`, the very object the caller read and checked,
/// through the approval subresource as `kubectl certificate approve` does. The update carries
/// the object's uid and resourceVersion, so the API server refuses it if the request was
/// replaced (deleted and made again under its name, perhaps asking for more) after the check.
/// On a conflict the request is read again and approved only if it is still the same object
/// (same uid: its spec is immutable, so it asks for what was checked). Already approved is
/// fine; a denied request cannot be approved any more.
pub async fn approve(
    conn: &Connection,
    checked: &CertificateSigningRequest,
    approver: Option<&str>,
) -> Result<()> {
    let message = match approver {
        Some(who) => format!("{}{who}{}", APPROVED_BY.0, APPROVED_BY.1),
        None => "Approved with kubectl onboard.".to_string(),
    };
    let name = checked.metadata.name.as_deref().unwrap_or_default();
    let Some(uid) = checked.metadata.uid.as_deref() else {
        return Err(Error::failed(format!(
            "CertificateSigningRequest {name} was read without a uid, so it cannot be approved exactly as checked; nothing was approved"
        )));
    };
    let pinned = Pinned {
        uid: uid.to_string(),
        first: checked.clone(),
    };
    decide(conn, name, Some(pinned), Decision::Approve(&message)).await
}

/// Who approved `csr` with kubectl onboard, as its Approved condition says.
pub fn approver_of(csr: &CertificateSigningRequest) -> Option<String> {
    let conditions = csr.status.as_ref()?.conditions.as_ref()?;
    let approved = conditions
        .iter()
        .find(|c| c.type_ == "Approved" && c.reason.as_deref() == Some(APPROVE_REASON))?;
    let who = approved
        .message
        .as_deref()?
        .strip_prefix(APPROVED_BY.0)?
        .strip_suffix(APPROVED_BY.1)?;
    Some(who.to_string())
}

/// Adds the Denied condition, as `kubectl certificate deny` does; `message` is what the
/// requester reads where they wait. Already denied is fine; an approved request cannot be
/// denied any more.
pub async fn deny(conn: &Connection, name: &str, message: &str) -> Result<()> {
    decide(conn, name, None, Decision::Deny(message)).await
}

/// The object a decision is bound to: its uid, and the object as it was checked (the first
/// update is made from it, never from a fresh read).
struct Pinned {
    uid: String,
    first: CertificateSigningRequest,
}

enum Decision<'a> {
    /// With the condition's message.
    Approve(&'a str),
    Deny(&'a str),
}

// Reads the object itself rather than through the approval subresource: that would need a
// permission (get on certificatesigningrequests/approval) the documented approver rules lack.
async fn decide(
    conn: &Connection,
    name: &str,
    pinned: Option<Pinned>,
    decision: Decision<'_>,
) -> Result<()> {
    let (verb, gerund) = match decision {
        Decision::Approve(_) => ("approve", "approving"),
        Decision::Deny(_) => ("deny", "denying"),
    };
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let doing = format!("{gerund} CertificateSigningRequest {name}");
    let (uid, mut first) = match pinned {
        Some(p) => (Some(p.uid), Some(p.first)),
        None => (None, None),
    };
    for _ in 0..5 {
        let mut csr = match first.take() {
            Some(checked) => checked,
            None => match api.get(name).await {
                Ok(csr) => csr,
                Err(kube::Error::Api(s)) if s.code == 404 && uid.is_some() => {
                    return Err(replaced(name));
                }
                Err(e) => return Err(conn.api_error(&doing, e)),
            },
        };
        if uid.is_some() && csr.metadata.uid != uid {
            return Err(replaced(name));
        }
        if !add_condition(&mut csr, name, &decision)? {
            return Ok(());
        }
        // The body carries the uid and resourceVersion it was read with: the API server
        // refuses the update (409) if the object is no longer that one, or has changed.
        match api
            .replace_subresource("approval", name, &PostParams::default(), &csr)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) if s.code == 404 && uid.is_some() => {
                return Err(replaced(name));
            }
            Err(e) => return Err(conn.api_error(&doing, e)),
        }
    }
    Err(Error::failed(format!(
        "could not {verb} CertificateSigningRequest {name}: it kept changing under us (5 conflicts); run again"
    )))
}

/// Adds `decision`'s condition to `csr`; `Ok(false)`: it has it already, nothing to do. The
/// opposite decision taken already is an error.
fn add_condition(
    csr: &mut CertificateSigningRequest,
    name: &str,
    decision: &Decision<'_>,
) -> Result<bool> {
    let (kind, opposite, reason, message) = match decision {
        Decision::Approve(message) => ("Approved", "Denied", APPROVE_REASON, message),
        Decision::Deny(message) => ("Denied", "Approved", DENY_REASON, message),
    };
    let conditions = csr
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    if conditions.iter().any(|c| c.type_ == kind) {
        return Ok(false);
    }
    if let Some(other) = conditions.iter().find(|c| c.type_ == opposite) {
        return Err(match decision {
            Decision::Approve(_) => Error::new(
                Kind::Rejected,
                format!(
                    "CertificateSigningRequest {name} was denied before we could approve it: {}",
                    other.message.as_deref().unwrap_or("no reason given")
                ),
            ),
            Decision::Deny(_) => Error::failed(format!(
                "CertificateSigningRequest {name} was approved before we could deny it; a certificate cannot be revoked: remove the user's RBAC bindings (kubectl onboard offboard USER)"
            )),
        });
    }
    conditions.push(CertificateSigningRequestCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.to_string()),
        last_update_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
        ..Default::default()
    });
    Ok(true)
}

/// The request checked is gone, or another object now holds its name.
fn replaced(name: &str) -> Error {
    Error::failed(format!(
        "CertificateSigningRequest {name} was deleted or replaced by another request of the same name after it was checked, so it was not approved: run again to check the one there now"
    ))
}

/// Deletes request `name`; with `uid`, only that object (a request of a fixed name may have
/// been replaced by another attempt meanwhile: that one is not ours to delete). Gone already,
/// or replaced, is fine.
pub async fn delete(
    conn: &Connection,
    name: &str,
    uid: Option<&str>,
) -> std::result::Result<(), kube::Error> {
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let params = DeleteParams {
        preconditions: uid.map(|uid| kube::api::Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 && uid.is_some() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_lowercase_path_segments() {
        assert_eq!(object_name("jane", "abc123"), "jane-abc123");
        assert_eq!(
            object_name("Jane.Doe@Example.com", "x"),
            "jane.doe-example.com-x"
        );
        assert_eq!(object_name("a_b+c", "x"), "a-b-c-x");
        assert_eq!(object_name("-._", "x"), "user-x");
        assert!(object_name(&"a".repeat(64), "abcdef").len() <= 55);
    }

    #[test]
    fn suffixes_are_six_lowercase_alphanumerics_and_differ() {
        let a = random_suffix();
        assert_eq!(a.len(), 6);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, random_suffix());
    }

    #[test]
    fn the_object_asks_the_client_signer_for_client_auth() {
        let request = Request {
            user: "jane",
            pem: "PEM",
            rsa: true,
            duration: Some(Duration::from_secs(3600)),
            key_algorithm: "RSA-2048",
        };
        let csr = object("jane-abc123", &request);
        assert_eq!(csr.spec.signer_name, SIGNER);
        assert_eq!(
            csr.spec.usages.as_deref().unwrap(),
            ["client auth", "digital signature", "key encipherment"]
        );
        assert_eq!(csr.spec.expiration_seconds, Some(3600));
        assert_eq!(csr.metadata.labels.unwrap()[MANAGED_BY.0], MANAGED_BY.1);
        let ec = object(
            "x",
            &Request {
                rsa: false,
                duration: None,
                ..request
            },
        );
        assert_eq!(
            ec.spec.usages.as_deref().unwrap(),
            ["client auth", "digital signature"]
        );
        assert_eq!(ec.spec.expiration_seconds, None);
    }
}
