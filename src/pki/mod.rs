//! The X.509 toolkit every step shares: object identifiers, PEM blocks, the text of X.509
//! string values, and signatures checked over the bytes as they were signed. Pure: no I/O.
//!
//! Keys (`key`, and `keystore` for where they are written), certificate checks (`verify`) and
//! local signing with a CA (`authority`) live here too; request building and reading is
//! `csr/`. All of them take their OIDs, PEM and signature checks from here.

pub mod authority;
pub mod key;
pub mod keystore;
pub mod oid;
pub mod pem;
pub mod signature;
pub mod verify;

use x509_cert::der::asn1::{
    BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef,
};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Any, Tag, Tagged};
use x509_cert::request::{CertReq, ExtensionReq};

/// SHA-256 of `der`, lowercase hex: a certificate's fingerprint, as the API server's credential
/// id and `openssl x509 -fingerprint -sha256` name it.
pub fn sha256_hex(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A subject attribute as text, in the string types Go's x509 reads (what the API server's
/// authenticator sees). `None` for anything else: we do not accept what we cannot read.
pub fn text(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.to_string()),
        Tag::TeletexString => TeletexStringRef::try_from(value)
            .ok()
            .map(|s| s.to_string()),
        Tag::BmpString => value.decode_as::<BmpString>().ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// The subject alternative names a PKCS#10 request asks for (in its extensionRequest): the
/// kube-apiserver-client signer copies them into the certificate. How many, and whether the
/// extension can be read at all (`None`: it cannot, which counts as asking).
pub fn requested_alt_names(request: &CertReq) -> Option<usize> {
    let mut count = 0;
    for attribute in request.info.attributes.iter() {
        if attribute.oid != ExtensionReq::OID {
            continue;
        }
        for value in attribute.values.iter() {
            let extensions = value.decode_as::<ExtensionReq>().ok()?;
            count += extensions
                .0
                .iter()
                .filter(|e| e.extn_id == oid::SUBJECT_ALT_NAME)
                .count();
        }
    }
    Some(count)
}
