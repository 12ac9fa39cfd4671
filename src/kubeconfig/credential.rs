//! One reader for the credentials a kubeconfig entry holds, as client-go reads them: the
//! `…-data` field (base64) first, else the file its path field names, relative to the
//! kubeconfig that names it (kube-rs: `load_from_base64_or_file`). Used wherever a cluster's
//! CA or a user's certificate or key is read, so that all of them fail with the same words.

use std::fmt;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use pkcs8::der::zeroize::Zeroizing;
use serde_json::Value;

use super::file;
use crate::error::Error;

/// A credential field pair of a kubeconfig entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A user's `client-certificate-data` / `client-certificate`.
    ClientCertificate,
    /// A user's `client-key-data` / `client-key`.
    ClientKey,
    /// A cluster's `certificate-authority-data` / `certificate-authority`.
    CertificateAuthority,
}

impl Field {
    pub fn data_key(self) -> &'static str {
        match self {
            Field::ClientCertificate => "client-certificate-data",
            Field::ClientKey => "client-key-data",
            Field::CertificateAuthority => "certificate-authority-data",
        }
    }

    pub fn path_key(self) -> &'static str {
        match self {
            Field::ClientCertificate => "client-certificate",
            Field::ClientKey => "client-key",
            Field::CertificateAuthority => "certificate-authority",
        }
    }
}

/// Where a credential lives: in the kubeconfig itself, or in a file it names (resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    Data(Field),
    File(PathBuf),
}

/// A credential as read. The bytes are wiped when dropped: a key may be among them.
pub struct Credential {
    pub slot: Slot,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Why a credential cannot be read. Never quotes the value.
#[derive(Debug)]
pub enum CredentialError {
    NotBase64 {
        field: Field,
        origin: PathBuf,
    },
    Unreadable {
        field: Field,
        path: PathBuf,
        origin: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::NotBase64 { field, origin } => write!(
                f,
                "{} in {} is not base64",
                field.data_key(),
                origin.display()
            ),
            CredentialError::Unreadable {
                field,
                path,
                origin,
                error,
            } => write!(
                f,
                "cannot read {} ({} in {}): {}",
                path.display(),
                field.path_key(),
                origin.display(),
                file::io_reason(error)
            ),
        }
    }
}

impl From<CredentialError> for Error {
    fn from(e: CredentialError) -> Error {
        Error::failed(e.to_string())
    }
}

/// `field` of the entry `body`, defined in the kubeconfig `origin`; `Ok(None)` when the entry
/// has neither of its two keys.
pub fn read(
    body: &Value,
    origin: &Path,
    field: Field,
) -> Result<Option<Credential>, CredentialError> {
    if let Some(text) = body.get(field.data_key()).and_then(Value::as_str) {
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = Base64::decode_vec(&cleaned).map_err(|_| CredentialError::NotBase64 {
            field,
            origin: origin.to_path_buf(),
        })?;
        return Ok(Some(Credential {
            slot: Slot::Data(field),
            bytes: Zeroizing::new(bytes),
        }));
    }
    let Some(named) = body.get(field.path_key()).and_then(Value::as_str) else {
        return Ok(None);
    };
    let path = resolve(origin, named);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(Credential {
            slot: Slot::File(path),
            bytes: Zeroizing::new(bytes),
        })),
        Err(error) => Err(CredentialError::Unreadable {
            field,
            path,
            origin: origin.to_path_buf(),
            error,
        }),
    }
}

/// A path as a kubeconfig names it: relative ones are relative to that kubeconfig's directory.
pub fn resolve(origin: &Path, named: &str) -> PathBuf {
    match origin.parent() {
        Some(dir) if Path::new(named).is_relative() => dir.join(named),
        _ => PathBuf::from(named),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_comes_first_then_a_file_relative_to_the_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("onboard-credential-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), b"from the file").unwrap();
        let origin = dir.join("config");

        let both = json!({"certificate-authority-data": "ZnJvbSBk\nYXRh", "certificate-authority": "ca.crt"});
        let read_ca = |body: &Value| read(body, &origin, Field::CertificateAuthority);
        let data = read_ca(&both).unwrap().unwrap();
        assert_eq!(data.slot, Slot::Data(Field::CertificateAuthority));
        assert_eq!(data.bytes.as_slice(), b"from data");

        let file = read_ca(&json!({"certificate-authority": "ca.crt"}))
            .unwrap()
            .unwrap();
        assert_eq!(file.slot, Slot::File(dir.join("ca.crt")));
        assert_eq!(file.bytes.as_slice(), b"from the file");

        assert!(read_ca(&json!({"server": "https://x"})).unwrap().is_none());
    }

    #[test]
    fn errors_name_the_field_and_the_file_never_the_value() {
        let origin = Path::new("/home/jane/.kube/config");
        let secret = json!({"client-key-data": "not*base64*secret"});
        let e = read(&secret, origin, Field::ClientKey)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "client-key-data in /home/jane/.kube/config is not base64"
        );
        let missing = json!({"client-certificate": "jane.crt"});
        let e = read(&missing, origin, Field::ClientCertificate)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("cannot read /home/jane/.kube/jane.crt (client-certificate in /home/jane/.kube/config): "),
            "{e}"
        );
    }
}
