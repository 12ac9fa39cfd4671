//! Signatures, checked over the bytes as they were signed: the TBSCertificate of a certificate
//! and the CertificationRequestInfo of a request exactly as they stand in the DER received. A
//! re-encoding of the parsed value can differ (x509-cert writes a GeneralizedTime before 2050
//! as UTCTime, and accepts a TBSCertificate whose length runs past its fields), and then a
//! valid signature would fail or, worse, a forged one could pass.

use std::fmt;

use rsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Reader, SliceReader};
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::oid;

/// Why a signature is not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadSignature {
    /// An algorithm (or key type) we do not check: neither valid nor invalid, unknown.
    Unsupported {
        algorithm: ObjectIdentifier,
        key: ObjectIdentifier,
    },
    /// The signature does not verify, or key or signature cannot be decoded.
    Invalid(String),
}

impl fmt::Display for BadSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadSignature::Unsupported { algorithm, key } => write!(
                f,
                "signature algorithm {algorithm} with a {key} key is not supported"
            ),
            BadSignature::Invalid(why) => f.write_str(why),
        }
    }
}

/// The first element of a signed structure's outer SEQUENCE (`{ signed, algorithm,
/// signature }`, as certificates and PKCS#10 requests are), as encoded in `der`.
pub fn signed_part(der: &[u8]) -> x509_cert::der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let signed = reader.sequence(|fields| {
        let signed = fields.tlv_bytes()?;
        fields.tlv_bytes()?; // signatureAlgorithm
        fields.tlv_bytes()?; // signature
        Ok::<_, x509_cert::der::Error>(signed)
    })?;
    reader.finish()?;
    Ok(signed)
}

/// Whether `signature` (made with `algorithm`) over `signed` verifies with the public key
/// `spki_der` (a DER SubjectPublicKeyInfo): RSA PKCS#1 v1.5 (SHA-256/384/512) and ECDSA
/// P-256/P-384 (SHA-256/384), what Kubernetes CAs and our requests use.
pub fn verify(
    spki_der: &[u8],
    algorithm: ObjectIdentifier,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), BadSignature> {
    let invalid = |e: &dyn fmt::Display| BadSignature::Invalid(e.to_string());
    let spki = SubjectPublicKeyInfoRef::try_from(spki_der).map_err(|e| invalid(&e))?;
    match (algorithm, spki.algorithm.oid) {
        (oid::SHA256_RSA, oid::RSA) => verify_rsa::<sha2::Sha256>(spki, signed, signature),
        (oid::SHA384_RSA, oid::RSA) => verify_rsa::<sha2::Sha384>(spki, signed, signature),
        (oid::SHA512_RSA, oid::RSA) => verify_rsa::<sha2::Sha512>(spki, signed, signature),
        (oid::ECDSA_SHA256 | oid::ECDSA_SHA384, oid::EC) => {
            // The key's curve and the hash are independent of each other.
            let digest = if algorithm == oid::ECDSA_SHA256 {
                sha2::Sha256::digest(signed).to_vec()
            } else {
                sha2::Sha384::digest(signed).to_vec()
            };
            if let Ok(vk) = p256::ecdsa::VerifyingKey::try_from(spki.clone()) {
                let sig =
                    p256::ecdsa::DerSignature::try_from(signature).map_err(|e| invalid(&e))?;
                vk.verify_prehash(&digest, &sig).map_err(|e| invalid(&e))
            } else {
                let vk = p384::ecdsa::VerifyingKey::try_from(spki).map_err(|e| invalid(&e))?;
                let sig =
                    p384::ecdsa::DerSignature::try_from(signature).map_err(|e| invalid(&e))?;
                vk.verify_prehash(&digest, &sig).map_err(|e| invalid(&e))
            }
        }
        (algorithm, key) => Err(BadSignature::Unsupported { algorithm, key }),
    }
}

/// PKCS#1 v1.5 with digest `D`.
fn verify_rsa<D>(
    spki: SubjectPublicKeyInfoRef,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), BadSignature>
where
    D: Digest + pkcs8::AssociatedOid,
{
    let invalid = |e: &dyn fmt::Display| BadSignature::Invalid(e.to_string());
    let key = rsa::pkcs1v15::VerifyingKey::<D>::try_from(spki).map_err(|e| invalid(&e))?;
    let signature = rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| invalid(&e))?;
    key.verify_prehash(&D::digest(signed), &signature)
        .map_err(|e| invalid(&e))
}
