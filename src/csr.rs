//! Step 2: the PKCS#10 request. Subject CN=<user> and one O per group, built attribute by
//! attribute (no RFC 4514 string, so a comma or plus in a name is just a character), in the
//! order `openssl req -subj "/CN=jane/O=dev"` writes. And the other way round, for
//! `kubectl onboard sign`: a request someone else made, checked and read.

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::der::asn1::{Any, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Decode, Encode, EncodePem, Header, Reader, SliceReader};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, Version};

use crate::error::{Error, Result};
use crate::key::{self, PrivateKey};
use crate::verify;

pub const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

/// The PEM `CERTIFICATE REQUEST` for `user` in `groups`, signed with `key`.
pub fn build(user: &str, groups: &[String], key: &PrivateKey) -> Result<String> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::failed(format!("cannot build the certificate request: {e}"))
    };
    let builder = RequestBuilder::new(subject(user, groups).map_err(|e| failed(&e))?)
        .map_err(|e| failed(&e))?;
    let request = match key {
        PrivateKey::Rsa(k) => {
            let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
            builder.build::<_, rsa::pkcs1v15::Signature>(&signer)
        }
        PrivateKey::P256(k) => {
            builder.build::<_, p256::ecdsa::DerSignature>(&p256::ecdsa::SigningKey::from(k))
        }
        PrivateKey::P384(k) => {
            builder.build::<_, p384::ecdsa::DerSignature>(&p384::ecdsa::SigningKey::from(k))
        }
    }
    .map_err(|e| failed(&e))?;
    request.to_pem(LineEnding::LF).map_err(|e| failed(&e))
}

/// CN first, then the groups: the DER order of `openssl req -subj "/CN=u/O=g"`.
pub fn subject(user: &str, groups: &[String]) -> x509_cert::der::Result<Name> {
    let mut rdns = RdnSequence::default();
    rdns.push(attribute(OID_CN, user)?);
    for group in groups {
        rdns.push(attribute(OID_O, group)?);
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
pub fn read(input: &[u8]) -> Result<Received, String> {
    let der = match pem_block(input, "CERTIFICATE REQUEST") {
        Some(block) => {
            x509_cert::der::pem::decode_vec(block)
                .map_err(|_| "its CERTIFICATE REQUEST block is not valid PEM".to_string())?
                .1
        }
        None if input.first() == Some(&0x30) => input.to_vec(),
        None if pem_block(input, "PRIVATE KEY").is_some() => {
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
    // The signature covers the request info exactly as it came, not as we would re-encode it.
    let signed = SliceReader::new(&der)
        .and_then(|mut r| {
            Header::decode(&mut r)?; // the outer SEQUENCE; its first element is the info
            r.tlv_bytes()
        })
        .map_err(|_| corrupt())?;
    let public_key_der = request.info.public_key.to_der().map_err(|_| corrupt())?;
    let signature = request
        .signature
        .as_bytes()
        .ok_or_else(|| "its signature is malformed".to_string())?;
    verify::verify_with(&public_key_der, request.algorithm.oid, signed, signature).map_err(
        |why| {
            if why.contains("not supported") {
                format!("its signature cannot be checked: {why}")
            } else {
                "its signature does not match its contents: it was changed after it was signed, or is corrupt; ask for a fresh request".to_string()
            }
        },
    )?;
    let (key_algorithm, rsa) = key::describe_public_key(&public_key_der)?;

    let mut user = None;
    let mut groups = Vec::new();
    let mut ignored_attributes = Vec::new();
    for attribute in request.info.subject.iter() {
        let value = || {
            verify::text(&attribute.value).ok_or_else(|| {
                format!(
                    "its subject attribute {} is not a UTF-8 or printable string",
                    attribute.oid
                )
            })
        };
        match attribute.oid {
            OID_CN if user.is_some() => {
                return Err("its subject has more than one CN: which user would it be?".into());
            }
            OID_CN => user = Some(value()?),
            OID_O => groups.push(value()?),
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

/// The first PEM block whose label ends with `label` (`NEW CERTIFICATE REQUEST` and `EC PRIVATE
/// KEY` count), without what surrounds it.
fn pem_block<'a>(input: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let text = std::str::from_utf8(input).ok()?;
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let begin = from + i;
        let line_end = text[begin..].find('\n').map_or(text.len(), |j| begin + j);
        let header = text[begin..line_end].trim_end();
        if header.ends_with(&format!("{label}-----")) {
            let name = &header["-----BEGIN ".len()..header.len() - 5];
            let footer = format!("-----END {name}-----");
            let end = text[line_end..].find(&footer)? + line_end + footer.len();
            return Some(&input[begin..end]);
        }
        from = line_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyAlgorithm, KeySource};
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
                (OID_CN, "jane".to_string()),
                (OID_O, "dev".to_string()),
                (OID_O, "ops, eu+x".to_string())
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
        assert_eq!(names(&req.info.subject)[0], (OID_CN, "jane".to_string()));
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
