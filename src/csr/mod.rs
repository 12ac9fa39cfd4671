//! The PKCS#10 request (built in the pipeline's certify step). Subject CN=<user> and one O per
//! group, built attribute by attribute (no RFC 4514 string, so a comma or plus in a name is just a
//! character), in the order `openssl req -subj "/CN=jane/O=dev"` writes. And the other way round,
//! for `kubectl onboard sign`: a request someone else made, checked and read.

pub mod hint;
pub mod issue;
pub mod queue;
pub mod review;
pub mod submit;
pub mod wait;

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::RequestBuilder;
use x509_cert::der::asn1::{Any, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, Version};

use crate::error::{Error, Result};
use crate::pki::key::{self, PrivateKey};
use crate::pki::signature::{self, BadSignature};
use crate::pki::{self as pki, oid, pem};

/// The PEM `CERTIFICATE REQUEST` for `user` in `groups`, signed with `key`.
pub fn build(user: &str, groups: &[String], key: &PrivateKey) -> Result<String> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::failed(format!("cannot build the certificate request: {e}"))
    };
    let builder = RequestBuilder::new(subject(user, groups).map_err(|e| failed(&e))?)
        .map_err(|e| failed(&e))?;
    let request = key.sign(builder).map_err(|e| failed(&e))?;
    request.to_pem(LineEnding::LF).map_err(|e| failed(&e))
}

/// CN first, then the groups: the DER order of `openssl req -subj "/CN=u/O=g"`.
pub fn subject(user: &str, groups: &[String]) -> x509_cert::der::Result<Name> {
    let mut rdns = RdnSequence::default();
    rdns.push(attribute(oid::CN, user)?);
    for group in groups {
        rdns.push(attribute(oid::O, group)?);
    }
    // Name wraps RdnSequence privately; both encode as the same SEQUENCE.
    Name::from_der(&rdns.to_der()?)
}

fn attribute(
    oid: ObjectIdentifier,
    value: &str,
) -> x509_cert::der::Result<RelativeDistinguishedName> {
    let value = Any::encode_from(&Utf8StringRef::new(value)?)?;
    RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue { oid, value }])
}

/// A certificate request made elsewhere, its self-signature checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The subject's CN.
    pub user: String,
    /// The subject's O attributes, in order.
    pub groups: Vec<String>,
    /// DER SubjectPublicKeyInfo of the requester's key.
    pub public_key_der: Vec<u8>,
    /// `RSA-2048`, `ECDSA-P256`.
    pub key_algorithm: String,
    pub rsa: bool,
    /// The request as it came, as one PEM `CERTIFICATE REQUEST` block.
    pub pem: String,
    /// Subject attributes other than CN and O (Kubernetes ignores them), as OIDs.
    pub ignored_attributes: Vec<String>,
}

/// Reads a PKCS#10 request: PEM (`CERTIFICATE REQUEST`, or the older `NEW CERTIFICATE
/// REQUEST`, text around it allowed, as `openssl req -text` writes) or DER. Refuses one whose
/// signature does not match its contents: changed after it was signed. Errors never quote it.
/// Long because it is a parser of untrusted input: each step (PEM, DER, signature, extensions,
/// subject) says in its own words what is wrong, in the order a reviewer would check.
pub fn read(input: &[u8]) -> Result<Received, String> {
    let der = match pem::block(input, "CERTIFICATE REQUEST") {
        Some(block) => {
            crate::pki::pem::decode(block)
                .map_err(|_| "its CERTIFICATE REQUEST block is not valid PEM".to_string())?
                .1
        }
        None if input.first() == Some(&0x30) => input.to_vec(),
        None if pem::block(input, "PRIVATE KEY").is_some() => {
            return Err(
                "it holds a private key, not a certificate request: a private key must never be sent; send only the .csr file"
                    .into(),
            );
        }
        None => {
            return Err(
                "it holds no PEM CERTIFICATE REQUEST (openssl req -new … -out FILE writes one)"
                    .into(),
            );
        }
    };
    let corrupt = || "its certificate request is corrupt (not PKCS#10 DER)".to_string();
    let request = CertReq::from_der(&der).map_err(|_| corrupt())?;
    if request.info.version != Version::V1 {
        return Err(corrupt());
    }
    let public_key_der = request.info.public_key.to_der().map_err(|_| corrupt())?;
    match self_signature(&der, &request) {
        Ok(()) => {}
        Err(why @ BadSignature::Unsupported { .. }) => {
            return Err(format!("its signature cannot be checked: {why}"));
        }
        Err(BadSignature::Invalid(_)) => {
            return Err("its signature does not match its contents: it was changed after it was signed, or is corrupt; ask for a fresh request".to_string());
        }
    }
    match crate::pki::requested_alt_names(&request) {
        Some(0) => {}
        Some(_) => {
            return Err("it asks for subject alternative names, which the signer would copy into the certificate; a client certificate for a person needs none: make the request without them".into());
        }
        None => return Err("its extension request is corrupt".into()),
    }
    let (key_algorithm, rsa) = key::describe_public_key(&public_key_der)?;

    let mut user = None;
    let mut groups = Vec::new();
    let mut ignored_attributes = Vec::new();
    for attribute in request.info.subject.iter() {
        let value = || {
            pki::text(&attribute.value).ok_or_else(|| {
                format!(
                    "its subject attribute {} is not a UTF-8 or printable string",
                    attribute.oid
                )
            })
        };
        match attribute.oid {
            oid::CN if user.is_some() => {
                return Err("its subject has more than one CN: which user would it be?".into());
            }
            oid::CN => user = Some(value()?),
            oid::O => groups.push(value()?),
            oid => ignored_attributes.push(oid.to_string()),
        }
    }
    let user = user.ok_or_else(|| {
        "its subject has no CN, which would be the user name (openssl req -subj \"/CN=jane/O=dev\")"
            .to_string()
    })?;
    let pem = x509_cert::der::pem::encode_string("CERTIFICATE REQUEST", LineEnding::LF, &der)
        .map_err(|_| corrupt())?;
    Ok(Received {
        user,
        groups,
        public_key_der,
        key_algorithm,
        rsa,
        pem,
        ignored_attributes,
    })
}

