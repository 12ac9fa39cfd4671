//! Verify: the certificate, issued or signed here, checked before anything is written. Hard
//! requirements: it is for our key, for the subject we asked, and valid now. Soft ones (warnings):
//! it chains to the cluster CA in the kubeconfig, and it lives as long as we asked.

use std::time::{Duration, SystemTime};

use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::pki::signature::{self, BadSignature};
use crate::pki::{oid, text};

/// Clocks differ; a certificate that starts a little in the future is still accepted.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// The signer backdates certificates of 8h or more by 5 minutes, which it takes off the
/// lifetime; with clock skew on top, anything within 10 minutes is what we asked for.
const LIFETIME_SLACK: Duration = Duration::from_secs(10 * 60);

/// What we read out of a certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct CertInfo {
    /// The CN Kubernetes authenticates the certificate as: the last one, as Go's x509 reads a
    /// subject (each CN it meets replaces the one before).
    pub common_name: Option<String>,
    /// Every CN of the subject, in order; one, for a certificate we accept.
    pub common_names: Vec<String>,
    pub organizations: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub public_key_der: Vec<u8>,
}

/// The certificate as issued, checked.
#[derive(Clone, Debug)]
pub struct Verified {
    /// PEM of the leaf certificate.
    pub pem: String,
    pub info: CertInfo,
    pub warnings: Vec<String>,
    /// Worth a line, not a warning (a separate client CA, as k3s and RKE2 have).
    pub notes: Vec<String>,
}

#[derive(Clone, Copy)]
pub struct Expected<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    /// DER SubjectPublicKeyInfo of the key the certificate must be for.
    pub public_key_der: &'a [u8],
    pub duration: Option<Duration>,
    /// PEM bundle of the cluster CA(s) from the kubeconfig, if it has one.
    pub ca_pem: Option<&'a [u8]>,
    pub now: SystemTime,
}

pub fn certificate(issued_pem: &[u8], expected: &Expected) -> Result<Verified> {
    let leaf_der = first_certificate_der(issued_pem)?;
    let leaf = &Certificate::from_der(&leaf_der).map_err(|_| unparsable())?;
    let info = inspect(leaf)?;

    hard_requirements(&info, expected)?;

    let (mut warnings, mut notes) = (Vec::new(), Vec::new());
    let cas = expected
        .ca_pem
        .map(|pem| crate::pki::pem::certificates(pem).unwrap_or_default());
    if let Some(cas) = &cas
        && !signed_by_any(leaf, &leaf_der, cas)
    {
        let issuer = tbs_common_name(leaf.tbs_certificate().issuer()).unwrap_or_default();
        notes.push(format!(
            "Signed by the cluster's client CA{}, which is not the CA in your kubeconfig (as on k3s and RKE2)",
            match issuer.is_empty() {
                true => String::new(),
                false => format!(" \"{issuer}\""),
            }
        ));
    }
    if let Some(asked) = expected.duration {
        let lifetime = info
            .not_after
            .duration_since(expected.now)
            .unwrap_or_default();
        if lifetime + LIFETIME_SLACK < asked {
            let signer = cas
                .iter()
                .flatten()
                .find(|ca| ca.tbs_certificate().subject() == leaf.tbs_certificate().issuer());
            warnings.push(format!(
                "the signer capped the lifetime: asked for {}, got about {} (until {}); {}",
                format_duration(asked),
                approximately(lifetime),
                rfc3339(info.not_after),
                what_capped(signer, info.not_after)
            ));
        }
    }
    Ok(Verified {
        pem: x509_cert::der::pem::encode_string(
            "CERTIFICATE",
            x509_cert::der::pem::LineEnding::LF,
            &leaf_der,
        )
        .map_err(|_| Error::failed("the issued certificate cannot be written as PEM"))?,
        info,
        warnings,
        notes,
    })
}

