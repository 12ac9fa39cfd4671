//! The inventory: a record of every certificate issued through kubectl onboard, kept in the
//! cluster, because Kubernetes keeps none (the CSR cleaner deletes an issued request within the
//! hour, and kubectl onboard deletes its own when done).
//!
//! One ConfigMap per certificate in the namespace [`NAMESPACE`], named after its SHA-256
//! fingerprint (the credential id the API server gives the certificate's user), labelled
//! [`LABEL`]. The facts are annotations, so that listing reads metadata only; the certificate
//! itself (public) is its data. ConfigMaps need no CRD to install and scale to tens of thousands.
//! Recording never makes a command fail: what cannot be recorded is said once.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use x509_cert::der::Decode;

use crate::cluster::Connection;
use crate::error::Result;
use crate::pki::verify::{self, Verified};

pub mod check;

pub const NAMESPACE: &str = "kubectl-onboard";
/// The label every inventory ConfigMap carries (and the selector that lists them).
pub const LABEL: (&str, &str) = ("kubectl-onboard/inventory", "certificate");
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-onboard");
/// Annotation keys: `kubectl-onboard/<field>`.
const PREFIX: &str = "kubectl-onboard/";

/// How the certificate came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// `kubectl onboard USER --approve`: the administrator's own request.
    Admin,
    /// `kubectl onboard USER` waiting for an administrator.
    SelfService,
    /// `kubectl onboard sign`: a colleague's request.
    Sign,
    Batch,
    Renew,
    /// `kubectl onboard USER --ca-key …`: signed here with the cluster CA's key.
    Offline,
    /// `kubectl onboard accept`: requested with an invitation, approved with `approve`.
    Invitation,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Admin => "admin",
            How::SelfService => "self-service",
            How::Sign => "sign",
            How::Batch => "batch",
            How::Renew => "renew",
            How::Offline => "offline",
            How::Invitation => "invitation",
        }
    }
}

/// One issued certificate, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub user: String,
    pub groups: Vec<String>,
    /// Lowercase hex, as `openssl x509 -serial` prints it (without colons).
    pub serial: String,
    /// SHA-256 of the certificate's DER, lowercase hex: the `X509SHA256=` credential id.
    pub fingerprint: String,
    pub not_before: String,
    pub not_after: String,
    /// `RSA-2048`, `ECDSA-P256`, …
    pub key: String,
    /// Who created the CertificateSigningRequest (its spec.username).
    pub requester: Option<String>,
    /// Who approved it, when known (ourselves, with --approve).
    pub approver: Option<String>,
    pub how: String,
    pub csr: Option<String>,
}

impl Record {
    /// The record of a certificate just issued and checked.
    pub fn of(
        verified: &Verified,
        how: How,
        csr: Option<&str>,
        requester: Option<&str>,
        approver: Option<&str>,
    ) -> Option<Record> {
        Record::from_pem(&verified.pem, how.as_str(), csr, requester, approver)
    }

    /// The record of the (first) certificate in `pem`; `None` if there is none to read.
    pub fn from_pem(
        pem: &str,
        how: &str,
        csr: Option<&str>,
        requester: Option<&str>,
        approver: Option<&str>,
    ) -> Option<Record> {
        let der = crate::pki::pem::block(pem.as_bytes(), "CERTIFICATE")
            .and_then(|block| crate::pki::pem::decode(block).ok())
            .map(|(_, der)| der)?;
        let certificate = x509_cert::Certificate::from_der(&der).ok()?;
        let info = verify::inspect(&certificate).ok()?;
        let serial = certificate
            .tbs_certificate()
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let key = crate::pki::key::describe_public_key(&info.public_key_der)
            .map(|(name, _)| name)
            .unwrap_or_else(|_| "unknown".to_string());
        Some(Record {
            user: info.common_name.unwrap_or_default(),
            groups: info.organizations,
            serial,
            fingerprint: fingerprint(&der),
            not_before: verify::rfc3339(info.not_before),
            not_after: verify::rfc3339(info.not_after),
            key,
            requester: requester.map(str::to_string),
            approver: approver.map(str::to_string),
            how: how.to_string(),
            csr: csr.map(str::to_string),
        })
    }

    /// The ConfigMap's name: `x509sha256-<fingerprint>`.
    pub fn object_name(&self) -> String {
        format!("x509sha256-{}", self.fingerprint)
    }

    fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            a.insert(format!("{PREFIX}{k}"), v.to_string());
        };
        put("user", &self.user);
        put("groups", &self.groups.join(","));
        put("serial", &self.serial);
        put("fingerprint", &self.fingerprint);
        put("not-before", &self.not_before);
        put("not-after", &self.not_after);
        put("key", &self.key);
        put("how", &self.how);
        if let Some(v) = &self.requester {
            put("requester", v);
        }
        if let Some(v) = &self.approver {
            put("approver", v);
        }
        if let Some(v) = &self.csr {
            put("csr", v);
        }
        a
    }

    /// A record read back from an inventory object's annotations; `None` if it is not one.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Option<Record> {
        let get = |k: &str| annotations.get(&format!("{PREFIX}{k}")).cloned();
        Some(Record {
            user: get("user")?,
            groups: get("groups")
                .filter(|g| !g.is_empty())
                .map(|g| g.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            serial: get("serial").unwrap_or_default(),
            fingerprint: get("fingerprint")?,
            not_before: get("not-before").unwrap_or_default(),
            not_after: get("not-after")?,
            key: get("key").unwrap_or_default(),
            requester: get("requester"),
            approver: get("approver"),
            how: get("how").unwrap_or_default(),
            csr: get("csr"),
        })
    }

    /// When the certificate stops working; `None` if the record's date cannot be read.
    pub fn not_after_time(&self) -> Option<SystemTime> {
        verify::parse_rfc3339(&self.not_after)
    }
}

/// SHA-256 of `der`, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::pki::sha256_hex(der)
}

/// Who writes a record, and so what happens when one is there already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The command that issued the certificate: it knows how, by whom and for whom, so its
    /// facts replace whatever a sweep guessed first (compare-and-swap on the object's version).
    Issuer,
    /// A sweep of issued requests: it guesses from the request, and leaves a record there as it is.
    Sweep,
}

/// Writes `record` into the inventory (creating the namespace the first time). `Err` says, in
/// a line for the user, why it could not be recorded.
pub async fn record(
    conn: &Connection,
    record: &Record,
    pem: &str,
    writer: Writer,
) -> std::result::Result<(), String> {
    let map = config_map(record, pem);
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), NAMESPACE);
    let pp = PostParams::default();
    let mut namespace_made = false;
    // A few rounds: each conflict means another writer changed the record meanwhile.
    for _ in 0..5 {
        match maps.create(&pp, &map).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 && !namespace_made => {
                ensure_namespace(conn).await.map_err(why_not)?;
                namespace_made = true;
                continue;
            }
            Err(kube::Error::Api(s)) if s.code == 409 && writer == Writer::Sweep => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(why_not(e)),
        }
        // There already: the issuer's facts win over what is there, unless it says the same.
        let Some(mut there) = maps.get_opt(&record.object_name()).await.map_err(why_not)? else {
            continue;
        };
        if there.metadata.annotations.as_ref() == map.metadata.annotations.as_ref()
            && there.data == map.data
        {
            return Ok(());
        }
        // The version read is the precondition: a write made meanwhile makes this one fail.
        there.metadata.annotations = map.metadata.annotations.clone();
        there.metadata.labels = map.metadata.labels.clone();
        there.data = map.data.clone();
        match maps.replace(&record.object_name(), &pp, &there).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => continue,
            Err(e) => return Err(why_not(e)),
        }
    }
    Err("it kept changing under us (5 conflicts)".to_string())
}

/// The inventory object of `record`, its certificate `pem` as data.
fn config_map(record: &Record, pem: &str) -> ConfigMap {
    let labels = BTreeMap::from([
        (LABEL.0.to_string(), LABEL.1.to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(record.object_name()),
            namespace: Some(NAMESPACE.to_string()),
            labels: Some(labels),
            annotations: Some(record.annotations()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "certificate".to_string(),
            pem.to_string(),
        )])),
        ..Default::default()
    }
}

/// Creates [`NAMESPACE`] (labelled) unless it is there.
pub async fn ensure_namespace(conn: &Connection) -> std::result::Result<(), kube::Error> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(conn.client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn why_not(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            format!("you may not create ConfigMaps in namespace {NAMESPACE}")
        }
        kube::Error::Api(s) => format!("the API server answered {} {}", s.code, s.reason),
        _ => "the API server did not answer".to_string(),
    }
}

/// A record, and why it cannot be trusted (`None`: it holds together, [`check::problem`]).
#[derive(Clone, Debug)]
pub struct Checked {
    pub record: Record,
    pub problem: Option<String>,
}