/// Whether the request `der` (parsed as `request`) is signed by the key it carries: checked
/// over the CertificationRequestInfo exactly as it came, not as we would re-encode it.
pub fn self_signature(der: &[u8], request: &CertReq) -> Result<(), BadSignature> {
    let invalid = |e: &dyn std::fmt::Display| BadSignature::Invalid(e.to_string());
    let signed = signature::signed_part(der).map_err(|e| invalid(&e))?;
    let public_key_der = request.info.public_key.to_der().map_err(|e| invalid(&e))?;
    let bits = request
        .signature
        .as_bytes()
        .ok_or_else(|| BadSignature::Invalid("the signature has unused bits".into()))?;
    signature::verify(&public_key_der, request.algorithm.oid, signed, bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::key::{KeyAlgorithm, KeySource};
    use x509_cert::builder::Builder;
    use x509_cert::der::DecodePem;
    use x509_cert::request::CertReq;

    fn names(name: &Name) -> Vec<(ObjectIdentifier, String)> {
        name.iter()
            .map(|a| {
                (
                    a.oid,
                    Utf8StringRef::try_from(&a.value)
                        .unwrap()
                        .as_str()
                        .to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn subject_holds_cn_then_each_group_verbatim() {
        let groups = vec!["dev".to_string(), "ops, eu+x".to_string()];
        let name = subject("jane", &groups).unwrap();
        assert_eq!(
            names(&name),
            vec![
                (oid::CN, "jane".to_string()),
                (oid::O, "dev".to_string()),
                (oid::O, "ops, eu+x".to_string())
            ]
        );
    }

    #[test]
    fn request_is_pem_and_carries_our_public_key() {
        let key = PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::EcdsaP256)).unwrap();
        let pem = build("jane", &["dev".into()], &key).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        let req = CertReq::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(req.info.public_key.to_der().unwrap(), key.public_key_der());
        assert_eq!(names(&req.info.subject)[0], (oid::CN, "jane".to_string()));
    }

    fn ecdsa() -> PrivateKey {
        PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::EcdsaP256)).unwrap()
    }

    #[test]
    fn a_request_reads_back_as_built_in_pem_der_and_with_text_around_it() {
        let key = ecdsa();
        let groups = vec!["dev".to_string(), "ops".to_string()];
        let pem = build("jane", &groups, &key).unwrap();
        let got = read(pem.as_bytes()).unwrap();
        assert_eq!(got.user, "jane");
        assert_eq!(got.groups, groups);
        assert_eq!(got.public_key_der, key.public_key_der());
        assert_eq!((got.key_algorithm.as_str(), got.rsa), ("ECDSA-P256", false));
        assert_eq!(got.pem, pem);
        let texted = format!("Certificate Request:\n    Data: …\n{pem}");
        assert_eq!(read(texted.as_bytes()).unwrap(), got);
        let der = CertReq::from_pem(pem.as_bytes()).unwrap().to_der().unwrap();
        assert_eq!(read(&der).unwrap(), got);
        let old_label = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert_eq!(
            read(old_label.as_bytes()).unwrap().public_key_der,
            got.public_key_der
        );
    }

    #[test]
    fn a_changed_request_is_refused() {
        let key = ecdsa();
        let pem = build("jane", &["dev".into()], &key).unwrap();
        let mut der = CertReq::from_pem(pem.as_bytes()).unwrap().to_der().unwrap();
        let at = der.windows(3).position(|w| w == b"dev").unwrap();
        der[at..at + 3].copy_from_slice(b"adm");
        let err = read(&der).unwrap_err();
        assert!(err.contains("changed after it was signed"), "{err}");
    }

    #[test]
    fn what_is_not_a_usable_request_is_named() {
        let key = ecdsa();
        assert!(
            read(key.to_pem().as_bytes())
                .unwrap_err()
                .contains("private key")
        );
        assert!(
            read(b"hello")
                .unwrap_err()
                .contains("no PEM CERTIFICATE REQUEST")
        );
        let bad = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(read(bad.as_bytes()).unwrap_err().contains("corrupt"));
        // A subject without CN: signed, but for no user.
        let builder =
            RequestBuilder::new(Name::from_der(&RdnSequence::default().to_der().unwrap()).unwrap())
                .unwrap();
        let PrivateKey::P256(k) = &key else {
            unreachable!()
        };
        let request = builder
            .build::<_, p256::ecdsa::DerSignature>(&p256::ecdsa::SigningKey::from(k))
            .unwrap();
        let err = read(&request.to_der().unwrap()).unwrap_err();
        assert!(err.contains("no CN"), "{err}");
    }
}

#[cfg(test)]
pub(crate) mod received_bytes {
    //! The self-signature covers the CertificationRequestInfo as received. A request whose info
    //! the parser reads but would re-encode differently tells the two apart.
    use super::*;
    use crate::pki::key::{KeyAlgorithm, KeySource};
    use p256::ecdsa::signature::Signer;

    /// DER TLV with a definite length.
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match body.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(body);
        out
    }

    /// A request for CN=jane, O=dev whose subject is one RDN out of DER order: x509-cert reads
    /// it and re-encodes it sorted. Its signature is over the info as sent when
    /// `sign_what_is_sent`, else over the re-encoding (what a tampering party could exploit).
    pub(crate) fn unsorted_request(sign_what_is_sent: bool) -> Vec<u8> {
        let PrivateKey::P256(secret) =
            PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::EcdsaP256)).unwrap()
        else {
            unreachable!()
        };
        let key = PrivateKey::P256(secret.clone());
        let pem = build("jane", &["dev".to_string()], &key).unwrap();
        let der = x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap().1;
        let request = CertReq::from_der(&der).unwrap();
        // One RDN holding CN and O, in that order: a SET OF out of DER order.
        let atv = |oid_last: u8, value: &[u8]| {
            tlv(
                0x30,
                &[&[0x06, 0x03, 0x55, 0x04, oid_last][..], &tlv(0x0c, value)].concat(),
            )
        };
        let rdn = tlv(0x31, &[atv(0x03, b"jane"), atv(0x0a, b"dev")].concat());
        let subject = tlv(0x30, &rdn);
        let spki = request.info.public_key.to_der().unwrap();
        let odd = tlv(
            0x30,
            &[&[0x02, 0x01, 0x00][..], &subject, &spki, &[0xa0, 0x00]].concat(),
        );
        let signer = p256::ecdsa::SigningKey::from(&secret);
        let canonical = CertReq::from_der(&tlv(
            0x30,
            &[
                odd.clone(),
                request.algorithm.to_der().unwrap(),
                tlv(0x03, &[0]),
            ]
            .concat(),
        ))
        .map(|r| r.info.to_der().unwrap())
        .unwrap();
        let signed = if sign_what_is_sent { &odd } else { &canonical };
        let sig: p256::ecdsa::DerSignature = signer.sign(signed);
        let algorithm = request.algorithm.to_der().unwrap();
        let bits = tlv(0x03, &[&[0u8][..], sig.as_bytes()].concat());
        let whole = tlv(0x30, &[odd.clone(), algorithm, bits].concat());
        assert_ne!(
            canonical, odd,
            "the parser must re-encode this info differently"
        );
        whole
    }

    fn to_pem(der: &[u8]) -> Vec<u8> {
        x509_cert::der::pem::encode_string("CERTIFICATE REQUEST", LineEnding::LF, der)
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn the_self_signature_is_checked_over_the_info_as_received() {
        let honest = unsorted_request(true);
        assert_eq!(
            self_signature(&honest, &CertReq::from_der(&honest).unwrap()),
            Ok(())
        );
        let received = read(&to_pem(&honest)).unwrap();
        assert_eq!(
            (received.user.as_str(), received.groups.as_slice()),
            ("jane", &["dev".to_string()][..])
        );

        // Signed over the re-encoding, not over what was sent: not the requester's signature.
        let tampered = unsorted_request(false);
        let why = self_signature(&tampered, &CertReq::from_der(&tampered).unwrap()).unwrap_err();
        assert!(matches!(why, BadSignature::Invalid(_)), "{why:?}");
        let refused = read(&to_pem(&tampered)).unwrap_err();
        assert!(refused.contains("does not match its contents"), "{refused}");
    }
}
