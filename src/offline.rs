//! `kubectl onboard <user> --ca-cert ca.crt --ca-key ca.key --server URL`: the certificate is
//! signed here with the cluster CA, as `kubeadm kubeconfig user` does; no request goes to the
//! cluster and no kubeconfig is read for it. Then the same checks as online (our key, subject,
//! chains to the CA), the SelfSubjectReview proof when the server can be reached, and the same
//! all-or-nothing write, with the cluster entry added from `--server` and the CA.
//!
//! The proof: offline mode exists for clusters one cannot (or would rather not) ask for a
//! certificate, and for preparing credentials away from the cluster, so an unreachable server
//! is a warning, not an error. A server that answers but refuses the certificate (its
//! `--client-ca-file` is another CA) is an error: the file would be useless.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime};

use base64ct::{Base64, Encoding};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::authority::{self, Authority};
use crate::cluster::Connection;
use crate::error::{Error, Kind, Result};
use crate::flow::{CredentialFiles, key_for, new_user_entries};
use crate::key::{KeySource, PrivateKey};
use crate::kubeconfig::file::{Mode, Transaction};
use crate::kubeconfig::{self, ClusterEntry, Entries, Target};
use crate::plan::{self, Offline, Plan, format_duration};
use crate::progress::Progress;
use crate::report::Summary;
use crate::session::display_paths;
use crate::signals::Signals;
use crate::verify;
use crate::whoami::{self, Identity};

/// How long to try to reach the API server for the proof.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn onboard(plan: Plan, offline: Offline) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    let supplied = match &plan.key {
        KeySource::File(_) => Some(PrivateKey::obtain(&plan.key)?),
        KeySource::Generate(_) => None,
    };
    let started = Instant::now();
    let authority = Authority::load(&offline.ca_cert, &offline.ca_key)?;
    progress.detail(&format!(
        "CA {}: valid until {}",
        offline.ca_cert.display(),
        verify::rfc3339(authority.not_after())
    ));
    progress.phase("ca read", started);
    let target = target(&offline, authority.ca_pem());
    let context = format!("{}@{}", plan.user, target.cluster_name);
    let files = CredentialFiles::for_plan(&plan, &context)?;

    // The kubeconfig is read only to merge into it.
    let loaded = match &plan.output_kubeconfig {
        Some(path) => {
            if !plan.force && path.exists() {
                return Err(Error::failed(format!(
                    "{} already exists; pass --force to overwrite it, or choose another --output-kubeconfig",
                    path.display()
                )));
            }
            kubeconfig::file::probe(path)?;
            None
        }
        None => {
            let loaded = kubeconfig::load(plan.kubeconfig.as_deref())?;
            kubeconfig::file::probe(&loaded.sources.destination)?;
            Some(loaded)
        }
    };
    let cluster_entry = match &loaded {
        Some(loaded) => {
            let entry =
                loaded.cluster_entry(&target.cluster_name, &target.server, authority.ca_pem())?;
            if !plan.force {
                loaded.check_free(&Entries {
                    user: plan.user.clone(),
                    user_body: Value::Null,
                    context: context.clone(),
                    context_body: Value::Null,
                })?;
                if let ClusterEntry::Different(path) = &entry {
                    return Err(Error::failed(format!(
                        "cluster \"{}\" already exists in {} with another server or CA; pass --cluster-name NAME to add this one under another name, or --force to replace it",
                        target.cluster_name,
                        path.display()
                    )));
                }
                for path in files.iter().flat_map(|f| [&f.cert, &f.key]) {
                    if path.exists() {
                        return Err(Error::failed(format!(
                            "{} already exists; pass --force to replace it, or remove it",
                            path.display()
                        )));
                    }
                }
            }
            entry
        }
        None => ClusterEntry::Absent,
    };

    let key = key_for(&plan, supplied, &mut progress)?;

    let started = Instant::now();
    let now = SystemTime::now();
    let verified = sign(
        &authority,
        &plan.user,
        &plan.groups,
        &key,
        plan.duration,
        now,
        &mut progress,
    )?;
    progress.phase("sign", started);
    progress.step(&format!(
        "Certificate signed here with the cluster CA, valid until {}",
        verify::rfc3339(verified.info.not_after)
    ));
    if plan.groups.iter().any(|g| g == plan::MASTERS) {
        progress.warn(&masters_warning(&plan.user, verified.info.not_after));
    }

    let key_pem = key.to_pem();
    let entries = new_user_entries(
        &plan,
        &target.cluster_name,
        &context,
        &verified.pem,
        &key_pem,
        files.as_ref(),
    );

    let identity = if plan.prove_identity {
        let started = Instant::now();
        // The file we are about to write, with the key embedded whatever --embed says.
        let embedded = Entries {
            user_body: json!({
                "client-certificate-data": Base64::encode_string(verified.pem.as_bytes()),
                "client-key-data": Base64::encode_string(key_pem.as_bytes()),
            }),
            ..entries.clone()
        };
        let config = kubeconfig::standalone(&target, &embedded)?;
        let proof = prove(&target.server, &config, &plan.user, &mut progress);
        let identity = signals
            .interruptible(proof)
            .await
            .map_err(|e| match e.kind {
                Kind::Interrupted | Kind::Terminated => {
                    Error::new(e.kind, format!("{e}; no file was changed"))
                }
                _ => e,
            })?;
        progress.phase("selfsubjectreview", started);
        identity
    } else {
        None
    };

    let started = Instant::now();
    let written = match (&plan.output_kubeconfig, &loaded) {
        (Some(path), _) => {
            kubeconfig::write_standalone(
                path,
                &kubeconfig::standalone(&target, &entries)?,
                plan.force,
            )?;
            vec![path.clone()]
        }
        (None, Some(loaded)) => {
            let cluster = match cluster_entry {
                ClusterEntry::Same => None,
                _ => Some((target.cluster_name.as_str(), &target.cluster)),
            };
            let mut tx = Transaction::default();
            let result = (|| {
                if let Some(f) = &files {
                    tx.write(&f.cert, verified.pem.as_bytes(), Mode::Secret)?;
                    tx.write(&f.key, key_pem.as_bytes(), Mode::Secret)?;
                }
                loaded.merge_with_cluster(&entries, cluster, plan.force, plan.use_context, &mut tx)
            })();
            if result.is_err() {
                tx.roll_back();
            }
            result?
        }
        (None, None) => {
            unreachable!("the kubeconfig is loaded whenever there is no --output-kubeconfig")
        }
    };
    progress.phase("kubeconfig write", started);
    progress.detail(&format!("wrote {}", display_paths(&written)));
    progress.print_timings();

    let summary = Summary {
        user: plan.user.clone(),
        groups: plan.groups.clone(),
        context,
        cluster: target.cluster_name.clone(),
        kubeconfigs: written,
        standalone: plan.output_kubeconfig.is_some(),
        csr: String::new(),
        certificate: verified.info,
        key_algorithm: key.algorithm(),
        identity,
        switched: plan.use_context,
    };
    print!("{}", summary.render(plan.output)?);
    Ok(())
}

