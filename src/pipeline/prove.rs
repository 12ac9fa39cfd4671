//! Prove: with only the new certificate and key, ask the cluster who we are (a
//! SelfSubjectReview, what `kubectl auth whoami` uses), before anything is written.
//!
//! Offline signing exists for clusters one cannot (or would rather not) ask for a certificate,
//! and for preparing credentials away from the cluster, so there an unreachable server is a
//! warning, not an error. A server that answers but refuses the certificate (its
//! `--client-ca-file` is another CA) is an error: the file would be useless.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

use crate::cluster::Connection;
use crate::cluster::whoami::{self, Identity};
use crate::error::{Error, Result};
use crate::kubeconfig::{self, Target};
use crate::pki::key::PrivateKey;
use crate::signals::Signals;
use crate::ui::progress::Progress;

use super::answered;
use super::write::{Credentials, new_user_entries};

const DOING: &str = "proving the new credentials";

/// How long to try to reach the API server for an offline proof.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to prove the new credentials.
#[derive(Clone, Copy)]
pub enum Proof<'a> {
    /// The cluster of this connection (whose own credentials are not used).
    Cluster(&'a Connection),
    /// A cluster known only from its entry (offline): proven if it can be reached.
    Reachable(&'a Target),
    /// The same, found reachable already (batch checks once, not once a user).
    Reached(&'a Target),
}

/// The identity the cluster sees for `cert_pem` with `key`; `None` when it cannot tell (said
/// as a warning). Interrupted, the error says that no file was changed.
pub async fn prove(
    proof: Proof<'_>,
    cert_pem: &str,
    key: &PrivateKey,
    user: &str,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<Option<Identity>> {
    let started = Instant::now();
    let asking = ask(proof, cert_pem, key, user, progress);
    let identity = signals
        .interruptible(answered(DOING, asking))
        .await
        .map_err(|e| match e.is_interruption() {
            true => e.context("no file was changed"),
            false => not_yet_valid(cert_pem).unwrap_or(e),
        })?;
    progress.phase("selfsubjectreview", started);
    Ok(identity)
}

async fn ask(
    proof: Proof<'_>,
    cert_pem: &str,
    key: &PrivateKey,
    user: &str,
    progress: &mut Progress,
) -> Result<Option<Identity>> {
    match proof {
        Proof::Cluster(conn) => {
            whoami::prove_certificate(conn, cert_pem, key, user, progress).await
        }
        Proof::Reachable(target) | Proof::Reached(target) => {
            let server = &target.server;
            if matches!(proof, Proof::Reachable(_)) && !reachable(server).await {
                progress.warn(&format!(
                    "cannot reach the API server at {server}; the new credentials were not proven (check later with kubectl auth whoami)"
                ));
                return Ok(None);
            }
            prove_with_entry(target, cert_pem, key, user, progress).await
        }
    }
}

/// A certificate that starts later than now (a clock ahead on the signer, behind here) is
/// refused by the API server as if its CA were unknown: say what it is instead.
fn not_yet_valid(cert_pem: &str) -> Option<Error> {
    let certificate = crate::pki::pem::certificates(cert_pem.as_bytes()).ok()?;
    let info = crate::pki::verify::inspect(certificate.first()?).ok()?;
    let now = std::time::SystemTime::now();
    (info.not_before > now).then(|| {
        Error::failed(format!(
            "the new certificate is valid only from {}, after this machine's time {}, so the API server does not accept it yet: a clock is off (here or on the signer); nothing was written: fix the clock and run again",
            crate::pki::verify::rfc3339(info.not_before),
            crate::pki::verify::rfc3339(now)
        ))
    })
}

/// The SelfSubjectReview through a connection made from the kubeconfig about to be written.
async fn prove_with_entry(
    target: &Target,
    cert_pem: &str,
    key: &PrivateKey,
    user: &str,
    progress: &mut Progress,
) -> Result<Option<Identity>> {
    let server = &target.server;
    let key_pem = key.to_pem();
    let credentials = Credentials::Embedded {
        cert_pem,
        key_pem: Some(&key_pem),
    };
    let context = format!("{user}@{}", target.cluster_name);
    let entries = new_user_entries(user, &target.cluster_name, &context, credentials, None);
    let conn = connect(server, &kubeconfig::standalone(target, &entries)?).await?;
    let identity = whoami::prove(&conn, user).await?;
    if identity.is_none() {
        progress.warn("the cluster has no SelfSubjectReview API (Kubernetes < 1.28); the new credentials were not proven");
    }
    Ok(identity)
}

/// Whether a TCP connection to the server's host and port opens within a few seconds.
pub async fn reachable(server: &str) -> bool {
    let Some(address) = socket_address(server) else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        address.to_socket_addrs().is_ok_and(|mut addrs| {
            addrs.any(|a| TcpStream::connect_timeout(&a, REACH_TIMEOUT).is_ok())
        })
    })
    .await
    .unwrap_or(false)
}

/// `https://host:6443/x` → `host:6443`; `https://[::1]` → `[::1]:443`.
fn socket_address(server: &str) -> Option<String> {
    let authority = server
        .strip_prefix("https://")?
        .split(['/', '?', '#'])
        .next()?;
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:443")
    })
}

/// A connection from a standalone kubeconfig (the one about to be written).
async fn connect(server: &str, config: &Value) -> Result<Connection> {
    let unusable = |e: &dyn std::fmt::Display| {
        Error::failed(format!(
            "cannot set up a connection to {server} with the new credentials: {e}"
        ))
    };
    let kubeconfig: Kubeconfig =
        serde_json::from_value(config.clone()).map_err(|e| unusable(&e))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| unusable(&e))?;
    config.connect_timeout = Some(REACH_TIMEOUT);
    config.read_timeout = Some(Duration::from_secs(30));
    crate::cluster::tls::install();
    let client = Client::try_from(config.clone()).map_err(|e| unusable(&e))?;
    Ok(Connection {
        client,
        config,
        server: server.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_that_starts_later_is_called_not_yet_valid() {
        let scratch = crate::testing::Scratch::new("later");
        let (ca_pem, ca_key) = crate::testing::ca(scratch.path(), "ca");
        let now = std::time::SystemTime::now();
        let ca = crate::pki::authority::Authority::from_pem(ca_pem, &ca_key, now).unwrap();
        let key = PrivateKey::obtain(&crate::pki::key::KeySource::Generate(
            crate::pki::key::KeyAlgorithm::EcdsaP256,
        ))
        .unwrap();
        let day = Duration::from_secs(86_400);
        let sign = |at| {
            ca.sign("jane", &[], &key.public_key_der(), day, at)
                .unwrap()
                .pem
        };
        let later = not_yet_valid(&sign(now + day)).unwrap().to_string();
        assert!(
            later.contains("is valid only from") && later.contains("a clock is off"),
            "{later}"
        );
        assert!(not_yet_valid(&sign(now)).is_none());
    }

    #[test]
    fn socket_addresses_default_to_443() {
        assert_eq!(
            socket_address("https://10.0.0.1:6443/x").as_deref(),
            Some("10.0.0.1:6443")
        );
        assert_eq!(
            socket_address("https://api.example.com").as_deref(),
            Some("api.example.com:443")
        );
        assert_eq!(
            socket_address("https://[::1]").as_deref(),
            Some("[::1]:443")
        );
        assert_eq!(
            socket_address("https://[::1]:6443").as_deref(),
            Some("[::1]:6443")
        );
        assert_eq!(socket_address("http://x"), None);
    }
}
