//! Where `kubectl onboard request` keeps a private key until its certificate comes back:
//! `~/.kube/onboard/keys/<id>.key`, 0600 in a 0700 directory. `<id>` is the SHA-256 of the
//! public key (its DER SubjectPublicKeyInfo) in hex, so `import` finds the key of a
//! certificate from the certificate alone, and requester and signer can compare it over
//! another channel (`openssl pkey -pubout -outform DER | sha256sum` prints the same).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::kubeconfig::file::{self, Mode, Transaction};
use crate::pki::key::{self, PrivateKey};

const DIR_MODE: u32 = 0o700;

/// `sha256:` and the hex SHA-256 of a DER SubjectPublicKeyInfo, for people.
pub fn fingerprint(public_key_der: &[u8]) -> String {
    format!("sha256:{}", key_id(public_key_der))
}

/// The hex SHA-256 of a DER SubjectPublicKeyInfo: the stored key's file name.
pub fn key_id(public_key_der: &[u8]) -> String {
    Sha256::digest(public_key_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `~/.kube/onboard/keys`.
pub fn dir() -> Result<PathBuf> {
    let home = dirs::home_dir().ok_or_else(|| {
        Error::failed("cannot find your home directory for ~/.kube/onboard/keys: set HOME")
    })?;
    Ok(home.join(".kube").join("onboard").join("keys"))
}

/// Where the key with this public key is kept.
pub fn path_of(public_key_der: &[u8]) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{}.key", key_id(public_key_der))))
}

/// Keeps `key` (0600, directory 0700) through `tx`; a key kept already is left as it is.
pub fn store(key: &PrivateKey, tx: &mut Transaction) -> Result<PathBuf> {
    let public_key_der = key.public_key_der();
    let path = path_of(&public_key_der)?;
    // The same key kept before (a request made again); a damaged file is replaced.
    if let Ok(Some(_)) = find(&public_key_der) {
        return Ok(path);
    }
    let dir = dir()?;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(|e| {
                Error::failed(format!(
                    "cannot create {}: {}; nothing was written",
                    dir.display(),
                    file::io_reason(&e)
                ))
            })?;
        // The mode asked for is cut by the umask; a key directory is ours alone.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE));
    }
    tx.write(&path, key.to_pem().as_bytes(), Mode::Secret)?;
    Ok(path)
}

/// The kept key whose public key is `public_key_der`, if there is one.
pub fn find(public_key_der: &[u8]) -> Result<Option<(PathBuf, PrivateKey)>> {
    let path = path_of(public_key_der)?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => pkcs8::der::zeroize::Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot read the kept key {}: {}; check its permissions",
                path.display(),
                file::io_reason(&e)
            )));
        }
    };
    let key = key::parse_pem(&bytes).map_err(|why| {
        Error::failed(format!(
            "the kept key {} cannot be used: {why}; it is damaged",
            path.display()
        ))
    })?;
    if key.public_key_der() != public_key_der {
        return Err(Error::failed(format!(
            "the kept key {} is not the key its name says; it was replaced or damaged",
            path.display()
        )));
    }
    Ok(Some((path, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_sha256() {
        // printf '' | sha256sum
        assert_eq!(
            key_id(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(fingerprint(b"").len(), 7 + 64);
    }
}
