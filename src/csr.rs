//! Step 2: the PKCS#10 request. Subject CN=<user> and one O per group, built attribute by
//! attribute (no RFC 4514 string, so a comma or plus in a name is just a character), in the
//! order `openssl req -subj "/CN=jane/O=dev"` writes.

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, RequestBuilder};
use x509_cert::der::asn1::{Any, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};
use crate::key::PrivateKey;

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
}
