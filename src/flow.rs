//! The whole flow, step by step: plan → key → csr → submit/approve → wait → verify → prove →
//! kubeconfig → report. Each step lives in the file named after it; this one only orders them,
//! withdraws the request when something fails or the user interrupts, and keeps every file as it
//! was unless the whole flow succeeds.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::access::{self, Permissions};
use crate::cluster::Connection;
use crate::csr;
use crate::error::{Error, Kind, Result};
use crate::key::{KeySource, PrivateKey};
use crate::kubeconfig::file::{Mode, Transaction};
use crate::kubeconfig::{self, Entries, Loaded, Target};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::Summary;
use crate::submit::{self, Request};
use crate::verify::{self, Verified};
use crate::wait::Waiter;
use crate::whoami::{self, Identity};

pub async fn onboard(plan: Plan) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    // A supplied key first: a bad --key file is a usage error before anything else.
    let supplied = match &plan.key {
        KeySource::File(_) => Some(PrivateKey::obtain(&plan.key)?),
        KeySource::Generate(_) => None,
    };

    let started = Instant::now();
    let loaded = kubeconfig::load(plan.kubeconfig.as_deref())?;
    let target = loaded.target(plan.context.as_deref())?;
    progress.detail(&format!(
        "kubeconfig: read {}; new entries go to {}",
        display_paths(&loaded.sources.read),
        loaded.sources.destination.display()
    ));
    progress.detail(&format!(
        "context {}: cluster {} at {}",
        target.context, target.cluster_name, target.server
    ));
    let context = format!("{}@{}", plan.user, target.cluster_name);
    let files = CredentialFiles::for_plan(&plan, &context)?;
    check_names_are_free(&plan, &loaded, &context, files.as_ref())?;
    let destination = plan
        .output_kubeconfig
        .as_ref()
        .unwrap_or(&loaded.sources.destination);
    kubeconfig::file::probe(destination)?;
    progress.phase("kubeconfig read", started);

    let started = Instant::now();
    let conn = signals
        .interruptible(Connection::open(&loaded, &target))
        .await?;
    let permissions = signals
        .interruptible(access::check(&conn, plan.approve))
        .await?;
    progress.phase("permission check", started);
    progress.detail(&format!(
        "may watch CSRs: {}; may delete CSRs: {}",
        permissions.watch, permissions.delete
    ));
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

    let started = Instant::now();
    let request = csr::build(&plan.user, &plan.groups, &key)?;
    progress.phase("csr build", started);

    let csr_name = submit::object_name(&plan.user, &submit::random_suffix());
    let certificate = Certificate {
        conn: &conn,
        plan: &plan,
        name: &csr_name,
        target: &target,
        key: &key,
        permissions,
        sent: Cell::new(Sent::No),
    };
    let obtained = signals
        .interruptible(certificate.obtain(&request, &mut progress))
        .await;
    let started = Instant::now();
    let withdrawn = certificate.clean_up(&obtained, &mut progress).await;
    progress.phase("csr cleanup", started);
    let (verified, identity) = obtained.map_err(|e| withdrawn.explain(e))?;

    let key_pem = key.to_pem();
    let user_body = match &files {
        None => json!({
            "client-certificate-data": Base64::encode_string(verified.pem.as_bytes()),
            "client-key-data": Base64::encode_string(key_pem.as_bytes()),
        }),
        Some(f) => json!({
            "client-certificate": f.cert.display().to_string(),
            "client-key": f.key.display().to_string(),
        }),
    };
    let mut context_body = json!({"cluster": target.cluster_name, "user": plan.user});
    if let Some(ns) = &plan.namespace {
        context_body["namespace"] = Value::String(ns.clone());
    }
    let entries = Entries {
        user: plan.user.clone(),
        user_body,
        context: context.clone(),
        context_body,
    };

    let started = Instant::now();
    let written = match &plan.output_kubeconfig {
        Some(path) => {
            kubeconfig::write_standalone(
                path,
                &kubeconfig::standalone(&target, &entries)?,
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
                loaded.merge(&entries, plan.force, plan.use_context, &mut tx)
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

/// With `--embed=false`: where certificate and key go (0600, under ~/.kube).
struct CredentialFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CredentialFiles {
    fn for_plan(plan: &Plan, context: &str) -> Result<Option<CredentialFiles>> {
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

/// Steps 3 to 6 and 8 for one request object: everything that needs the cluster.
struct Certificate<'a> {
    conn: &'a Connection,
    plan: &'a Plan,
    name: &'a str,
    target: &'a Target,
    key: &'a PrivateKey,
    permissions: Permissions,
    sent: Cell<Sent>,
}

/// How far the create request got: what there may be to clean up.
#[derive(Clone, Copy, PartialEq)]
enum Sent {
    No,
    InFlight,
    Created,
}

impl Certificate<'_> {
    async fn obtain(
        &self,
        request_pem: &str,
        progress: &mut Progress,
    ) -> Result<(Verified, Option<Identity>)> {
        let plan = self.plan;
        let request = Request {
            user: &plan.user,
            pem: request_pem,
            rsa: self.key.is_rsa(),
            duration: plan.duration,
            key_algorithm: &self.key.algorithm(),
        };
        progress.detail(&format!(
            "request: signer {}, usages {:?}, expirationSeconds {}",
            submit::SIGNER,
            submit::usages(request.rsa),
            plan.duration
                .map_or("(cluster default)".to_string(), |d| d.as_secs().to_string())
        ));
        let started = Instant::now();
        self.sent.set(Sent::InFlight);
        let created = submit::create(self.conn, self.name, &request).await?;
        self.sent.set(Sent::Created);
        progress.phase("create", started);
        progress.step(&format!("Created CertificateSigningRequest {}", self.name));
        if plan.approve {
            let started = Instant::now();
            submit::approve(self.conn, self.name).await?;
            progress.phase("approve", started);
            progress.step(&format!("Approved {}", self.name));
        }
        let waiter = Waiter {
            conn: self.conn,
            name: self.name,
            timeout: plan.timeout,
            may_watch: self.permissions.watch,
            approved: plan.approve,
        };
        let started = Instant::now();
        let issued = waiter.until_issued(&created, progress).await?;
        progress.phase("wait for certificate", started);
        let started = Instant::now();
        let verified = verify::check(
            &issued,
            &verify::Expected {
                user: &plan.user,
                groups: &plan.groups,
                key: self.key,
                duration: plan.duration,
                ca_pem: self.target.ca_pem.as_deref(),
                now: SystemTime::now(),
            },
        )?;
        progress.phase("verify", started);
        progress.detail(&format!(
            "certificate: CN={} O={:?}, valid {} to {}",
            verified.info.common_name.as_deref().unwrap_or(""),
            verified.info.organizations,
            verify::rfc3339(verified.info.not_before),
            verify::rfc3339(verified.info.not_after)
        ));
        progress.step(&format!(
            "Certificate issued, valid until {}",
            verify::rfc3339(verified.info.not_after)
        ));
        for warning in &verified.warnings {
            progress.warn(warning);
        }
        let identity = if plan.prove_identity {
            let started = Instant::now();
            let as_new_user = self
                .conn
                .as_certificate(&verified.pem, &self.key.to_pem())?;
            let identity = whoami::prove(&as_new_user, &plan.user).await?;
            progress.phase("selfsubjectreview", started);
            if identity.is_none() {
                progress.warn("the cluster has no SelfSubjectReview API (Kubernetes < 1.28); the new credentials were not proven");
            }
            identity
        } else {
            None
        };
        Ok((verified, identity))
    }

    /// Deletes the request object unless --keep-csr: when done, and when anything failed
    /// after it may have been created. Says what became of it.
    async fn clean_up<T>(&self, outcome: &Result<T>, progress: &mut Progress) -> Withdrawn {
        // Interrupted while the create was in flight, the object may exist all the same.
        let interrupted =
            matches!(outcome, Err(e) if matches!(e.kind, Kind::Interrupted | Kind::Terminated));
        let exists = match self.sent.get() {
            Sent::No => false,
            Sent::InFlight => interrupted,
            Sent::Created => true,
        };
        if !exists {
            return Withdrawn::NeverCreated;
        }
        if self.plan.keep_csr {
            return Withdrawn::Kept(self.name.to_string());
        }
        if !self.permissions.delete {
            let note = format!(
                "you may not delete CertificateSigningRequest {}; the cluster removes it by itself ({})",
                self.name,
                if outcome.is_ok() {
                    "within an hour of issuing"
                } else {
                    "pending ones after 24 h"
                }
            );
            progress.step(&note);
            return Withdrawn::NotAllowed(self.name.to_string());
        }
        match submit::delete(self.conn, self.name).await {
            Ok(()) => Withdrawn::Deleted(self.name.to_string()),
            Err(e) => {
                progress.warn(&format!(
                    "could not delete CertificateSigningRequest {}: {e}",
                    self.name
                ));
                Withdrawn::NotAllowed(self.name.to_string())
            }
        }
    }
}

enum Withdrawn {
    NeverCreated,
    Deleted(String),
    NotAllowed(String),
    Kept(String),
}

impl Withdrawn {
    /// Adds to a failure what became of the request (and that no file changed).
    fn explain(&self, e: Error) -> Error {
        if !matches!(e.kind, Kind::Interrupted | Kind::Terminated | Kind::Timeout) {
            return e;
        }
        let what = match self {
            Withdrawn::NeverCreated => "no CertificateSigningRequest was created".to_string(),
            Withdrawn::Deleted(name) => format!("CertificateSigningRequest {name} was withdrawn"),
            Withdrawn::NotAllowed(name) => format!(
                "CertificateSigningRequest {name} stays (you may not delete it; the cluster removes pending ones after 24 h)"
            ),
            Withdrawn::Kept(name) => {
                format!("CertificateSigningRequest {name} was kept (--keep-csr)")
            }
        };
        Error::new(e.kind, format!("{e}; {what}; no file was changed"))
    }
}

/// SIGINT and SIGTERM, turned into errors of their own kinds while a step runs.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        let install = |kind| {
            signal(kind).map_err(|e| Error::failed(format!("cannot install a signal handler: {e}")))
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    async fn interruptible<T>(&mut self, step: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            result = step => result,
            _ = self.interrupt.recv() => Err(Error::new(Kind::Interrupted, "interrupted")),
            _ = self.terminate.recv() => Err(Error::new(Kind::Terminated, "terminated")),
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(none)".into();
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