/// Every recorded certificate with its certificate, each checked against itself and, when
/// the cluster publishes it and we may read it, the cluster's client CA. The second value says
/// why the issuer was not checked, if it was not.
pub async fn list_checked(conn: &Connection) -> Result<(Vec<Checked>, Option<String>)> {
    let (cas, unchecked) = match client_cas(conn).await {
        Ok(cas) => (cas, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), NAMESPACE);
    let selector = format!("{}={}", LABEL.0, LABEL.1);
    let mut checked = Vec::new();
    let mut params = ListParams::default().labels(&selector).limit(1000);
    loop {
        let page = match maps.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok((checked, unchecked)),
            Err(e) => return Err(conn.api_error("listing the certificate inventory", e)),
        };
        for map in &page.items {
            let Some(record) = map
                .metadata
                .annotations
                .as_ref()
                .and_then(Record::from_annotations)
            else {
                continue;
            };
            let name = map.metadata.name.as_deref().unwrap_or_default();
            let pem = map.data.as_ref().and_then(|d| d.get("certificate"));
            let problem = check::problem(name, &record, pem.map(String::as_str), &cas);
            checked.push(Checked { record, problem });
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((checked, unchecked)),
        }
    }
}

/// The CAs the API server trusts for client certificates, as it publishes them
/// (`kube-system/extension-apiserver-authentication`, `client-ca-file`); `Err` says why not.
async fn client_cas(conn: &Connection) -> std::result::Result<Vec<x509_cert::Certificate>, String> {
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), "kube-system");
    let map = maps
        .get_opt("extension-apiserver-authentication")
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 => {
                "you may not read kube-system/extension-apiserver-authentication".to_string()
            }
            e => why_not(e),
        })?
        .ok_or("the cluster does not publish its client CA")?;
    let pem = map
        .data
        .and_then(|d| d.get("client-ca-file").cloned())
        .ok_or("the cluster does not publish its client CA")?;
    crate::pki::pem::certificates(pem.as_bytes())
        .map_err(|_| "the cluster's client CA cannot be read".to_string())
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    /// How many records it added.
    pub added: usize,
    /// Issued requests whose certificate is not for what the request asked (another key, user
    /// or groups), each in a line: not recorded, and worth an administrator's look.
    pub mismatched: Vec<String>,
}

/// Records what the inventory lacks of the certificates still in issued requests to
/// kubernetes.io/kube-apiserver-client (the cleaner deletes them an hour after issuing): those
/// approved with plain kubectl, or for a requester who could not record them; the approver is
/// the one kubectl onboard named in the Approved condition. A certificate is recorded only when
/// it is for exactly what its request asked. `only`: just the requests with these uids;
/// `known`: the fingerprints the caller already listed (`None`: write each, an existing record
/// is left as it is). `Err` says in a line why it could not look or record.
pub async fn sweep(
    conn: &Connection,
    only: Option<&[String]>,
    known: Option<&HashSet<String>>,
) -> std::result::Result<Swept, String> {
    let requests: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let ours =
        ListParams::default().fields(&format!("spec.signerName={}", crate::csr::submit::SIGNER));
    let list = requests.list(&ours).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => {
            "you may not list CertificateSigningRequests".to_string()
        }
        e => why_not(e),
    })?;
    let mut swept = Swept::default();
    for csr in &list.items {
        let uid = csr.metadata.uid.as_deref().unwrap_or_default();
        if only.is_some_and(|uids| !uids.iter().any(|u| u == uid)) {
            continue;
        }
        match record_request(conn, csr, known).await? {
            Recorded::Added => swept.added += 1,
            Recorded::Mismatched(line) => swept.mismatched.push(line),
            Recorded::Nothing => {}
        }
    }
    Ok(swept)
}

/// What [`record_request`] did.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    Added,
    /// Not issued, unreadable, or known already.
    Nothing,
    /// Its certificate is not what it asked for, in a line: not recorded.
    Mismatched(String),
}

/// Records the certificate of the issued request `csr` unless it is in `known`, when it is for
/// exactly what the request asked; with what the request says of how, by and for whom.
pub async fn record_request(
    conn: &Connection,
    csr: &CertificateSigningRequest,
    known: Option<&HashSet<String>>,
) -> std::result::Result<Recorded, String> {
    let name = csr.metadata.name.as_deref().unwrap_or_default();
    let Some(issued) = csr.status.as_ref().and_then(|s| s.certificate.as_ref()) else {
        return Ok(Recorded::Nothing);
    };
    let pem = String::from_utf8_lossy(&issued.0);
    let requester = csr.spec.username.as_deref();
    let approver = crate::csr::submit::approver_of(csr);
    let how = guessed_how(csr);
    let Some(found) = Record::from_pem(&pem, how, Some(name), requester, approver.as_deref())
    else {
        return Ok(Recorded::Nothing);
    };
    if let Err(why) = issued_as_asked(csr, &pem) {
        return Ok(Recorded::Mismatched(format!(
            "the certificate issued for request {name} is not what it asked for: {why}; not recorded"
        )));
    }
    if known.is_some_and(|k| k.contains(&found.fingerprint)) {
        return Ok(Recorded::Nothing);
    }
    record(conn, &found, &pem, Writer::Sweep).await?;
    Ok(Recorded::Added)
}

