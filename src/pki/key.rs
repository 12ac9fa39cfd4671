//! Private keys (the pipeline's key step, `pipeline/key.rs`). Generated locally (or read from
//! `--key`), never printed or logged; its PEM lives in zeroizing memory.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use crypto_primes::hazmat::{SetBits, SmallFactorsSieve, random_odd_integer};
use crypto_primes::{Flavor, is_prime};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use p256::elliptic_curve::Generate;
use pkcs8::der::zeroize::Zeroizing;
use pkcs8::{
    AssociatedOid, DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;

use x509_cert::builder::Builder;

use crate::error::{Error, Result};
use crate::pki::oid;

const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "rsa-2048" => KeyAlgorithm::Rsa2048,
            "rsa-3072" => KeyAlgorithm::Rsa3072,
            "rsa-4096" => KeyAlgorithm::Rsa4096,
            "ecdsa-p256" => KeyAlgorithm::EcdsaP256,
            "ecdsa-p384" => KeyAlgorithm::EcdsaP384,
            other => {
                return Err(Error::usage(format!(
                    "--key-algorithm {other} is not supported: use rsa-2048, rsa-3072, rsa-4096, ecdsa-p256 or ecdsa-p384"
                )));
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Generate(KeyAlgorithm),
    File(PathBuf),
}

pub enum PrivateKey {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

/// Never shows key material.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm())
    }
}

impl PrivateKey {
    pub fn obtain(source: &KeySource) -> Result<PrivateKey> {
        match source {
            KeySource::Generate(algorithm) => Ok(generate(*algorithm)),
            KeySource::File(path) => load(path),
        }
    }

    /// `RSA-2048`, `ECDSA-P256`: for messages and summaries.
    /// Signs what `builder` builds (a certificate, a request) with this key: RSA PKCS#1 v1.5
    /// with SHA-256, or ECDSA with the curve's hash, as Kubernetes and openssl expect.
    pub fn sign<B: Builder>(&self, builder: B) -> x509_cert::builder::Result<B::Output> {
        match self {
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
    }

    pub fn algorithm(&self) -> String {
        match self {
            PrivateKey::Rsa(k) => format!("RSA-{}", k.size() * 8),
            PrivateKey::P256(_) => "ECDSA-P256".into(),
            PrivateKey::P384(_) => "ECDSA-P384".into(),
        }
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self, PrivateKey::Rsa(_))
    }

    /// PKCS#8 PEM, as `openssl genpkey` writes it.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let pem = match self {
            PrivateKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        // Encoding a key we hold in memory cannot fail short of a bug in the encoder.
        pem.expect("encoding a valid private key as PKCS#8")
    }

    /// The DER SubjectPublicKeyInfo, to recognise our key in a certificate.
    pub fn public_key_der(&self) -> Vec<u8> {
        let der = match self {
            PrivateKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            PrivateKey::P256(k) => k.public_key().to_public_key_der(),
            PrivateKey::P384(k) => k.public_key().to_public_key_der(),
        };
        der.expect("encoding a valid public key").into_vec()
    }
}

impl KeyAlgorithm {
    /// The algorithm of `key`, to make a new key like it.
    pub fn of(key: &PrivateKey) -> KeyAlgorithm {
        match key {
            PrivateKey::Rsa(k) if k.size() * 8 >= 4096 => KeyAlgorithm::Rsa4096,
            PrivateKey::Rsa(k) if k.size() * 8 >= 3072 => KeyAlgorithm::Rsa3072,
            PrivateKey::Rsa(_) => KeyAlgorithm::Rsa2048,
            PrivateKey::P256(_) => KeyAlgorithm::EcdsaP256,
            PrivateKey::P384(_) => KeyAlgorithm::EcdsaP384,
        }
    }
}