/// The cluster as offline mode describes it: `--server`, the CA, `--cluster-name`.
pub fn target(offline: &Offline, ca_pem: &[u8]) -> Target {
    Target {
        context: String::new(),
        cluster_name: offline.cluster_name.clone(),
        cluster: json!({
            "certificate-authority-data": Base64::encode_string(ca_pem),
            "server": offline.server,
        }),
        server: offline.server.clone(),
        ca_pem: Some(ca_pem.to_vec()),
    }
}

/// Signs for `key` and checks the result as an issued certificate is checked. `lifetime`
/// `None` is the signer's default, a year.
pub fn sign(
    authority: &Authority,
    user: &str,
    groups: &[String],
    key: &PrivateKey,
    lifetime: Option<Duration>,
    now: SystemTime,
    progress: &mut Progress,
) -> Result<verify::Verified> {
    let public_key_der = key.public_key_der();
    let lifetime = lifetime.unwrap_or(authority::DEFAULT_DURATION);
    let signed = authority.sign(user, groups, &public_key_der, lifetime, now)?;
    let verified = verify::check(
        signed.pem.as_bytes(),
        &verify::Expected {
            user,
            groups,
            public_key_der: &public_key_der,
            duration: None,
            ca_pem: Some(authority.ca_pem()),
            now,
        },
    )?;
    if let Some(end) = signed.capped_at {
        progress.warn(&format!(
            "the CA certificate expires at {}, so the new certificate ends then instead of lasting {}",
            verify::rfc3339(end),
            format_duration(lifetime)
        ));
    }
    for warning in &verified.warnings {
        progress.warn(warning);
    }
    Ok(verified)
}

pub fn masters_warning(user: &str, not_after: SystemTime) -> String {
    format!(
        "SECURITY: {user} is in group {}: this credential is cluster-admin, beyond any RBAC rule, and Kubernetes cannot revoke a client certificate: it stays valid until {} unless the cluster CA itself is replaced. Keep it safe; prefer binding a ClusterRole and a short --duration",
        plan::MASTERS,
        verify::rfc3339(not_after)
    )
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

/// The SelfSubjectReview with the standalone kubeconfig `config`, if the server can be reached;
/// a warning otherwise.
pub async fn prove(
    server: &str,
    config: &Value,
    user: &str,
    progress: &mut Progress,
) -> Result<Option<Identity>> {
    if !reachable(server).await {
        progress.warn(&format!(
            "cannot reach the API server at {server}; the new credentials were not proven (check later with kubectl auth whoami)"
        ));
        return Ok(None);
    }
    let conn = connect(server, config).await?;
    let identity = whoami::prove(&conn, user).await?;
    if identity.is_none() {
        progress.warn("the cluster has no SelfSubjectReview API (Kubernetes < 1.28); the new credentials were not proven");
    }
    Ok(identity)
}

/// A connection from a standalone kubeconfig (the one about to be written).
pub async fn connect(server: &str, config: &Value) -> Result<Connection> {
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
