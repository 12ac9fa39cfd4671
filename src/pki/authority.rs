//! Offline mode: sign a client certificate locally with the cluster CA's key (`--ca-cert
//! --ca-key`), the way `kubeadm kubeconfig user` does, instead of asking the cluster. The
//! certificate is the one the kube-apiserver-client signer of kube-controller-manager would
//! issue (kubernetes/kubernetes pkg/controller/certificates/authority, authority.go and
//! policies.go, and signer/signer.go):
//!
//! - serial: random, below 2^128;
//! - notBefore: now − 5 minutes; notAfter: now + lifetime, minus the same 5 minutes when the
//!   lifetime is 8 h or more, and never past the CA's own notAfter;
//! - subject: the request's, as Go re-encodes it: the groups (O) in one multi-valued RDN, then
//!   CN; each value a PrintableString when it fits, else a UTF8String;
//! - extensions, in Go's order: keyUsage (critical) digitalSignature, plus keyEncipherment for
//!   an RSA key (the usages we request); extendedKeyUsage clientAuth; basicConstraints
//!   (critical) not a CA; authorityKeyIdentifier = the CA's subjectKeyIdentifier, if it has one;
//! - signature: SHA-256 with an RSA CA (PKCS#1 v1.5), ECDSA with SHA-256 on P-256 and SHA-384
//!   on P-384.

use std::path::Path;
use std::time::{Duration, SystemTime};

use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::CertificateBuilder;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::der::asn1::{Any, OctetString, PrintableStringRef, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

use crate::error::{Error, Result};
use crate::pki::key::PrivateKey;
use crate::pki::oid;
use crate::pki::verify::rfc3339;

/// The signer's default lifetime: kube-controller-manager's `--cluster-signing-duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(365 * 86_400);
/// `Backdate` in signer.go.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// `Short` in signer.go: below this the end is not backdated too.
const SHORT: Duration = Duration::from_secs(8 * 3600);

/// The cluster CA, with its private key.
pub struct Authority {
    cert: Certificate,
    /// The CA file as given (PEM, possibly a bundle): what clients trust.
    pem: Vec<u8>,
    key: PrivateKey,
}

/// A certificate signed here.
pub struct Signed {
    pub pem: String,
    /// Set when the CA expires before the asked lifetime ends: the CA's notAfter.
    pub capped_at: Option<SystemTime>,
}

impl Authority {
    /// Reads `--ca-cert` and `--ca-key`. Problems with them are usage errors: nothing was sent.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Authority> {
        let read = |flag: &str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                Error::usage(format!(
                    "cannot read {flag} {}: {}",
                    path.display(),
                    crate::kubeconfig::file::io_reason(&e)
                ))
            })
        };
        let cert_pem = read("--ca-cert", cert_path)?;
        let key_pem = pkcs8::der::zeroize::Zeroizing::new(read("--ca-key", key_path)?);
        Authority::from_pem(cert_pem, &key_pem, SystemTime::now()).map_err(|why| {
            Error::usage(format!(
                "{why} (--ca-cert {}, --ca-key {})",
                cert_path.display(),
                key_path.display()
            ))
        })
    }

    /// The CA from PEM text; checks that the key is the certificate's and that the CA can sign
    /// now. Errors never quote the key.
    pub fn from_pem(
        cert_pem: Vec<u8>,
        key_pem: &[u8],
        now: SystemTime,
    ) -> std::result::Result<Authority, String> {
        let cert = crate::pki::pem::certificates(&cert_pem)
            .ok()
            .and_then(|chain| chain.into_iter().next())
            .ok_or("the CA certificate is not a PEM X.509 certificate")?;
        let key =
            crate::pki::key::parse_pem(key_pem).map_err(|why| format!("the CA key: {why}"))?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| e.to_string())?;
        if spki != key.public_key_der() {
            return Err(
                "the CA key does not belong to the CA certificate; pass the key the certificate was made for".into(),
            );
        }
        if let Some(constraints) = extension::<BasicConstraints>(&cert)
            && !constraints.ca
        {
            return Err(
                "the CA certificate is not a CA (basicConstraints CA:FALSE); pass the cluster CA, e.g. /etc/kubernetes/pki/ca.crt".into(),
            );
        }
        let not_after = cert.tbs_certificate().validity().not_after.to_system_time();
        if not_after <= now + BACKDATE {
            return Err(format!(
                "the CA certificate expired at {}; it can sign nothing",
                rfc3339(not_after)
            ));
        }
        Ok(Authority {
            cert,
            pem: cert_pem,
            key,
        })
    }

    /// The CA bundle as given, for a kubeconfig's certificate-authority-data.
    pub fn ca_pem(&self) -> &[u8] {
        &self.pem
    }

    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// A client certificate for `user` in `groups`, for the public key `public_key_der`
    /// (a DER SubjectPublicKeyInfo), valid `lifetime` from `now`.
    pub fn sign(
        &self,
        user: &str,
        groups: &[String],
        public_key_der: &[u8],
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Signed> {
        let failed =
            |e: &dyn std::fmt::Display| Error::failed(format!("cannot sign the certificate: {e}"));
        let (not_before, not_after, capped_at) = validity(lifetime, now, self.not_after());
        let validity = Validity::new(
            Time::try_from(not_before).map_err(|e| failed(&e))?,
            Time::try_from(not_after).map_err(|e| failed(&e))?,
        );
        let spki = SubjectPublicKeyInfoOwned::from_der(public_key_der).map_err(|e| failed(&e))?;
        let rsa = spki.algorithm.oid == oid::RSA;
        let profile = Profile {
            issuer: self.cert.tbs_certificate().subject().clone(),
            subject: subject(user, groups).map_err(|e| failed(&e))?,
        };
        let mut builder =
            CertificateBuilder::new(profile, serial()?, validity, spki).map_err(|e| failed(&e))?;
        for extension in self.extensions(rsa).map_err(|e| failed(&e))? {
            builder.add_extension(extension).map_err(|e| failed(&e))?;
        }
        let cert = self.key.sign(builder).map_err(|e| failed(&e))?;
        Ok(Signed {
            pem: cert.to_pem(LineEnding::LF).map_err(|e| failed(&e))?,
            capped_at,
        })
    }

    /// keyUsage, extendedKeyUsage, basicConstraints, authorityKeyIdentifier: Go's order.
    fn extensions(&self, rsa: bool) -> x509_cert::der::Result<Vec<Extension>> {
        let name = self.cert.tbs_certificate().subject();
        let mut usages = KeyUsages::DigitalSignature.into();
        if rsa {
            usages |= KeyUsages::KeyEncipherment;
        }
        let mut out = vec![
            (true, &KeyUsage(usages)).to_extension(name, &[])?,
            (false, &ExtendedKeyUsage(vec![oid::CLIENT_AUTH])).to_extension(name, &[])?,
            (
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
            )
                .to_extension(name, &[])?,
        ];
        if let Some(ski) = extension::<SubjectKeyIdentifier>(&self.cert) {
            let aki = AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ski.0.as_bytes())?),
                ..Default::default()
            };
            out.push((false, &aki).to_extension(name, &[])?);
        }
        Ok(out)
    }
}