/// `("RSA-2048", true)` or `("ECDSA-P256", false)` for a DER SubjectPublicKeyInfo, if it is a
/// key we would make ourselves: RSA of 2048 bits or more, ECDSA P-256 or P-384.
pub fn describe_public_key(spki_der: &[u8]) -> Result<(String, bool), String> {
    let corrupt = || "its public key is corrupt".to_string();
    let info = pkcs8::SubjectPublicKeyInfoRef::try_from(spki_der).map_err(|_| corrupt())?;
    match info.algorithm.oid {
        oid::RSA => {
            let key = rsa::PublicKey::from_public_key_der(spki_der).map_err(|_| corrupt())?;
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "its RSA key has {bits} bits; ask for a request with 2048 or more"
                ));
            }
            Ok((format!("RSA-{bits}"), true))
        }
        oid::EC => match info.algorithm.parameters_oid().map_err(|_| corrupt())? {
            curve if curve == p256::NistP256::OID => {
                p256::PublicKey::from_public_key_der(spki_der).map_err(|_| corrupt())?;
                Ok(("ECDSA-P256".into(), false))
            }
            curve if curve == p384::NistP384::OID => {
                p384::PublicKey::from_public_key_der(spki_der).map_err(|_| corrupt())?;
                Ok(("ECDSA-P384".into(), false))
            }
            curve => Err(format!(
                "its EC curve {curve} is not supported: use P-256 or P-384"
            )),
        },
        oid => Err(format!(
            "its key algorithm {oid} is not supported: use RSA or ECDSA P-256/P-384"
        )),
    }
}

fn generate(algorithm: KeyAlgorithm) -> PrivateKey {
    let rsa = |bits| PrivateKey::Rsa(Box::new(rsa_key(bits)));
    match algorithm {
        KeyAlgorithm::Rsa2048 => rsa(2048),
        KeyAlgorithm::Rsa3072 => rsa(3072),
        KeyAlgorithm::Rsa4096 => rsa(4096),
        KeyAlgorithm::EcdsaP256 => {
            PrivateKey::P256(p256::SecretKey::generate_from_rng(&mut UnwrapErr(SysRng)))
        }
        KeyAlgorithm::EcdsaP384 => {
            PrivateKey::P384(p384::SecretKey::generate_from_rng(&mut UnwrapErr(SysRng)))
        }
    }
}

/// An RSA key of `bits` bits, its two primes searched for on two threads at once. The search is
/// nearly all the cost (rsa's own `PrivateKey::new` finds one prime after the other: about 90 ms
/// of the admin flow's 130); each thread starts from its own random odd number with the top two
/// bits set (so that p·q has exactly `bits` bits), sieves out small factors and takes the first
/// candidate that passes Baillie-PSW, the same method and checks as rsa's own generator. The first
/// two primes found, from either thread, are p and q; `PrivateKey::from_p_q` derives and checks
/// the rest, and refuses (so we start again) an exponent that is not coprime to λ(n).
fn rsa_key(bits: usize) -> rsa::PrivateKey {
    let half = NonZeroU32::new(bits as u32 / 2).expect("an RSA size of at least 2048 bits");
    loop {
        let stop = AtomicBool::new(false);
        let (found, primes) = mpsc::channel();
        let [p, q] = thread::scope(|scope| {
            for _ in 0..2 {
                let found = found.clone();
                let stop = &stop;
                scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(prime) = search_prime(half, stop) {
                            // The receiver is gone once it has two: nothing to do then.
                            let _ = found.send(prime);
                        }
                    }
                });
            }
            // Only the threads hold senders now: if both died, `recv` fails instead of waiting.
            drop(found);
            let pair = [(); 2].map(|_| primes.recv().expect("a prime search thread"));
            stop.store(true, Ordering::Relaxed);
            pair
        });
        if p == q {
            continue;
        }
        if let Ok(key) = rsa::PrivateKey::from_p_q(p, q, rsa::BoxedUint::from(65537u32))
            && key.size() * 8 == bits
        {
            return key;
        }
    }
}

