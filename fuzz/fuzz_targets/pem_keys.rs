//! `--key FILE`: `key::parse_pem` on arbitrary bytes.
//!
//! Input: either text with a PEM block (`-----BEGIN`), parsed as it is, or `selector DER`: raw
//! DER that is wrapped as PEM, labelled by `selector % 4` (PKCS#8, PKCS#1, SEC1, encrypted
//! PKCS#8), so that mutations reach the DER parsers without having to keep base64 valid.
//!
//! Properties: no panic; a key that parses writes out as PKCS#8 PEM (`to_pem`) that parses
//! back to the same public key and algorithm.

#![no_main]

use kubectl_onboard::pki::key::parse_pem;
use libfuzzer_sys::fuzz_target;
use pkcs8::LineEnding;
use pkcs8::der::pem;

const LABELS: [&str; 4] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((&selector, der)) = data.split_first()
        && !contains(data, b"-----BEGIN")
    {
        let label = LABELS[selector as usize % LABELS.len()];
        if let Ok(text) = pem::encode_string(label, LineEnding::LF, der) {
            check(text.as_bytes());
        }
    }
});

fn check(input: &[u8]) {
    let Ok(key) = parse_pem(input) else {
        return;
    };
    let public = key.public_key_der();
    let written = key.to_pem();
    assert!(written.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let back = parse_pem(written.as_bytes()).unwrap_or_else(|e| {
        panic!(
            "a {} key we wrote does not parse back: {e}",
            key.algorithm()
        )
    });
    assert_eq!(back.algorithm(), key.algorithm());
    assert_eq!(
        back.public_key_der(),
        public,
        "the public key changed on a PKCS#8 round trip"
    );
    // And once more: PKCS#8 output is a fixed point.
    assert_eq!(*back.to_pem(), *written, "PKCS#8 output is not stable");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