/// notBefore, notAfter, and the CA's notAfter when it cut the lifetime short.
fn validity(
    lifetime: Duration,
    now: SystemTime,
    ca_not_after: SystemTime,
) -> (SystemTime, SystemTime, Option<SystemTime>) {
    let not_before = now - BACKDATE;
    let not_after = if lifetime < SHORT {
        now + lifetime
    } else {
        now + lifetime - BACKDATE
    };
    if not_after >= ca_not_after {
        (not_before, ca_not_after, Some(ca_not_after))
    } else {
        (not_before, not_after, None)
    }
}

/// 16 random bytes: a positive integer below 2^128, as the signer draws it.
fn serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    while bytes.iter().all(|b| *b == 0) {
        getrandom::fill(&mut bytes).expect("the OS random number generator");
    }
    SerialNumber::new(&bytes)
        .map_err(|e| Error::failed(format!("cannot make a serial number: {e}")))
}

/// The subject as the signer writes it: Go's `pkix.Name.ToRDNSequence` puts every O in one
/// RDN before CN, and `encoding/asn1` picks PrintableString for strings that fit it.
pub fn subject(user: &str, groups: &[String]) -> x509_cert::der::Result<Name> {
    let mut rdns = RdnSequence::default();
    if !groups.is_empty() {
        let values = groups
            .iter()
            .map(|g| attribute(oid::O, g))
            .collect::<x509_cert::der::Result<Vec<_>>>()?;
        rdns.push(RelativeDistinguishedName::try_from(values)?);
    }
    rdns.push(RelativeDistinguishedName::try_from(vec![attribute(
        oid::CN,
        user,
    )?])?);
    Name::from_der(&rdns.to_der()?)
}

fn attribute(oid: ObjectIdentifier, value: &str) -> x509_cert::der::Result<AttributeTypeAndValue> {
    let value = if value.bytes().all(go_printable) {
        Any::encode_from(&PrintableStringRef::new(value)?)?
    } else {
        Any::encode_from(&Utf8StringRef::new(value)?)?
    };
    Ok(AttributeTypeAndValue { oid, value })
}

/// `isPrintable` of Go's encoding/asn1, without `*` and `&`.
fn go_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// A decoded extension of `cert`, if it has one of that type.
fn extension<T>(cert: &Certificate) -> Option<T>
where
    T: pkcs8::AssociatedOid + for<'a> Decode<'a>,
{
    cert.tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == T::OID)
        .and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
}