/// The first prime at or after a random odd `bits`-bit start with its two top bits set, unless
/// `stop` is raised first.
fn search_prime(bits: NonZeroU32, stop: &AtomicBool) -> Option<rsa::BoxedUint> {
    // Fails only when the OS has no randomness to give, which we cannot recover from.
    let start: rsa::BoxedUint =
        random_odd_integer::<rsa::BoxedUint, _>(&mut UnwrapErr(SysRng), bits, SetBits::TwoMsb)
            .expect("a random odd integer of the size asked for")
            .get();
    SmallFactorsSieve::new(start, bits, false)
        .expect("the start fits the bit length")
        .take_while(|_| !stop.load(Ordering::Relaxed))
        .find(|candidate| is_prime(Flavor::Any, candidate))
}

fn load(path: &Path) -> Result<PrivateKey> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Error::usage(format!(
            "cannot read --key {}: {}",
            path.display(),
            crate::kubeconfig::file::io_reason(&e)
        ))
    })?);
    parse_pem(&text).map_err(|why| Error::usage(format!("--key {}: {why}", path.display())))
}

/// A PEM private key: PKCS#8 (RSA or EC), PKCS#1 (RSA) or SEC1 (EC), P-256 or P-384.
/// Errors never quote the input.
pub fn parse_pem(pem: &[u8]) -> Result<PrivateKey, String> {
    let not_a_key = || "it is not a PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string();
    let (label, der) =
        crate::pki::pem::decode(crate::pki::pem::block(pem, "PRIVATE KEY").unwrap_or(pem))
            .map_err(|_| not_a_key())?;
    let der = Zeroizing::new(der);
    let corrupt = || format!("its {label} block is corrupt");
    let key = match label.as_str() {
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).map_err(|_| corrupt())?;
            match info.algorithm.oid {
                oid::RSA => PrivateKey::Rsa(Box::new(
                    rsa::PrivateKey::from_pkcs8_der(&der).map_err(|_| corrupt())?,
                )),
                oid::EC => match info.algorithm.parameters_oid().map_err(|_| corrupt())? {
                    curve if curve == p256::NistP256::OID => PrivateKey::P256(
                        p256::SecretKey::from_pkcs8_der(&der).map_err(|_| corrupt())?,
                    ),
                    curve if curve == p384::NistP384::OID => PrivateKey::P384(
                        p384::SecretKey::from_pkcs8_der(&der).map_err(|_| corrupt())?,
                    ),
                    curve => {
                        return Err(format!(
                            "its EC curve {curve} is not supported: use P-256 or P-384"
                        ));
                    }
                },
                oid => {
                    return Err(format!(
                        "its key algorithm {oid} is not supported: use RSA or ECDSA P-256/P-384"
                    ));
                }
            }
        }
        "RSA PRIVATE KEY" => PrivateKey::Rsa(Box::new(
            rsa::PrivateKey::from_pkcs1_der(&der).map_err(|_| corrupt())?,
        )),
        "EC PRIVATE KEY" => {
            // SEC1 names its curve; each parser refuses the other's.
            if let Ok(k) = p256::SecretKey::from_sec1_der(&der) {
                PrivateKey::P256(k)
            } else if let Ok(k) = p384::SecretKey::from_sec1_der(&der) {
                PrivateKey::P384(k)
            } else {
                return Err("its EC key is not on P-256 or P-384, or is corrupt".into());
            }
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err(
                "it is encrypted: decrypt it first, e.g. openssl pkey -in KEY -out plain.key (keep the result 0600)".into(),
            );
        }
        other => return Err(format!("its PEM block is '{other}', not a private key")),
    };
    if let PrivateKey::Rsa(k) = &key {
        let bits = k.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!("its RSA key has {bits} bits; use 2048 or more"));
        }
        // The rsa crate checks signatures of keys up to 4096 bits: a larger key's request
        // could not be checked by `approve` or `sign`, nor proven here.
        if bits > MAX_RSA_BITS {
            return Err(format!(
                "its RSA key has {bits} bits, more than the 4096 whose signatures kubectl onboard (and its approve) can check; use 2048 to 4096"
            ));
        }
    }
    Ok(key)
}

