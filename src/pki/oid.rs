//! Object identifiers, once.

use x509_cert::der::oid::ObjectIdentifier;

const fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(dotted)
}

// Subject attributes: the user (CN) and its groups (O).
pub const CN: ObjectIdentifier = oid("2.5.4.3");
pub const O: ObjectIdentifier = oid("2.5.4.10");

// Public key algorithms and curves.
pub const RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.1");
pub const EC: ObjectIdentifier = oid("1.2.840.10045.2.1");
pub const ED25519: ObjectIdentifier = oid("1.3.101.112");
pub const P256: ObjectIdentifier = oid("1.2.840.10045.3.1.7");
pub const P384: ObjectIdentifier = oid("1.3.132.0.34");
pub const P521: ObjectIdentifier = oid("1.3.132.0.35");

// Signature algorithms.
pub const SHA256_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.11");
pub const SHA384_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.12");
pub const SHA512_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.13");
pub const ECDSA_SHA256: ObjectIdentifier = oid("1.2.840.10045.4.3.2");
pub const ECDSA_SHA384: ObjectIdentifier = oid("1.2.840.10045.4.3.3");

// Certificate extensions.
pub const SUBJECT_ALT_NAME: ObjectIdentifier = oid("2.5.29.17");

// Extended key usage.
pub const CLIENT_AUTH: ObjectIdentifier = oid("1.3.6.1.5.5.7.3.2");
