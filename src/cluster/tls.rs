//! The one adjustment to the TLS stack: an X.509 v1 client certificate (what `openssl x509 -req`
//! makes without an extensions file) works, as it does with kubectl.
//!
//! rustls refuses to build a client configuration around such a certificate: before use it checks
//! that the key belongs to the certificate, and reads the certificate with webpki, which knows only
//! v3 (`UnsupportedCertVersion`). rustls skips that check for a key that does not report its
//! public key ("unknown" counts as consistent). kube builds its TLS configuration from the
//! process-wide crypto provider, so [`install`] makes that ring's provider with keys that keep
//! their public key to themselves. The check itself is not lost: [`check_pair`] makes it on the
//! kubeconfig's credentials with x509-cert, which reads every version, before kube is asked.

use std::sync::{Arc, Once};

use rustls::crypto::{CryptoProvider, KeyProvider};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

/// Makes ring, with [`QuietKeys`], the process's crypto provider (once; later calls do nothing).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let provider = CryptoProvider {
            key_provider: &QuietKeys,
            ..rustls::crypto::ring::default_provider()
        };
        // Fails only if a provider is installed already, which then stays.
        let _ = provider.install_default();
    });
}

/// ring's key loading, with keys that do not report their public key.
#[derive(Debug)]
struct QuietKeys;

impl KeyProvider for QuietKeys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        let key = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key_der)?;
        Ok(Arc::new(QuietKey(key)))
    }
}

#[derive(Debug)]
struct QuietKey(Arc<dyn SigningKey>);

impl SigningKey for QuietKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.0.choose_scheme(offered)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }
    // `public_key` keeps its default, None: see the module header.
}

/// Whether the client certificate and key (PEM) belong together, as rustls would have checked:
/// `Err` names what is wrong, without quoting either. A key or certificate this crate cannot
/// read is left for the TLS stack to judge.
pub fn check_pair(certificate_pem: &[u8], key_pem: &[u8]) -> Result<(), &'static str> {
    use x509_cert::der::Encode;
    let Some(certificate) = crate::pki::pem::certificates(certificate_pem)
        .ok()
        .and_then(|chain| chain.into_iter().next())
    else {
        return Ok(());
    };
    let Ok(key) = crate::pki::key::parse_pem(key_pem) else {
        return Ok(());
    };
    let spki = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der();
    match spki {
        Ok(spki) if spki != key.public_key_der() => {
            Err("the client key does not belong to the client certificate")
        }
        _ => Ok(()),
    }
}