/// How a request came to be, as far as the request itself says (the issuing command, when it
/// records, knows better and replaces this).
fn guessed_how(csr: &CertificateSigningRequest) -> &'static str {
    let made_by_us = csr
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1);
    let invited = csr
        .spec
        .username
        .as_deref()
        .and_then(crate::invitation::of_requester)
        .is_some();
    match (invited, made_by_us) {
        (true, _) => How::Invitation.as_str(),
        (false, true) => How::SelfService.as_str(),
        (false, false) => "kubectl",
    }
}

/// Whether the certificate in `pem` is for exactly what `csr`'s PKCS#10 request asked.
fn issued_as_asked(csr: &CertificateSigningRequest, pem: &str) -> std::result::Result<(), String> {
    let asked = crate::csr::review::read_request(&csr.spec.request.0)?;
    let der = verify::first_certificate_der(pem.as_bytes()).map_err(|e| e.to_string())?;
    let certificate =
        x509_cert::Certificate::from_der(&der).map_err(|_| "it cannot be read".to_string())?;
    let info = verify::inspect(&certificate).map_err(|e| e.to_string())?;
    asked.issued_as_asked(&info)
}

/// How long a record is kept after its certificate expired: long enough to answer "who could
/// get in last month", short enough that the inventory does not grow for ever.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// The records among `records` to prune at `now`: expired more than [`RETENTION`] ago.
pub fn stale(records: &[Record], now: SystemTime) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.not_after_time().is_some_and(|end| end + RETENTION < now))
        .collect()
}

/// Deletes the records of `stale`; `Err` says why not (one line). Gone already is fine.
pub async fn prune(conn: &Connection, stale: &[&Record]) -> std::result::Result<usize, String> {
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), NAMESPACE);
    let mut pruned = 0;
    for record in stale {
        match maps
            .delete(&record.object_name(), &Default::default())
            .await
        {
            Ok(_) => pruned += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 403 => {
                return Err(format!(
                    "you may not delete ConfigMaps in namespace {NAMESPACE}"
                ));
            }
            Err(e) => return Err(why_not(e)),
        }
    }
    Ok(pruned)
}

/// Who the caller is, as the cluster sees it (SelfSubjectReview); `None` if it cannot say.
pub async fn caller(conn: &Connection) -> Option<String> {
    let reviews: Api<SelfSubjectReview> = Api::all(conn.client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username
}

/// Where a certificate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Valid,
    Expiring,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Valid => "valid",
            State::Expiring => "expiring",
            State::Expired => "expired",
        }
    }
}

pub fn state(record: &Record, now: SystemTime, warn: Option<Duration>) -> State {
    match record.not_after_time() {
        Some(end) if end <= now => State::Expired,
        Some(end) if warn.is_some_and(|w| end <= now + w) => State::Expiring,
        Some(_) => State::Valid,
        // A date we cannot read: never hidden, never counted as fine.
        None => State::Expiring,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            user: "jane".into(),
            groups: vec!["dev".into(), "ops".into()],
            serial: "0a1b".into(),
            fingerprint: "ab".repeat(32),
            not_before: "2026-12-01T00:00:00Z".into(),
            not_after: "2027-12-01T00:00:00Z".into(),
            key: "RSA-2048".into(),
            requester: Some("admin".into()),
            approver: Some("admin".into()),
            how: How::Admin.as_str().into(),
            csr: Some("jane-abc123".into()),
        }
    }

    #[test]
    fn a_record_survives_its_annotations() {
        let r = sample();
        assert_eq!(Record::from_annotations(&r.annotations()), Some(r.clone()));
        let none = Record {
            groups: vec![],
            requester: None,
            approver: None,
            csr: None,
            ..r
        };
        assert_eq!(Record::from_annotations(&none.annotations()), Some(none));
        assert_eq!(Record::from_annotations(&BTreeMap::new()), None);
    }

    #[test]
    fn records_expired_beyond_the_retention_are_stale() {
        let now: SystemTime = "2026-12-02T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .into();
        let at = |end: &str| Record {
            not_after: end.into(),
            ..sample()
        };
        let records = [
            at("2026-08-01T00:00:00Z"),
            at("2026-11-01T00:00:00Z"),
            at("2027-01-01T00:00:00Z"),
            at("not a date"),
        ];
        let stale = stale(&records, now);
        assert_eq!(
            stale,
            [&records[0]],
            "only the one expired over 90 days ago"
        );
    }

    #[test]
    fn the_object_is_named_by_the_credential_id() {
        let r = sample();
        assert_eq!(r.object_name(), format!("x509sha256-{}", "ab".repeat(32)));
        assert!(r.object_name().len() <= 253);
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(r.not_after_time().is_some());
    }
}
