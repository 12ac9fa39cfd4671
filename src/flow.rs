//! `kubectl onboard <user>`, step by step: plan → key → csr → submit/approve → wait → verify →
//! prove → kubeconfig → report. Each step lives in the file named after it; this one orders
//! them. Nothing is written unless every step before succeeded, and then all of it or nothing.

use std::path::PathBuf;
use std::time::Instant;

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::csr;
use crate::error::{Error, Kind, Result};
use crate::issue::{self, Issued};
use crate::key::{KeySource, PrivateKey};
use crate::kubeconfig::file::{Mode, Transaction};
use crate::kubeconfig::{self, Entries, Loaded};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::rbac;
use crate::report::Summary;
use crate::session::{Local, display_paths};
use crate::signals::Signals;
use crate::submit::Request;
use crate::whoami;

pub async fn onboard(plan: Plan) -> Result<()> {
    if let Some(offline) = plan.offline.clone() {
        return crate::offline::onboard(plan, offline).await;
    }
    let mut signals = Signals::install()?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    // A supplied key first: a bad --key file is a usage error before anything else.
    let supplied = match &plan.key {
        KeySource::File(_) => Some(PrivateKey::obtain(&plan.key)?),
        KeySource::Generate(_) => None,
    };

    let local = Local::load(
        plan.kubeconfig.as_deref(),
        plan.context.as_deref(),
        &mut progress,
    )?;
    let context = format!("{}@{}", plan.user, local.target.cluster_name);
    let files = CredentialFiles::for_plan(&plan, &context)?;
    check_names_are_free(&plan, &local.loaded, &context, files.as_ref())?;
    let destination = plan
        .output_kubeconfig
        .as_ref()
        .unwrap_or(&local.loaded.sources.destination);
    kubeconfig::file::probe(destination)?;
    let session = local
        .connect(plan.approve, &plan.grants, &mut signals, &mut progress)
        .await?;

    let key = key_for(&plan, supplied, &mut progress)?;
    let started = Instant::now();
    let request_pem = csr::build(&plan.user, &plan.groups, &key)?;
    progress.phase("csr build", started);

    let request = Request {
        user: &plan.user,
        pem: &request_pem,
        rsa: key.is_rsa(),
        duration: plan.duration,
        key_algorithm: &key.algorithm(),
    };
    let options = issue::Options {
        approve: plan.approve,
        timeout: plan.timeout,
        keep_csr: plan.keep_csr,
    };
    let Issued { verified, csr_name } = issue::issue(
        &session,
        &request,
        &plan.groups,
        &key.public_key_der(),
        &options,
        &mut signals,
        &mut progress,
    )
    .await?;

    let identity = if plan.prove_identity {
        let started = Instant::now();
        let proof = whoami::prove_certificate(
            &session.conn,
            &verified.pem,
            &key,
            &plan.user,
            &mut progress,
        );
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

    // Bindings before files: if one fails, no file has changed.
    for grant in &plan.grants {
        let made = signals
            .interruptible(rbac::bind(&session.conn, &plan.user, grant))
            .await?;
        progress.step(&format!(
            "{} {} for {}",
            if made { "Created" } else { "Kept the existing" },
            grant.describe(),
            plan.user
        ));
    }

    let target = &session.local.target;
    let key_pem = key.to_pem();
    let entries = new_user_entries(
        &plan,
        &target.cluster_name,
        &context,
        &verified.pem,
        &key_pem,
        files.as_ref(),
    );

    let started = Instant::now();
    let written = match &plan.output_kubeconfig {
        Some(path) => {
            kubeconfig::write_standalone(
                path,
                &kubeconfig::standalone(target, &entries)?,
                plan.force,
            )?;
            vec![path.clone()]
        }
        None => {
            let mut tx = Transaction::default();
            let result = (|| {
                if let Some(f) = &files {
                    tx.write(&f.cert, verified.pem.as_bytes(), Mode::Secret)?;
                    tx.write(&f.key, key_pem.as_bytes(), Mode::Secret)?;
                }
                session
                    .local
                    .loaded
                    .merge(&entries, plan.force, plan.use_context, &mut tx)
            })();
            if result.is_err() {
                tx.roll_back();
            }
            result?
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
        csr: csr_name,
        certificate: verified.info,
        key_algorithm: key.algorithm(),
        identity,
        switched: plan.use_context,
    };
    print!("{}", summary.render(plan.output)?);
    Ok(())
}

/// Names we would take must be free unless --force: checked before anything is sent.
fn check_names_are_free(
    plan: &Plan,
    loaded: &Loaded,
    context: &str,
    files: Option<&CredentialFiles>,
) -> Result<()> {
    if plan.force {
        return Ok(());
    }
    if let Some(path) = &plan.output_kubeconfig {
        if path.exists() {
            return Err(Error::failed(format!(
                "{} already exists; pass --force to overwrite it, or choose another --output-kubeconfig",
                path.display()
            )));
        }
        return Ok(());
    }
    loaded.check_free(&Entries {
        user: plan.user.clone(),
        user_body: Value::Null,
        context: context.to_string(),
        context_body: Value::Null,
    })?;
    if let Some(f) = files {
        for path in [&f.cert, &f.key] {
            if path.exists() {
                return Err(Error::failed(format!(
                    "{} already exists; pass --force to replace it, or remove it",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The key read early from `--key`, or one generated now; says which.
pub(crate) fn key_for(
    plan: &Plan,
    supplied: Option<PrivateKey>,
    progress: &mut Progress,
) -> Result<PrivateKey> {
    let started = Instant::now();
    let key = match supplied {
        Some(key) => key,
        None => PrivateKey::obtain(&plan.key)?,
    };
    progress.phase("key", started);
    progress.step(&match &plan.key {
        KeySource::Generate(_) => format!("Generated a private key ({})", key.algorithm()),
        KeySource::File(path) => format!(
            "Using the private key in {} ({})",
            path.display(),
            key.algorithm()
        ),
    });
    Ok(key)
}

/// The user (embedded credentials, or with `--embed=false` the paths of its files) and the
/// context `<user>@<cluster>` that a new user gets.
pub(crate) fn new_user_entries(
    plan: &Plan,
    cluster_name: &str,
    context: &str,
    cert_pem: &str,
    key_pem: &str,
    files: Option<&CredentialFiles>,
) -> Entries {
    let user_body = match files {
        None => json!({
            "client-certificate-data": Base64::encode_string(cert_pem.as_bytes()),
            "client-key-data": Base64::encode_string(key_pem.as_bytes()),
        }),
        Some(f) => json!({
            "client-certificate": f.cert.display().to_string(),
            "client-key": f.key.display().to_string(),
        }),
    };
    let mut context_body = json!({"cluster": cluster_name, "user": plan.user});
    if let Some(ns) = &plan.namespace {
        context_body["namespace"] = Value::String(ns.clone());
    }
    Entries {
        user: plan.user.clone(),
        user_body,
        context: context.to_string(),
        context_body,
    }
}

/// With `--embed=false`: where certificate and key go (0600, under ~/.kube).
pub(crate) struct CredentialFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CredentialFiles {
    pub(crate) fn for_plan(plan: &Plan, context: &str) -> Result<Option<CredentialFiles>> {
        if plan.embed {
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
}