/// Why a certificate ends before it was asked to: the signer's own certificate ends then (as on
/// OpenShift, whose signer lives about 30 days), or, most likely, the signer's maximum.
fn what_capped(signer: Option<&Certificate>, not_after: SystemTime) -> String {
    let signer_ends = signer.map(|ca| ca.tbs_certificate().validity().not_after.to_system_time());
    let same_end = signer_ends.is_some_and(|end| {
        let gap = match end > not_after {
            true => end.duration_since(not_after),
            false => not_after.duration_since(end),
        };
        gap.unwrap_or_default() <= Duration::from_secs(60)
    });
    match same_end {
        true => "it ends when the signer's own certificate does (as on OpenShift, whose signer is renewed about every 30 days): renew before then".to_string(),
        false => "the cluster's --cluster-signing-duration (kube-controller-manager) is shorter".to_string(),
    }
}

fn tbs_common_name(name: &x509_cert::name::Name) -> Option<String> {
    name.iter()
        .filter(|a| a.oid == oid::CN)
        .filter_map(|a| text(&a.value))
        .last()
}

/// Subject, validity and public key of a certificate.
pub fn inspect(cert: &Certificate) -> Result<CertInfo> {
    let tbs = cert.tbs_certificate();
    let subject = tbs.subject();
    let validity = tbs.validity();
    let common_names: Vec<String> = subject
        .iter()
        .filter(|a| a.oid == oid::CN)
        .filter_map(|a| text(&a.value))
        .collect();
    Ok(CertInfo {
        common_name: common_names.last().cloned(),
        common_names,
        organizations: subject
            .iter()
            .filter(|a| a.oid == oid::O)
            .filter_map(|a| text(&a.value))
            .collect(),
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
        public_key_der: tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|_| Error::failed("the issued certificate's public key cannot be encoded"))?,
    })
}

/// What the certificate must be, or nothing is written: for our key, for exactly the subject
/// asked (one CN, the groups), and valid now.
fn hard_requirements(info: &CertInfo, expected: &Expected) -> Result<()> {
    if info.public_key_der != expected.public_key_der {
        return Err(Error::failed(
            "the issued certificate is for another public key than ours; refusing to write it (check who else edits this CSR)",
        ));
    }
    if let [_, _, ..] = info.common_names.as_slice() {
        return Err(Error::failed(format!(
            "the issued certificate has {} common names ({}), and Kubernetes would authenticate it as the last, {}, not as {}; refusing to write it",
            info.common_names.len(),
            info.common_names.join(", "),
            info.common_name.as_deref().unwrap_or_default(),
            expected.user
        )));
    }
    if info.common_name.as_deref() != Some(expected.user) {
        return Err(Error::failed(format!(
            "the issued certificate names CN={} instead of CN={}; refusing to write it",
            info.common_name.as_deref().unwrap_or("(none)"),
            expected.user
        )));
    }
    let mut got = info.organizations.clone();
    let mut want = expected.groups.to_vec();
    got.sort();
    want.sort();
    if got != want {
        return Err(Error::failed(format!(
            "the issued certificate has groups [{}] instead of [{}]; refusing to write it",
            got.join(", "),
            want.join(", ")
        )));
    }
    if info.not_after <= expected.now {
        return Err(Error::failed(format!(
            "the issued certificate expired at {}; check this machine's clock and the signer's",
            rfc3339(info.not_after)
        )));
    }
    if info.not_before > expected.now + CLOCK_SKEW {
        return Err(Error::failed(format!(
            "the issued certificate is valid only from {}; check this machine's clock",
            rfc3339(info.not_before)
        )));
    }
    Ok(())
}

/// The DER of the first certificate of the PEM the signer returned, the very bytes it signed:
/// re-encoding a parsed certificate can change them (x509-cert rewrites a GeneralizedTime
/// before 2050 as UTCTime), and then its signature no longer holds.
pub fn first_certificate_der(issued: &[u8]) -> Result<Vec<u8>> {
    let block = crate::pki::pem::block(issued, "CERTIFICATE").ok_or_else(unparsable)?;
    match crate::pki::pem::decode(block) {
        Ok((label, der)) if label == "CERTIFICATE" => Ok(der),
        _ => Err(unparsable()),
    }
}