/// Issuer and subject as given; the extensions are added by `sign`, in Go's order.
struct Profile {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::key::{KeyAlgorithm, KeySource};
    use x509_cert::der::Tagged;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn validity_follows_the_signer_policy() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let far = now + 100 * 365 * 24 * HOUR;
        // Short-lived: only the start is backdated.
        assert_eq!(validity(HOUR, now, far), (now - BACKDATE, now + HOUR, None));
        // 8 h or more: both ends move back, the lifetime stays as asked.
        assert_eq!(
            validity(8 * HOUR, now, far),
            (now - BACKDATE, now + 8 * HOUR - BACKDATE, None)
        );
        // Never beyond the CA.
        let ca_end = now + 24 * HOUR;
        assert_eq!(
            validity(DEFAULT_DURATION, now, ca_end),
            (now - BACKDATE, ca_end, Some(ca_end))
        );
    }

    #[test]
    fn subject_puts_the_groups_in_one_rdn_before_cn() {
        let name = subject("jane@example.com", &["dev".into(), "ops".into()]).unwrap();
        let rdns: Vec<Vec<(ObjectIdentifier, x509_cert::der::Tag)>> = name
            .iter_rdn()
            .map(|rdn| rdn.iter().map(|a| (a.oid, a.value.tag())).collect())
            .collect();
        use x509_cert::der::Tag::{PrintableString, Utf8String};
        assert_eq!(
            rdns,
            vec![
                vec![(oid::O, PrintableString), (oid::O, PrintableString)],
                vec![(oid::CN, Utf8String)],
            ]
        );
        let plain = subject("jane", &[]).unwrap();
        assert_eq!(plain.iter_rdn().count(), 1);
        assert_eq!(plain.to_string(), "CN=jane");
    }

    #[test]
    fn printable_is_gos_set() {
        assert!("Jane Doe (ops), x/y:z=?+-.'".bytes().all(go_printable));
        for c in ["@", "_", "*", "&", "ü", "!"] {
            assert!(!c.bytes().all(go_printable), "{c}");
        }
    }

    /// A CA made by openssl, as the test harness and kubeadm make theirs.
    fn openssl_ca(dir: &Path, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
        std::fs::create_dir_all(dir).unwrap();
        let ca = [
            "req", "-x509", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        ];
        let subject = ["-subj", "/CN=test-ca", "-days", "2"];
        let usage = [
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
        ];
        crate::testing::openssl(dir, &[&ca[..], &subject, &usage, args].concat());
        (
            std::fs::read(dir.join("ca.crt")).unwrap(),
            std::fs::read(dir.join("ca.key")).unwrap(),
        )
    }

    #[test]
    fn certificates_verify_with_openssl_for_rsa_and_ecdsa_cas() {
        let base = std::env::temp_dir().join(format!("onboard-authority-{}", std::process::id()));
        for (name, args) in [
            ("rsa", &["-newkey", "rsa:2048"][..]),
            (
                "p256",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            ),
            (
                "p384",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            ),
        ] {
            let dir = base.join(name);
            let (ca, ca_key) = openssl_ca(&dir, args);
            let authority = Authority::from_pem(ca.clone(), &ca_key, SystemTime::now()).unwrap();
            let user_key =
                PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::EcdsaP256)).unwrap();
            let groups = vec!["dev".to_string()];
            let signed = authority
                .sign(
                    "jane",
                    &groups,
                    &user_key.public_key_der(),
                    DEFAULT_DURATION,
                    SystemTime::now(),
                )
                .unwrap();
            // The CA lives 2 days: the year is cut to that.
            assert_eq!(signed.capped_at, Some(authority.not_after()));
            std::fs::write(dir.join("leaf.crt"), &signed.pem).unwrap();
            let out = std::process::Command::new("openssl")
                .args(["verify", "-x509_strict", "-purpose", "sslclient"])
                .args(["-CAfile", "ca.crt", "leaf.crt"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // And our own check agrees.
            let verified = crate::pki::verify::certificate(
                signed.pem.as_bytes(),
                &crate::pki::verify::Expected {
                    user: "jane",
                    groups: &groups,
                    public_key_der: &user_key.public_key_der(),
                    duration: None,
                    ca_pem: Some(&ca),
                    now: SystemTime::now(),
                },
            )
            .unwrap();
            assert!(verified.warnings.is_empty(), "{:?}", verified.warnings);
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_key_that_is_not_the_cas_is_refused() {
        let base =
            std::env::temp_dir().join(format!("onboard-authority-mm-{}", std::process::id()));
        let (ca, _) = openssl_ca(&base.join("a"), &["-newkey", "rsa:2048"]);
        let (_, other_key) = openssl_ca(&base.join("b"), &["-newkey", "rsa:2048"]);
        let err = Authority::from_pem(ca.clone(), &other_key, SystemTime::now())
            .err()
            .unwrap();
        assert!(err.contains("does not belong"), "{err}");
        let err = Authority::from_pem(b"junk".to_vec(), &other_key, SystemTime::now())
            .err()
            .unwrap();
        assert!(err.contains("not a PEM X.509"), "{err}");
        let later = SystemTime::now() + 3 * 24 * HOUR;
        let (_, key) = openssl_ca(&base.join("a"), &["-newkey", "rsa:2048"]);
        let ca = std::fs::read(base.join("a/ca.crt")).unwrap();
        let err = Authority::from_pem(ca, &key, later).err().unwrap();
        assert!(err.contains("expired"), "{err}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
