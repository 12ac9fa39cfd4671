//! Write: the new user's entries, all of it or nothing. Merged into the kubeconfig kubectl
//! writes to (with the certificate and key embedded, or in files beside it with
//! `--embed=false`), or a kubeconfig of its own to hand over. `renew` replaces credentials in
//! place instead (cmd/renew.rs); every write goes through [`Transaction`] and kubectl's lock.

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::kubeconfig::edit::Section;
use crate::kubeconfig::file::{self, Mode, Transaction};
use crate::kubeconfig::{self, Entries, Loaded, Target};

/// Where a new user's entries go.
pub enum Destination<'a> {
    /// Into the files kubectl reads: new entries to the file kubectl writes to, replaced ones
    /// (with `--force`) back to their own. With `cluster` (name, body), that cluster entry
    /// too (offline, import); with `use_context`, the current context becomes the new one.
    Merge {
        loaded: &'a Loaded,
        cluster: Option<(&'a str, &'a Value)>,
        use_context: bool,
    },
    /// A kubeconfig of its own (0600) with the cluster, its CA embedded.
    Standalone { path: &'a Path, target: &'a Target },
}

/// What a `--force` write replaces rather than adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    pub user: bool,
    pub context: bool,
    /// The current context uses the replaced user: it signs in with the new certificate now.
    pub in_use: bool,
}

/// How a user entry holds its certificate and key.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// `client-certificate-data` and, when there is one here, `client-key-data`.
    Embedded {
        cert_pem: &'a str,
        key_pem: Option<&'a str>,
    },
    /// `client-certificate` and `client-key`: paths of files written beside (`--embed=false`).
    Files(&'a CredentialFiles),
}

/// With `--embed=false`: where certificate and key go (0600, under ~/.kube/onboard).
pub struct CredentialFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CredentialFiles {
    /// The files of context `context`; `None` with `embed` (the default).
    pub fn unless_embedded(embed: bool, context: &str) -> Result<Option<CredentialFiles>> {
        if embed {
            return Ok(None);
        }
        let home = dirs::home_dir().ok_or_else(|| {
            Error::failed("cannot find your home directory for ~/.kube/onboard: set HOME, or keep the default --embed=true")
        })?;
        let dir = home.join(".kube").join("onboard");
        let stem: String = context
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(Some(CredentialFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        }))
    }

    fn paths(&self) -> [&PathBuf; 2] {
        [&self.cert, &self.key]
    }
}

/// The user `user` with its credentials, and the context `context` that joins it to
/// `cluster_name` (in `namespace`, if given): what every new user gets.
pub fn new_user_entries(
    user: &str,
    cluster_name: &str,
    context: &str,
    credentials: Credentials<'_>,
    namespace: Option<&str>,
) -> Entries {
    let user_body = match credentials {
        Credentials::Embedded { cert_pem, key_pem } => {
            let mut body = json!({
                "client-certificate-data": Base64::encode_string(cert_pem.as_bytes()),
            });
            if let Some(key_pem) = key_pem {
                body["client-key-data"] = Value::String(Base64::encode_string(key_pem.as_bytes()));
            }
            body
        }
        Credentials::Files(f) => json!({
            "client-certificate": f.cert.display().to_string(),
            "client-key": f.key.display().to_string(),
        }),
    };
    let mut context_body = json!({"cluster": cluster_name, "user": user});
    if let Some(ns) = namespace {
        context_body["namespace"] = Value::String(ns.to_string());
    }
    Entries {
        user: user.to_string(),
        user_body,
        context: context.to_string(),
        context_body,
    }
}

impl Destination<'_> {
    /// Refuses, before anything is sent, to take names (and files) that exist, unless `force`.
    pub fn check_free(
        &self,
        user: &str,
        context: &str,
        files: Option<&CredentialFiles>,
        force: bool,
    ) -> Result<()> {
        if force {
            return Ok(());
        }
        match self {
            Destination::Standalone { path, .. } => kubeconfig::check_output_free(path, false),
            Destination::Merge { loaded, .. } => {
                loaded.check_free(&Entries {
                    user: user.to_string(),
                    user_body: Value::Null,
                    context: context.to_string(),
                    context_body: Value::Null,
                })?;
                match files
                    .into_iter()
                    .flat_map(CredentialFiles::paths)
                    .find(|p| p.exists())
                {
                    Some(path) => Err(exists(path, "replace it, or remove it")),
                    None => Ok(()),
                }
            }
        }
    }

    /// The entries named `user` and `context` that a write would replace (with `--force`).
    pub fn replaced(&self, user: &str, context: &str) -> Replaced {
        let Destination::Merge { loaded, .. } = self else {
            return Replaced::default();
        };
        let merged = &loaded.merged;
        let user_of_current = merged
            .current_context()
            .and_then(|(_, name)| merged.find(Section::Contexts, name))
            .and_then(|(_, body)| body.get("user").and_then(Value::as_str));
        let replaced_user = merged.find(Section::Users, user).is_some();
        Replaced {
            user: replaced_user,
            context: merged.find(Section::Contexts, context).is_some(),
            in_use: replaced_user && user_of_current == Some(user),
        }
    }

    /// With a private key embedded: a warning when the kubeconfig it goes into may be read by
    /// group or others (kubectl keeps a file's mode when it writes; so do we).
    pub fn exposure(&self) -> Option<String> {
        let Destination::Merge { loaded, .. } = self else {
            return None; // a standalone file is always 0600
        };
        let path = &loaded.sources.destination;
        let mode = file::readable_by_others(path)?;
        Some(format!(
            "{} may be read by others (mode {mode:04o}) and now holds a private key; kubectl keeps a file's mode, and so does kubectl onboard: run chmod 600 {}",
            path.display(),
            path.display()
        ))
    }

    /// The file a write would change first: checked to be writable before anything is sent.
    pub fn probe(&self) -> Result<()> {
        file::probe(match self {
            Destination::Standalone { path, .. } => path,
            Destination::Merge { loaded, .. } => &loaded.sources.destination,
        })
    }

    /// Writes `entries` (and with `files`, the certificate and key in them): all of it or, on
    /// an error, nothing. Returns the kubeconfig files written.
    pub fn write(
        &self,
        entries: &Entries,
        files: Option<(&CredentialFiles, &str, &str)>,
        force: bool,
    ) -> Result<Vec<PathBuf>> {
        match self {
            Destination::Standalone { path, target } => {
                kubeconfig::write_standalone(
                    path,
                    &kubeconfig::standalone(target, entries)?,
                    force,
                )?;
                Ok(vec![path.to_path_buf()])
            }
            Destination::Merge {
                loaded,
                cluster,
                use_context,
            } => Transaction::all(|tx| {
                if let Some((f, cert_pem, key_pem)) = files {
                    tx.write(&f.cert, cert_pem.as_bytes(), Mode::Secret)?;
                    tx.write(&f.key, key_pem.as_bytes(), Mode::Secret)?;
                }
                loaded.merge_with_cluster(entries, *cluster, force, *use_context, tx)
            }),
        }
    }
}

fn exists(path: &Path, what_to_do: &str) -> Error {
    Error::failed(format!(
        "{} already exists; pass --force to {what_to_do}",
        path.display()
    ))
}