fn unparsable() -> Error {
    Error::failed(
        "the cluster returned a certificate that cannot be parsed as PEM X.509; nothing was written",
    )
}

/// Whether `cert` (whose DER is `cert_der`) carries a valid signature by one of the CAs in
/// `ca_pem`.
pub fn signed_by_any(cert: &Certificate, cert_der: &[u8], cas: &[Certificate]) -> bool {
    cas.iter().any(|ca| {
        ca.tbs_certificate().subject() == cert.tbs_certificate().issuer()
            && verify_signature(cert_der, ca).is_ok()
    })
}

/// Whether the certificate `cert_der` carries a valid signature by `ca`, checked over the
/// TBSCertificate bytes as they stand in `cert_der` ([`signature::signed_part`]).
pub fn verify_signature(
    cert_der: &[u8],
    ca: &Certificate,
) -> std::result::Result<(), BadSignature> {
    let invalid = |e: x509_cert::der::Error| BadSignature::Invalid(e.to_string());
    let cert = Certificate::from_der(cert_der).map_err(invalid)?;
    let tbs = signature::signed_part(cert_der).map_err(invalid)?;
    let bits = cert
        .signature()
        .as_bytes()
        .ok_or_else(|| BadSignature::Invalid("the signature has unused bits".into()))?;
    let ca_spki = ca
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(invalid)?;
    signature::verify(&ca_spki, cert.signature_algorithm().oid, tbs, bits)
}

/// `90d`, `55m`: a lifetime rounded to its largest sensible unit.
pub fn approximately(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s >= 2.0 * 86_400.0 => format!("{:.0}d", s / 86_400.0),
        s if s >= 2.0 * 3600.0 => format!("{:.0}h", s / 3600.0),
        s if s >= 60.0 => format!("{:.0}m", s / 60.0),
        s => format!("{s:.0}s"),
    }
}

/// `2026-11-25T10:00:00Z`
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "(out of range)".into())
}

