//! The client certificates a kubeconfig holds: every user whose entry has one (embedded, or in
//! the file it names), read. Used by `status` and `offboard`.

use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::Value;
use x509_cert::der::Encode;

use super::credential::{self, Field};
use super::edit::{Merged, Section};

/// A user of the kubeconfig with a client certificate, and the file its entry is in.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub user: String,
    pub source: PathBuf,
    /// `Err`: why the certificate cannot be read.
    pub certificate: std::result::Result<Cert, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cert {
    pub common_name: String,
    pub groups: Vec<String>,
    pub issuer: String,
    pub not_after: SystemTime,
    /// SHA-256 of the DER, in hex: the key of the revocation list.
    pub fingerprint: String,
}

/// Every user with a client certificate, read (from the kubeconfig, or the file it names), in
/// kubectl's order: first file first, and a name defined again in a later file is the earlier
/// one's.
pub fn held(merged: &Merged) -> Vec<Held> {
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for doc in &merged.documents {
        let users = doc
            .value
            .get(Section::Users.key())
            .and_then(Value::as_array);
        for entry in users.into_iter().flatten() {
            let Some(name) = entry.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(name.to_string()) {
                continue;
            }
            let body = entry.get("user").unwrap_or(&Value::Null);
            let pem = match credential::read(body, &doc.path, Field::ClientCertificate) {
                Ok(Some(certificate)) => Ok(certificate.bytes),
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            rows.push(Held {
                user: name.to_string(),
                source: doc.path.clone(),
                certificate: pem.and_then(|bytes| read_cert(&bytes)),
            });
        }
    }
    rows
}

fn read_cert(pem: &[u8]) -> std::result::Result<Cert, String> {
    let chain =
        crate::pki::pem::certificates(pem).map_err(|_| "not a PEM certificate".to_string())?;
    let leaf = chain.first().ok_or("no certificate in it")?;
    let info = crate::pki::verify::inspect(leaf).map_err(|e| e.to_string())?;
    Ok(Cert {
        common_name: info.common_name.unwrap_or_default(),
        groups: info.organizations,
        issuer: leaf.tbs_certificate().issuer().to_string(),
        not_after: info.not_after,
        fingerprint: crate::pki::sha256_hex(leaf.to_der().map_err(|e| e.to_string())?.as_slice()),
    })
}
