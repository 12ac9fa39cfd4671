//! Reviewing a CertificateSigningRequest: what it really asks for, read from its own PKCS#10
//! (labels and annotations say whatever its creator wrote), and whether `kubectl onboard
//! approve` signs off on it. Pure: the caller fetches the object.
//!
//! The rules are those of a certificate for a person: the kube-apiserver-client signer, usages
//! the signer accepts (FACTS: `client auth`, plus only `digital signature` and `key
//! encipherment`), one common name outside `system:`, no group in `system:` (`system:masters`
//! above all), and a request signed by the key it carries.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use x509_cert::der::asn1::UintRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Tagged};
use x509_cert::request::CertReq;

use crate::csr;
use crate::csr::submit::{MANAGED_BY, SIGNER};
use crate::csr::wait::{self, State};
use crate::pki::verify::CertInfo;
use crate::pki::{oid, text};
use crate::policy::{self, Refused};
use crate::terminal;

/// `client auth` is required; these are the only other usages the signer accepts.
pub const REQUIRED_USAGE: &str = "client auth";
pub const OPTIONAL_USAGES: [&str; 2] = ["digital signature", "key encipherment"];

/// What the PKCS#10 request asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Asked {
    /// Every CN in the subject (one, for a request we approve).
    pub common_names: Vec<String>,
    /// Every O in the subject: the groups the certificate puts its holder in.
    pub groups: Vec<String>,
    /// `RSA-2048`, `ECDSA-P256`, `Ed25519`, …
    pub key: String,
    /// `Err(why)`: the request's self-signature does not verify, or cannot be checked here.
    pub signature: Result<(), String>,
    /// Subject alternative names asked for (`None`: its extensions cannot be read).
    pub alt_names: Option<usize>,
    /// The DER SubjectPublicKeyInfo of the key the request carries.
    pub public_key_der: Vec<u8>,
}

impl Asked {
    pub fn common_name(&self) -> Option<&str> {
        match self.common_names.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether the certificate `issued` is for exactly what was asked: the same common names,
    /// groups and public key. `Err` says what differs.
    pub fn issued_as_asked(&self, issued: &CertInfo) -> Result<(), String> {
        if issued.public_key_der != self.public_key_der {
            return Err("it is for another public key than the request's".into());
        }
        if issued.common_names != self.common_names {
            return Err(format!(
                "it names user(s) [{}] where the request asked for [{}]",
                issued.common_names.join(", "),
                self.common_names.join(", ")
            ));
        }
        if issued.organizations != self.groups {
            return Err(format!(
                "it has groups [{}] where the request asked for [{}]",
                issued.organizations.join(", "),
                self.groups.join(", ")
            ));
        }
        Ok(())
    }
}

/// One CertificateSigningRequest, as a reviewer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reviewed {
    pub name: String,
    pub signer: String,
    /// Who created it (spec.username, filled in by the API server).
    pub requester: Option<String>,
    pub usages: Vec<String>,
    pub expiration_seconds: Option<i32>,
    pub created: Option<Timestamp>,
    /// Labelled `app.kubernetes.io/managed-by=kubectl-onboard` (informative: anyone may set it).
    pub onboard: bool,
    pub state: State,
    /// `Err(why)`: spec.request is not a readable PKCS#10 request.
    pub asked: Result<Asked, String>,
    /// The object as it was read: an approval is made of exactly this object (its uid and
    /// resourceVersion), never of whatever holds the name later.
    pub checked: CertificateSigningRequest,
}

impl Reviewed {
    pub fn of(csr: &CertificateSigningRequest) -> Reviewed {
        let labels = csr.metadata.labels.as_ref();
        Reviewed {
            name: csr.metadata.name.clone().unwrap_or_default(),
            signer: csr.spec.signer_name.clone(),
            requester: csr.spec.username.clone(),
            usages: csr.spec.usages.clone().unwrap_or_default(),
            expiration_seconds: csr.spec.expiration_seconds,
            created: csr.metadata.creation_timestamp.as_ref().map(|t| t.0),
            onboard: labels.and_then(|l| l.get(MANAGED_BY.0)).map(String::as_str)
                == Some(MANAGED_BY.1),
            state: wait::state(csr),
            asked: read_request(&csr.spec.request.0),
            checked: csr.clone(),
        }
    }

    /// Waiting for a decision: no Approved, Denied or Failed condition, no certificate.
    pub fn is_pending(&self) -> bool {
        self.state == State::Pending
    }

