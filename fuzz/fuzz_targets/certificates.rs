//! The issued certificate: `verify::check` (PEM chain → leaf checks → CA signature) and
//! `verify::inspect`, on arbitrary bytes.
//!
//! Input: a PEM chain (`-----BEGIN`), leaf first, that is also used as the "cluster CA bundle";
//! anything else is taken as one DER certificate and also wrapped as PEM, so that mutations
//! reach the DER parser without having to keep base64 valid. The expected key is the fixed
//! P-256 key in fuzz/keys/ (the seed certificates are issued for it, CN=jane, O=dev), so inputs
//! get past the key check to the subject, validity and signature checks.
//!
//! Properties: no panic; a certificate that passes `check` comes back as PEM of exactly the
//! certificate that was issued (the bytes the signer signed), with the same subject and validity.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use kubectl_onboard::pki::key::parse_pem;
use kubectl_onboard::pki::verify::{self, Expected};
use libfuzzer_sys::fuzz_target;
use pkcs8::LineEnding;
use pkcs8::der::pem;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The SubjectPublicKeyInfo of the fixed key (what `Expected` compares the certificate with).
static KEY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    parse_pem(include_bytes!("../keys/fuzz-p256.pem"))
        .expect("the fixed fuzz key")
        .public_key_der()
});

/// Inside the seed certificates' validity (they are issued for 100 years from 2026).
const NOW: Duration = Duration::from_secs(1_893_456_000); // 2030-01-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    let groups = ["dev".to_string()];
    let expected = Expected {
        user: "jane",
        groups: &groups,
        public_key_der: &KEY,
        duration: Some(Duration::from_secs(365 * 86_400)),
        ca_pem: Some(data),
        now: SystemTime::UNIX_EPOCH + NOW,
    };

    if data.windows(10).any(|w| w == b"-----BEGIN") {
        if let Ok(chain) = Certificate::load_pem_chain(data) {
            look_at(&chain);
        }
        checked(data, &expected);
        checked(
            data,
            &Expected {
                ca_pem: None,
                duration: None,
                ..expected
            },
        );
    } else if let Ok(cert) = Certificate::from_der(data) {
        look_at(std::slice::from_ref(&cert));
        // The signature over the input's own TBSCertificate bytes, self-signed or not.
        let _ = verify::verify_signature(data, &cert);
        if let Ok(text) = pem::encode_string("CERTIFICATE", LineEnding::LF, data) {
            checked(
                text.as_bytes(),
                &Expected {
                    ca_pem: Some(text.as_bytes()),
                    ..expected
                },
            );
        }
    }
});

/// What we read from each certificate, and each one's signature checked by each (at most 4).
fn look_at(chain: &[Certificate]) {
    for cert in chain {
        let _ = verify::inspect(cert);
    }
    for cert in chain.iter().take(4) {
        for ca in chain.iter().take(4) {
            if let Ok(der) = cert.to_der() {
                let _ = verify::verify_signature(&der, ca);
            }
        }
    }
}

fn checked(issued: &[u8], expected: &Expected) {
    let Ok(verified) = verify::certificate(issued, expected) else {
        return;
    };
    let back = Certificate::load_pem_chain(verified.pem.as_bytes())
        .expect("the leaf PEM we hand out parses");
    assert_eq!(back.len(), 1);
    let info = verify::inspect(&back[0]).expect("inspect the leaf we hand out");
    assert_eq!(info, verified.info);
    assert_eq!(info.common_name.as_deref(), Some(expected.user));
    let _ = verify::rfc3339(info.not_after);

    // What goes into the kubeconfig must be the certificate the signer issued, byte for byte:
    // any re-encoding invalidates its signature. (der's `from_pem` reads the first DER value of
    // the block and ignores what follows, so only that prefix is compared; a block that is not
    // valid base64 throughout has no well-defined "issued bytes" and is skipped.)
    let (_, handed_out) = pem::decode_vec(verified.pem.as_bytes()).expect("our PEM decodes");
    if let Some(issued_der) = first_block(issued)
        && !issued_der.starts_with(&handed_out)
    {
        panic!(
            "check() hands out a re-encoded certificate, not the issued one\n issued:      {}\n handed out:  {}",
            hex(&issued_der),
            hex(&handed_out)
        );
    }
}

/// The DER of the first CERTIFICATE block as the signer wrote it, found as openssl finds blocks
/// (`pki::pem::block`): a header line with more after its closing dashes is no header, so a
/// block that starts `-----BEGIN CERTIFICATE-----MIIB…` is passed over, by openssl too. (An
/// earlier version split where der's strict decoder does, which accepts such a header: the
/// fuzzer then took the second certificate we hand out for a re-encoding of the first.)
fn first_block(text: &[u8]) -> Option<Vec<u8>> {
    let block = kubectl_onboard::pki::pem::block(text, "CERTIFICATE")?;
    kubectl_onboard::pki::pem::decode(block)
        .ok()
        .map(|(_, der)| der)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