/// The time [`rfc3339`] wrote; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    text.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::key::PrivateKey;

    #[test]
    fn lifetimes_are_rounded_for_people() {
        assert_eq!(approximately(Duration::from_secs(90 * 86_400 - 300)), "90d");
        assert_eq!(approximately(Duration::from_secs(3300)), "55m");
        assert_eq!(approximately(Duration::from_secs(30 * 3600 + 100)), "30h");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z"); // date -u -d @1795000000
    }

    /// openssl in a scratch directory: a CA, and that CA signing our CSR for `days`.
    struct Openssl(std::path::PathBuf);

    impl Openssl {
        fn new(name: &str) -> Openssl {
            let dir =
                std::env::temp_dir().join(format!("onboard-verify-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Openssl(dir)
        }

        fn run(&self, args: &[&str]) {
            crate::testing::openssl(&self.0, args);
        }

        fn ca(&self, name: &str) -> Vec<u8> {
            let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
            self.run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-subj",
                &format!("/CN={name}"),
                "-days",
                "2",
            ]);
            std::fs::read(self.0.join(crt)).unwrap()
        }

        fn sign(&self, ca: &str, csr_pem: &str, days: &str) -> Vec<u8> {
            self.sign_as(ca, csr_pem, days, None)
        }

        /// With `subject`, the certificate gets that subject instead of the request's.
        fn sign_as(&self, ca: &str, csr_pem: &str, days: &str, subject: Option<&str>) -> Vec<u8> {
            std::fs::write(self.0.join("req.csr"), csr_pem).unwrap();
            let subject = subject.map_or(Vec::new(), |s| vec!["-subj", s]);
            self.run(
                &[
                    &[
                        "x509",
                        "-req",
                        "-in",
                        "req.csr",
                        "-CA",
                        &format!("{ca}.crt"),
                        "-CAkey",
                        &format!("{ca}.key"),
                        "-days",
                        days,
                        "-out",
                        "leaf.crt",
                    ][..],
                    &subject,
                ]
                .concat(),
            );
            std::fs::read(self.0.join("leaf.crt")).unwrap()
        }
    }

    #[test]
    fn a_certificate_is_checked_against_key_subject_ca_and_lifetime() {
        let ssl = Openssl::new("checks");
        let cluster_ca = ssl.ca("cluster");
        let other_ca = ssl.ca("other");
        let key = PrivateKey::obtain(&crate::pki::key::KeySource::Generate(
            crate::pki::key::KeyAlgorithm::EcdsaP256,
        ))
        .unwrap();
        let groups = vec!["dev".to_string()];
        let csr = crate::csr::build("jane", &groups, &key).unwrap();
        let issued = ssl.sign("cluster", &csr, "1");
        let expected = Expected {
            user: "jane",
            groups: &groups,
            public_key_der: &key.public_key_der(),
            duration: None,
            ca_pem: Some(&cluster_ca),
            now: SystemTime::now(),
        };

        let ok = certificate(&issued, &expected).unwrap();
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
        assert_eq!(ok.info.common_name.as_deref(), Some("jane"));
        assert_eq!(ok.info.organizations, ["dev"]);

        let foreign = certificate(
            &issued,
            &Expected {
                ca_pem: Some(&other_ca),
                ..expected
            },
        )
        .unwrap();
        // Another CA: a line to know, not a warning (k3s, RKE2 sign with a client CA).
        assert!(foreign.warnings.is_empty(), "{:?}", foreign.warnings);
        assert!(
            foreign.notes[0].contains("which is not the CA in your kubeconfig"),
            "{:?}",
            foreign.notes
        );

        let capped = certificate(
            &issued,
            &Expected {
                duration: Some(Duration::from_secs(90 * 86_400)),
                ..expected
            },
        )
        .unwrap();
        assert!(
            capped.warnings[0].contains("asked for 90d, got about 24h"),
            "{:?}",
            capped.warnings
        );
        let as_asked = certificate(
            &issued,
            &Expected {
                duration: Some(Duration::from_secs(86_400)),
                ..expected
            },
        )
        .unwrap();
        assert!(as_asked.warnings.is_empty(), "{:?}", as_asked.warnings);

        let err = certificate(
            &issued,
            &Expected {
                user: "john",
                ..expected
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("CN=jane instead of CN=john"),
            "{err}"
        );
        let err = certificate(
            &issued,
            &Expected {
                groups: &[],
                ..expected
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("groups [dev] instead of []"),
            "{err}"
        );
        let other_key = PrivateKey::obtain(&crate::pki::key::KeySource::Generate(
            crate::pki::key::KeyAlgorithm::EcdsaP256,
        ))
        .unwrap();
        let err = certificate(
            &issued,
            &Expected {
                public_key_der: &other_key.public_key_der(),
                ..expected
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("another public key"), "{err}");
        let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
        let err = certificate(
            &issued,
            &Expected {
                now: later,
                ..expected
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn a_certificate_with_two_common_names_is_refused_naming_the_one_kubernetes_would_see() {
        let ssl = Openssl::new("two-cns");
        let cluster_ca = ssl.ca("cluster");
        let key = PrivateKey::obtain(&crate::pki::key::KeySource::Generate(
            crate::pki::key::KeyAlgorithm::EcdsaP256,
        ))
        .unwrap();
        let groups = vec!["dev".to_string()];
        let csr = crate::csr::build("jane", &groups, &key).unwrap();
        let expected = Expected {
            user: "jane",
            groups: &groups,
            public_key_der: &key.public_key_der(),
            duration: None,
            ca_pem: Some(&cluster_ca),
            now: SystemTime::now(),
        };
        // First CN as asked, a second one after it: Kubernetes authenticates as the second.
        let issued = ssl.sign_as("cluster", &csr, "1", Some("/CN=jane/O=dev/CN=admin"));
        let err = certificate(&issued, &expected).unwrap_err().to_string();
        assert!(
            err.contains("2 common names (jane, admin)")
                && err.contains("authenticate it as the last, admin, not as jane"),
            "{err}"
        );
        let info = inspect(&Certificate::load_pem_chain(&issued).unwrap()[0]).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("admin"));
        // The same certificate with one CN passes.
        let single = ssl.sign_as("cluster", &csr, "1", Some("/CN=jane/O=dev"));
        certificate(&single, &expected).unwrap();
    }

    #[test]
    fn the_issued_bytes_are_handed_out_not_a_re_encoding() {
        // Found by the certificates fuzz target: a notAfter in 2036 written as GeneralizedTime,
        // which x509-cert re-encodes as UTCTime (and so breaks the signature).
        let issued = include_bytes!("../../tests/fixtures/generalizedtime-leaf.pem");
        let leaf = Certificate::load_pem_chain(issued).unwrap().remove(0);
        let info = inspect(&leaf).unwrap();
        let groups = info.organizations.clone();
        let expected = Expected {
            user: "jane",
            groups: &groups,
            public_key_der: &info.public_key_der,
            duration: None,
            ca_pem: None,
            now: info.not_before + Duration::from_secs(60),
        };
        let verified = certificate(issued, &expected).unwrap();
        use x509_cert::der::pem;
        let der_of = |text: &[u8]| pem::decode_vec(text).unwrap().1;
        assert_eq!(der_of(verified.pem.as_bytes()), der_of(issued));
    }

    #[test]
    fn signatures_are_checked_over_the_bytes_that_were_signed() {
        // The GeneralizedTime leaf again: its parsed TBSCertificate re-encodes differently, so
        // a signature check over the re-encoding would fail for a certificate the CA did sign.
        let issued = include_bytes!("../../tests/fixtures/generalizedtime-leaf.pem");
        let der = first_certificate_der(issued).unwrap();
        let tbs = signature::signed_part(&der).unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        assert_ne!(tbs, cert.tbs_certificate().to_der().unwrap());
        // The TBSCertificate as it stands: right after the outer SEQUENCE's 4-byte header.
        assert_eq!(tbs, &der[4..4 + tbs.len()]);
        assert_eq!(
            x509_cert::TbsCertificate::from_der(tbs).unwrap(),
            *cert.tbs_certificate()
        );
        // Trailing bytes after the three fields are not a certificate.
        let mut longer = der.clone();
        longer.push(0);
        assert!(signature::signed_part(&longer).is_err());
    }

    #[test]
    fn unparsable_certificates_are_refused() {
        let key = PrivateKey::obtain(&crate::pki::key::KeySource::Generate(
            crate::pki::key::KeyAlgorithm::EcdsaP256,
        ))
        .unwrap();
        let expected = Expected {
            user: "jane",
            groups: &[],
            public_key_der: &key.public_key_der(),
            duration: None,
            ca_pem: None,
            now: SystemTime::now(),
        };
        let err = certificate(b"not a certificate", &expected).unwrap_err();
        assert!(err.to_string().contains("cannot be parsed"));
    }

    #[test]
    fn a_lifetime_capped_by_the_signers_own_end_says_so() {
        let scratch = crate::testing::Scratch::new("capped-by-signer");
        let (ca_pem, _) = crate::testing::ca(scratch.path(), "signer");
        let ca = crate::pki::pem::certificates(&ca_pem).unwrap().remove(0);
        let end = ca.tbs_certificate().validity().not_after.to_system_time();
        let said = what_capped(Some(&ca), end - Duration::from_secs(30));
        assert!(said.contains("signer's own certificate"), "{said}");
        let said = what_capped(Some(&ca), end - Duration::from_secs(86_400));
        assert!(said.contains("--cluster-signing-duration"), "{said}");
        assert!(what_capped(None, end).contains("--cluster-signing-duration"));
    }
}