    /// Why `approve` refuses it, each reason a phrase; empty when it may be approved.
    pub fn refusals(&self) -> Vec<String> {
        if self.signer != SIGNER {
            // Nothing else matters: another signer's rules are not ours to judge.
            return vec![format!(
                "it is for signer {}, and kubectl onboard approves only {SIGNER} requests (client certificates for people); use kubectl certificate approve for other signers",
                self.signer
            )];
        }
        let mut why = Vec::new();
        if let Some(bad) = usage_problem(&self.usages) {
            why.push(bad);
        }
        match &self.asked {
            Err(e) => why.push(format!(
                "its spec.request is not a readable PKCS#10 certificate request ({e})"
            )),
            Ok(asked) => why.extend(subject_problems(asked)),
        }
        why
    }
}

/// The usages, checked as the signer will check them (and stricter: no server auth).
fn usage_problem(usages: &[String]) -> Option<String> {
    let strange: Vec<&str> = usages
        .iter()
        .map(String::as_str)
        .filter(|u| *u != REQUIRED_USAGE && !OPTIONAL_USAGES.contains(u))
        .collect();
    let quoted = |list: &[&str]| {
        list.iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rule = "a client certificate needs \"client auth\" and may add only \"digital signature\" and \"key encipherment\"";
    let client = usages.iter().any(|u| u == REQUIRED_USAGE);
    match (strange.is_empty(), client) {
        (true, true) => None,
        (true, false) => Some(format!("it does not ask for \"client auth\"; {rule}")),
        (false, true) => Some(format!(
            "it asks for usages {} besides \"client auth\"; {rule}",
            quoted(&strange)
        )),
        (false, false) => Some(format!(
            "it asks for usages {} instead of \"client auth\"; {rule}",
            quoted(&strange)
        )),
    }
}

fn subject_problems(asked: &Asked) -> Vec<String> {
    let mut why = Vec::new();
    if let Err(e) = &asked.signature {
        why.push(format!(
            "its self-signature does not verify ({e}), so it was not made with the key it carries"
        ));
    }
    match asked.common_names.as_slice() {
        [] => why.push("its subject names no user (no CN)".to_string()),
        [cn] if cn.is_empty() => why.push("its common name (CN) is empty".to_string()),
        [cn] if cn.chars().any(terminal::is_unsafe) => why.push(format!(
            "its common name '{}' holds control or bidirectional characters, which would disguise who it is for",
            cn.escape_default()
        )),
        [cn] if policy::user(cn).is_err() => why.push(format!(
            "it asks for user {cn}, in the system: namespace reserved for Kubernetes components"
        )),
        [_] => {}
        many => why.push(format!(
            "its subject has {} common names ({}); a certificate for one person has one",
            many.len(),
            many.join(", ")
        )),
    }
    match asked.alt_names {
        Some(0) => {}
        Some(n) => why.push(format!(
            "it asks for {n} subject alternative name(s), which the signer would copy into the certificate; a client certificate for a person needs none: ask for a request without them"
        )),
        None => why.push("its extension request cannot be read".to_string()),
    }
    for group in &asked.groups {
        if group.chars().any(terminal::is_unsafe) {
            why.push(format!(
                "its group '{}' holds control or bidirectional characters, which would disguise what it grants",
                group.escape_default()
            ));
            continue;
        }
        match policy::group(group, false) {
            Ok(()) => {}
            Err(Refused::Masters) => why.push(
                "it asks for group system:masters, which would make its holder a cluster administrator beyond the reach of RBAC (the CertificateSubjectRestriction admission plugin should have refused it: check that it is enabled)"
                    .to_string(),
            ),
            Err(_) => why.push(format!(
                "it asks for group {group}, in the system: namespace reserved for Kubernetes components"
            )),
        }
    }
    why
}

/// Reads the first PEM block of spec.request (the API server requires it to be a
/// `CERTIFICATE REQUEST`) and checks its self-signature.
pub fn read_request(pem: &[u8]) -> Result<Asked, String> {
    let (label, der) =
        // The first block, whatever its label (the API server took only that one).
        crate::pki::pem::decode(crate::pki::pem::block(pem, "").unwrap_or(pem)).map_err(|_| "not PEM".to_string())?;
    if label != "CERTIFICATE REQUEST" {
        return Err(format!("its PEM block is '{label}'"));
    }
    let request = CertReq::from_der(&der).map_err(|e| format!("bad DER: {e}"))?;
    let subject = &request.info.subject;
    let texts = |oid: ObjectIdentifier| -> Result<Vec<String>, String> {
        subject
            .iter()
            .filter(|a| a.oid == oid)
            .map(|a| {
                text(&a.value).ok_or_else(|| {
                    format!(
                        "a subject attribute {oid} in a string type ({}) that cannot be read",
                        a.value.tag()
                    )
                })
            })
            .collect()
    };
    let signature = csr::self_signature(&der, &request).map_err(|why| why.to_string());
    Ok(Asked {
        alt_names: crate::pki::requested_alt_names(&request),
        common_names: texts(oid::CN)?,
        groups: texts(oid::O)?,
        key: key_name(&request),
        public_key_der: request
            .info
            .public_key
            .to_der()
            .map_err(|e| format!("its public key cannot be encoded: {e}"))?,
        signature,
    })
}

/// `RSA-2048`, `ECDSA-P256`, `Ed25519`; anything else by its OID.
fn key_name(request: &CertReq) -> String {
    let spki = &request.info.public_key;
    match spki.algorithm.oid {
        oid::RSA => spki
            .subject_public_key
            .as_bytes()
            .and_then(|der| rsa_bits(der).ok())
            .map(|bits| format!("RSA-{bits}"))
            .unwrap_or_else(|| "RSA (unreadable)".into()),
        oid::EC => match spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        {
            Some(oid::P256) => "ECDSA-P256".into(),
            Some(oid::P384) => "ECDSA-P384".into(),
            Some(oid::P521) => "ECDSA-P521".into(),
            Some(curve) => format!("ECDSA ({curve})"),
            None => "ECDSA (unknown curve)".into(),
        },
        oid::ED25519 => "Ed25519".into(),
        oid => format!("unknown ({oid})"),
    }
}

/// The modulus size of a PKCS#1 RSAPublicKey, in bits.
fn rsa_bits(der: &[u8]) -> x509_cert::der::Result<usize> {
    let key = rsa::pkcs1::RsaPublicKey::<UintRef>::from_der(der)?;
    let bytes = key.modulus.as_bytes();
    Ok(match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr;
    use crate::pki::key::{KeyAlgorithm, KeySource, PrivateKey};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };

    fn key(alg: KeyAlgorithm) -> PrivateKey {
        PrivateKey::obtain(&KeySource::Generate(alg)).unwrap()
    }

    fn object(pem: &str, usages: &[&str], signer: &str) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: Default::default(),
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.as_bytes().to_vec()),
                signer_name: signer.into(),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                ..Default::default()
            },
            status: None,
        }
    }

    fn refusals(user: &str, groups: &[&str], usages: &[&str]) -> Vec<String> {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let pem = csr::build(user, &groups, &key(KeyAlgorithm::EcdsaP256)).unwrap();
        Reviewed::of(&object(&pem, usages, SIGNER)).refusals()
    }

    #[test]
    fn our_own_requests_read_back_with_their_key_type() {
        for (alg, name) in [
            (KeyAlgorithm::Rsa2048, "RSA-2048"),
            (KeyAlgorithm::Rsa3072, "RSA-3072"),
            (KeyAlgorithm::EcdsaP256, "ECDSA-P256"),
            (KeyAlgorithm::EcdsaP384, "ECDSA-P384"),
        ] {
            let pem = csr::build("jane", &["dev".into(), "ops".into()], &key(alg)).unwrap();
            let asked = read_request(pem.as_bytes()).unwrap();
            assert_eq!(asked.common_name(), Some("jane"));
            assert_eq!(asked.groups, ["dev", "ops"]);
            assert_eq!(asked.key, name);
            assert_eq!(asked.signature, Ok(()), "{name}");
        }
    }

    #[test]
    fn a_client_request_for_a_person_is_approvable() {
        assert!(refusals("jane", &["dev"], &["client auth"]).is_empty());
        assert!(
            refusals(
                "jane",
                &[],
                &["digital signature", "key encipherment", "client auth"]
            )
            .is_empty()
        );
    }

    #[test]
    fn wrong_usages_are_refused() {
        let why = refusals("jane", &[], &["server auth"]);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].contains("usages \"server auth\" instead of \"client auth\""),
            "{why:?}"
        );
        let why = refusals("jane", &[], &["digital signature"]);
        assert!(
            why[0].contains("does not ask for \"client auth\""),
            "{why:?}"
        );
        let why = refusals("jane", &[], &["client auth", "code signing"]);
        assert!(
            why[0].contains("\"code signing\" besides \"client auth\""),
            "{why:?}"
        );
    }

    #[test]
    fn system_names_are_refused() {
        let why = refusals("jane", &["dev", "system:masters"], &["client auth"]);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("system:masters"), "{why:?}");
        let why = refusals("system:kube-controller-manager", &[], &["client auth"]);
        assert!(why[0].contains("reserved"), "{why:?}");
        let why = refusals("jane", &["system:nodes"], &["client auth"]);
        assert!(why[0].contains("system:nodes"), "{why:?}");
    }

    #[test]
    fn another_signer_is_refused_whatever_it_asks() {
        let pem = csr::build("jane", &[], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        let why = Reviewed::of(&object(&pem, &["server auth"], "example.com/x")).refusals();
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("example.com/x"), "{why:?}");
    }

    #[test]
    fn a_tampered_request_does_not_verify() {
        let pem = csr::build("jane", &["dev".to_string()], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        let (_, mut der) = x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap();
        // Turn "dev" into "adm": the subject changes, the signature stays.
        let at = der.windows(3).position(|w| w == b"dev").unwrap();
        der[at..at + 3].copy_from_slice(b"adm");
        let tampered = x509_cert::der::pem::encode_string(
            "CERTIFICATE REQUEST",
            x509_cert::der::pem::LineEnding::LF,
            &der,
        )
        .unwrap();
        let asked = read_request(tampered.as_bytes()).unwrap();
        assert_eq!(asked.groups, ["adm"]);
        assert!(asked.signature.is_err());
        let why = Reviewed::of(&object(&tampered, &["client auth"], SIGNER)).refusals();
        assert!(why[0].contains("self-signature does not verify"), "{why:?}");
    }

    #[test]
    fn unreadable_requests_are_refused_not_panicked_on() {
        for junk in [
            "",
            "garbage",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE REQUEST-----\n",
        ] {
            assert!(read_request(junk.as_bytes()).is_err(), "{junk:?}");
            let why = Reviewed::of(&object(junk, &["client auth"], SIGNER)).refusals();
            assert!(why[0].contains("not a readable PKCS#10"), "{why:?}");
        }
    }

    #[test]
    fn the_self_signature_is_checked_over_the_request_as_received() {
        use crate::csr::received_bytes::unsorted_request;
        let pem = |der: Vec<u8>| {
            x509_cert::der::pem::encode_string("CERTIFICATE REQUEST", Default::default(), &der)
                .unwrap()
        };
        // Signed over the bytes sent: valid, though x509-cert would re-encode them otherwise.
        let honest = read_request(pem(unsorted_request(true)).as_bytes()).unwrap();
        assert_eq!(honest.signature, Ok(()));
        assert_eq!(honest.common_names, ["jane"]);
        // Signed over the re-encoding: the bytes sent were not what the key signed.
        let tampered = read_request(pem(unsorted_request(false)).as_bytes()).unwrap();
        assert!(tampered.signature.is_err(), "{tampered:?}");
        let why = Reviewed::of(&object(
            &pem(unsorted_request(false)),
            &["client auth"],
            SIGNER,
        ))
        .refusals();
        assert!(why.iter().any(|w| w.contains("signature")), "{why:?}");
    }

    #[test]
    fn subject_alternative_names_are_refused() {
        let scratch = crate::testing::Scratch::new("san");
        let args = [
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ][..],
            &["-nodes", "-keyout", "k.pem", "-subj", "/CN=jane/O=dev"],
            &[
                "-addext",
                "subjectAltName=DNS:kubernetes.default,IP:10.0.0.1",
            ],
        ]
        .concat();
        let pem = String::from_utf8(crate::testing::openssl(scratch.path(), &args)).unwrap();
        assert_eq!(read_request(pem.as_bytes()).unwrap().alt_names, Some(1));
        let why = Reviewed::of(&object(&pem, &["client auth"], SIGNER)).refusals();
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("subject alternative name"), "{why:?}");
        let refused = csr::read(pem.as_bytes()).unwrap_err();
        assert!(refused.contains("subject alternative names"), "{refused}");
        // Our own requests carry none.
        let ours = csr::build("jane", &[], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        assert_eq!(read_request(ours.as_bytes()).unwrap().alt_names, Some(0));
    }

    #[test]
    fn names_that_would_disguise_themselves_are_refused() {
        let why = refusals("eve\u{202E}nimda", &["dev"], &["client auth"]);
        assert!(why[0].contains("control or bidirectional"), "{why:?}");
        let why = refusals("jane", &["dev\x1b[2K"], &["client auth"]);
        assert!(why[0].contains("its group 'dev\\u{1b}[2K'"), "{why:?}");
        assert!(refusals("jane", &["dev"], &["client auth"]).is_empty());
    }

    #[test]
    fn only_the_first_pem_block_counts() {
        let pem = csr::build("jane", &[], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        let other = csr::build("eve", &[], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        let both = format!("{pem}{other}");
        let asked = read_request(both.as_bytes()).unwrap();
        assert_eq!(asked.common_names, ["jane"]);
    }

    #[test]
    fn state_and_label_are_read() {
        let pem = csr::build("jane", &[], &key(KeyAlgorithm::EcdsaP256)).unwrap();
        let mut csr = object(&pem, &["client auth"], SIGNER);
        assert!(Reviewed::of(&csr).is_pending());
        assert!(!Reviewed::of(&csr).onboard);
        csr.metadata.labels = Some([(MANAGED_BY.0.into(), MANAGED_BY.1.into())].into());
        assert!(Reviewed::of(&csr).onboard);
        csr.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Denied".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            certificate: None,
        });
        assert!(!Reviewed::of(&csr).is_pending());
    }
}
