//! Whether an inventory record can be trusted. Anyone who may create ConfigMaps in the
//! inventory's namespace (which recording needs) can write a record naming any user, approver
//! and fingerprint, so a record is believed only when it holds together: its certificate is
//! there, its name and fingerprint are that certificate's SHA-256, the certificate's subject is
//! the record's user and groups, its end is the record's, and (when the cluster's client CA can
//! be read) the CA signed it. Pure: the caller reads the objects and the CA.

use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::{Record, fingerprint};
use crate::pki::verify;

/// Why the record `name`, holding certificate `pem`, cannot be trusted; `None` when it holds
/// together. `client_cas`: the cluster's client CAs (empty: the issuer is not checked).
pub fn problem(
    name: &str,
    record: &Record,
    pem: Option<&str>,
    client_cas: &[Certificate],
) -> Option<String> {
    let Some(pem) = pem else {
        return Some("it holds no certificate".into());
    };
    let Ok(der) = verify::first_certificate_der(pem.as_bytes()) else {
        return Some("its certificate cannot be read".into());
    };
    let Ok(certificate) = Certificate::from_der(&der) else {
        return Some("its certificate cannot be read".into());
    };
    let actual = fingerprint(&der);
    if record.fingerprint != actual || name != record.object_name() {
        return Some(format!(
            "its name or fingerprint is not its certificate's (SHA-256 {actual})"
        ));
    }
    let Ok(info) = verify::inspect(&certificate) else {
        return Some("its certificate cannot be read".into());
    };
    if info.common_names.as_slice() != [record.user.as_str()] || info.organizations != record.groups
    {
        return Some(format!(
            "its certificate is for CN={} O={}, not for the user and groups it names",
            info.common_names.join("+"),
            info.organizations.join(",")
        ));
    }
    if verify::rfc3339(info.not_after) != record.not_after {
        return Some("its end date is not its certificate's".into());
    }
    if !client_cas.is_empty() && !verify::signed_by_any(&certificate, &der, client_cas) {
        return Some("its certificate was not issued by the cluster's client CA".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by openssl for `subject`, signed by a CA made alongside; (cert, ca).
    fn issued(dir: &std::path::Path, subject: &str) -> (String, Certificate) {
        let run = |args: &[&str]| crate::testing::openssl(dir, args);
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=test-ca",
            "-days",
            "2",
        ]);
        run(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "u.key",
            "-out",
            "u.csr",
            "-subj",
            subject,
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "u.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "u.crt",
            "-days",
            "1",
        ]);
        let cert = std::fs::read_to_string(dir.join("u.crt")).unwrap();
        let ca = crate::pki::pem::certificates(&std::fs::read(dir.join("ca.crt")).unwrap())
            .unwrap()
            .remove(0);
        (cert, ca)
    }

    #[test]
    fn a_record_holds_together_or_says_why_not() {
        let scratch = crate::testing::Scratch::new("record-check");
        let (pem, ca) = issued(scratch.path(), "/CN=jane/O=dev");
        let record = Record::from_pem(&pem, "admin", None, None, None).unwrap();
        let name = record.object_name();
        assert_eq!(
            problem(&name, &record, Some(&pem), std::slice::from_ref(&ca)),
            None
        );
        assert_eq!(problem(&name, &record, Some(&pem), &[]), None);

        // A forged record: another user's name over jane's certificate.
        let forged = Record {
            user: "admin".into(),
            ..record.clone()
        };
        let why = problem(&name, &forged, Some(&pem), std::slice::from_ref(&ca)).unwrap();
        assert!(
            why.contains("not for the user and groups it names"),
            "{why}"
        );
        // Another fingerprint than its certificate's (the admin's, say).
        let other = Record {
            fingerprint: "ab".repeat(32),
            ..record.clone()
        };
        let why = problem(&other.object_name(), &other, Some(&pem), &[]).unwrap();
        assert!(why.contains("not its certificate's"), "{why}");
        assert!(
            problem(&name, &record, None, &[])
                .unwrap()
                .contains("no certificate")
        );
        // Issued by someone else: a CA of its own.
        let elsewhere = crate::testing::Scratch::new("record-check-other");
        let (_, other_ca) = issued(elsewhere.path(), "/CN=x");
        let why = problem(&name, &record, Some(&pem), &[other_ca]).unwrap();
        assert!(why.contains("client CA"), "{why}");
    }
}