/// The first `…PRIVATE KEY` PEM block: `openssl ecparam -genkey` writes an `EC PARAMETERS`
/// block before it. Without one, the whole input (so that errors name what it is instead).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pkcs8_pem() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = generate(alg);
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let back = parse_pem(pem.as_bytes()).unwrap();
            assert_eq!(back.public_key_der(), key.public_key_der());
            assert_eq!(back.algorithm(), key.algorithm());
        }
    }

    /// The two-thread prime search makes sound keys of the size asked for: rsa's own checks,
    /// then openssl's (`openssl pkey -check`: primality of p and q, n = p·q, d·e ≡ 1, the CRT
    /// values), and no two keys alike.
    #[test]
    fn rsa_keys_of_every_size_pass_rsa_s_and_openssl_s_checks() {
        let mut moduli = std::collections::BTreeSet::new();
        for bits in [2048, 2048, 3072, 4096] {
            let key = rsa_key(bits);
            assert_eq!(key.size() * 8, bits);
            assert_eq!(key.e(), &rsa::BoxedUint::from(65537u32));
            key.validate().unwrap();
            assert!(moduli.insert(key.n().to_be_bytes()), "the same key twice");
            let pem = PrivateKey::Rsa(Box::new(key)).to_pem();
            let mut openssl = std::process::Command::new("openssl")
                .args(["pkey", "-check", "-noout"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("openssl, the independent checker the tests use");
            use std::io::Write as _;
            openssl
                .stdin
                .take()
                .unwrap()
                .write_all(pem.as_bytes())
                .unwrap();
            let out = openssl.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.contains("Key is valid"),
                "{said}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_before_a_label_do_not_panic() {
        // Found by the pem_keys fuzz target: offsets taken from a lossy UTF-8 copy.
        let mut input = vec![0xFF; 14];
        input.extend_from_slice(b"-----BEGIN PRIVATE KEY-----");
        assert!(parse_pem(&input).is_err());
        let mut input = vec![0xFF; 3];
        input.extend_from_slice(generate(KeyAlgorithm::EcdsaP256).to_pem().as_bytes());
        assert!(parse_pem(&input).is_ok());
    }

    #[test]
    fn a_leading_ec_parameters_block_is_skipped() {
        let key = generate(KeyAlgorithm::EcdsaP256);
        let pem = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            *key.to_pem()
        );
        assert_eq!(
            parse_pem(pem.as_bytes()).unwrap().public_key_der(),
            key.public_key_der()
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(generate(KeyAlgorithm::EcdsaP256).algorithm(), "ECDSA-P256");
        assert_eq!(
            "rsa-4096".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::Rsa4096
        );
        let err = "dsa".parse::<KeyAlgorithm>().unwrap_err();
        assert!(err.to_string().contains("ecdsa-p256"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = generate(KeyAlgorithm::EcdsaP256);
        assert_eq!(format!("{key:?}"), "PrivateKey(ECDSA-P256)");
    }

    #[test]
    fn errors_name_the_problem_without_quoting_input() {
        let secret = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END RSA PRIVATE KEY-----\n";
        let err = parse_pem(secret.as_bytes()).unwrap_err();
        assert!(err.contains("corrupt") && !err.contains("c2Vj"), "{err}");
        assert!(
            parse_pem(b"hello")
                .unwrap_err()
                .contains("not a PEM private key")
        );
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(parse_pem(enc.as_bytes()).unwrap_err().contains("encrypted"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            parse_pem(cert.as_bytes())
                .unwrap_err()
                .contains("CERTIFICATE")
        );
    }

    #[test]
    fn public_keys_are_described_as_we_name_keys() {
        for (alg, name, rsa) in [
            (KeyAlgorithm::Rsa2048, "RSA-2048", true),
            (KeyAlgorithm::EcdsaP256, "ECDSA-P256", false),
            (KeyAlgorithm::EcdsaP384, "ECDSA-P384", false),
        ] {
            let key = generate(alg);
            assert_eq!(
                describe_public_key(&key.public_key_der()).unwrap(),
                (name.to_string(), rsa)
            );
            assert_eq!(KeyAlgorithm::of(&key), alg);
        }
        assert!(
            describe_public_key(b"junk")
                .unwrap_err()
                .contains("corrupt")
        );
    }
}
