//! The connection to the cluster: a kube client for the context in use (kube reads the same
//! files kubectl reads and runs exec plugins and the like), and the one place where API errors
//! become sentences.

use std::error::Error as _;
use std::path::Path;

use base64ct::{Base64, Encoding};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{Error, Result};
use crate::kubeconfig::{Loaded, Target};

pub struct Connection {
    pub client: Client,
    pub config: Config,
    pub server: String,
}

impl Connection {
    pub async fn open(loaded: &Loaded, target: &Target) -> Result<Connection> {
        let config = Self::config(loaded, target).await?;
        Self::with_config(config, &target.server)
    }

    /// The cluster of `target` without credentials: to prove new ones with
    /// [`Connection::as_certificate`] when the context's user holds no key yet (import).
    pub async fn open_unauthenticated(loaded: &Loaded, target: &Target) -> Result<Connection> {
        let mut config = Self::config(loaded, target).await?;
        config.auth_info = AuthInfo::default();
        Self::with_config(config, &target.server)
    }

    async fn config(loaded: &Loaded, target: &Target) -> Result<Config> {
        let mut merged: Option<Kubeconfig> = None;
        for path in &loaded.sources.read {
            let next = Kubeconfig::read_from(path).map_err(|e| unusable(path, &e))?;
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next).map_err(|e| unusable(path, &e))?,
            });
        }
        let kubeconfig = merged.unwrap_or_default();
        let options = KubeConfigOptions {
            context: Some(target.context.clone()),
            ..Default::default()
        };
        Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                Error::failed(format!(
                    "cannot use context \"{}\": {}; check it with kubectl --context {} cluster-info",
                    target.context, e, target.context
                ))
            })
    }

    fn with_config(config: Config, server: &str) -> Result<Connection> {
        let client = Client::try_from(config.clone()).map_err(|e| {
            Error::failed(format!(
                "cannot set up a connection to {server}: {}; check the kubeconfig's certificates and keys",
                top_message(&e)
            ))
        })?;
        Ok(Connection {
            client,
            config,
            server: server.to_string(),
        })
    }

    /// The same cluster, authenticated only by the new certificate and key.
    pub fn as_certificate(&self, cert_pem: &str, key_pem: &str) -> Result<Connection> {
        let mut config = self.config.clone();
        config.auth_info = AuthInfo {
            client_certificate_data: Some(Base64::encode_string(cert_pem.as_bytes())),
            client_key_data: Some(Base64::encode_string(key_pem.as_bytes()).into()),
            ..Default::default()
        };
        Self::with_config(config, &self.server)
    }

    /// `doing` completes "… while {doing}"; e.g. "creating the CertificateSigningRequest".
    pub fn api_error(&self, doing: &str, e: kube::Error) -> Error {
        let server = &self.server;
        match e {
            kube::Error::Api(status) => match status.code {
                401 => Error::failed(format!(
                    "the API server at {server} rejected your credentials (401 Unauthorized) while {doing}; log in again: a token or certificate may have expired"
                )),
                403 => Error::failed(format!(
                    "forbidden while {doing}: {}; ask an administrator for the permission",
                    status.message
                )),
                // A proxy in front may answer with a page of HTML: not worth quoting.
                code if status.message.contains('<') || status.message.len() > 300 => {
                    Error::failed(format!(
                        "the API server at {server} answered {code} while {doing}, without a Kubernetes status; check the server URL and any proxy in between"
                    ))
                }
                code => Error::failed(format!(
                    "the API server answered {code} {} while {doing}: {}",
                    status.reason, status.message
                )),
            },
            kube::Error::Auth(e) => Error::failed(format!(
                "cannot get credentials for the context while {doing}: {}; check the kubeconfig's user (exec plugin, token file)",
                top_message(&e)
            )),
            other => Error::failed(format!(
                "cannot reach the API server at {server} while {doing}: {}; check that the cluster is up and the kubeconfig's server URL and CA",
                chain(&other)
            )),
        }
    }
}

fn unusable(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::failed(format!(
        "kubeconfig {} cannot be used: {e}; check it with kubectl config view",
        path.display()
    ))
}

fn top_message(e: &dyn std::error::Error) -> String {
    e.to_string()
}

/// "a: b: c" for an error and its sources, without repeats (connection errors nest deeply).
fn chain(e: &kube::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
