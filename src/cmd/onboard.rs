//! `kubectl onboard <user>`: a new user with a client certificate, in one command. Online, the
//! cluster of the context in use issues it through its CSR API; offline (`--ca-cert --ca-key
//! --server`) it is signed here with the cluster CA, as `kubeadm kubeconfig user` does, and no
//! kubeconfig is read to find the cluster. Everything else is the pipeline's. Nothing is
//! written unless every step before succeeded, and then all of it or nothing.

use std::path::PathBuf;
use std::time::Instant;

use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::inventory::How;
use crate::key::{KeySource, PrivateKey};
use crate::kubeconfig::{self, ClusterEntry, Loaded, Target};
use crate::pipeline::certify::Requester;
use crate::pipeline::record::Recorder;
use crate::pipeline::{
    self, Certified, Certifier, CredentialFiles, Credentials, Destination, Proof, Replaced,
    Subject, new_user_entries,
};
use crate::plan::{Offline, Plan};
use crate::progress::Progress;
use crate::report::Summary;
use crate::session::{Local, Session, display_paths};
use crate::signals::Signals;
use crate::verify;

/// Who certifies, and the cluster the new entries name.
// One value for the whole run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// The context in use, connected: the cluster's CSR API.
    Cluster(Session),
    /// `--ca-cert --ca-key --server`: signed here. The kubeconfig is read only to merge into
    /// it (not with `--output-kubeconfig`); the cluster entry is added unless the same is there.
    Authority {
        authority: Authority,
        target: Target,
        loaded: Option<Loaded>,
        cluster_entry: ClusterEntry,
    },
}

pub async fn run(plan: Plan) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    // A supplied key first: a bad --key file is a usage error before anything else.
    let supplied = match &plan.key {
        KeySource::File(_) => Some(PrivateKey::obtain(&plan.key)?),
        KeySource::Generate(_) => None,
    };
    let (source, files) = match &plan.offline {
        None => connect(&plan, &mut signals, &mut progress).await?,
        Some(offline) => sign_here(&plan, offline, &mut progress)?,
    };
    let key = pipeline::key(&plan.key, supplied, &mut progress)?;
    let subject = Subject {
        user: &plan.user,
        groups: &plan.groups,
    };
    let Certified { verified, csr_name } = source
        .certifier(&plan)
        .certify(
            subject,
            Requester::Key(&key),
            plan.duration,
            &mut signals,
            &mut progress,
        )
        .await?;
    let identity = match plan.prove_identity {
        true => {
            let (pem, user) = (&verified.pem, &plan.user);
            pipeline::prove(source.proof(), pem, &key, user, &mut signals, &mut progress).await?
        }
        false => None,
    };
    bind_or_record(&plan, &source, &verified, &mut signals, &mut progress).await?;
    let target = source.target();
    let context = format!("{}@{}", plan.user, target.cluster_name);
    let started = Instant::now();
    let (files, cert) = (files.as_ref(), &verified.pem);
    let (written, replaced) = write(&plan, &source, &context, files, cert, &key, &mut progress)?;
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
        replaced,
    };
    print!("{}", summary.render(plan.output)?);
    Ok(())
}

/// The new user and context, with the certificate and key embedded or (`--embed=false`) in
/// `files`, where `plan` says: all of it, or on an error nothing. Returns the files written and
/// what `--force` replaced.
fn write(
    plan: &Plan,
    source: &Source,
    context: &str,
    files: Option<&CredentialFiles>,
    cert_pem: &str,
    key: &PrivateKey,
    progress: &mut Progress,
) -> Result<(Vec<PathBuf>, Replaced)> {
    let key_pem = key.to_pem();
    let credentials = match files {
        Some(f) => Credentials::Files(f),
        None => Credentials::Embedded {
            cert_pem,
            key_pem: Some(&key_pem),
        },
    };
    let cluster = &source.target().cluster_name;
    let namespace = plan.namespace.as_deref();
    let entries = new_user_entries(&plan.user, cluster, context, credentials, namespace);
    let destination = source.destination(plan)?;
    if files.is_none()
        && let Some(warning) = destination.exposure()
    {
        progress.warn(&warning);
    }
    let replaced = match plan.force {
        true => destination.replaced(&plan.user, context),
        false => Replaced::default(),
    };
    let files = files.map(|f| (f, cert_pem, key_pem.as_str()));
    let written = destination.write(&entries, files, plan.force)?;
    Ok((written, replaced))
}

/// Online: the kubeconfig and the cluster of the context in use, the names checked to be free
/// before anything is sent, then a connection and what the caller may do.
async fn connect(
    plan: &Plan,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<(Source, Option<CredentialFiles>)> {
    let local = Local::load(
        plan.kubeconfig.as_deref(),
        plan.context.as_deref(),
        progress,
    )?;
    let context = format!("{}@{}", plan.user, local.target.cluster_name);
    let files = CredentialFiles::unless_embedded(plan.embed, &context)?;
    let destination = match &plan.output_kubeconfig {
        Some(path) => Destination::Standalone {
            path,
            target: &local.target,
        },
        None => Destination::Merge {
            loaded: &local.loaded,
            cluster: None,
            use_context: plan.use_context,
        },
    };
    destination.check_free(&plan.user, &context, files.as_ref(), plan.force)?;
    destination.probe()?;
    if plan.output_kubeconfig.is_some() {
        local.target.check_portable(plan.allow_insecure_cluster)?;
    }
    let session = local
        .connect(plan.approve, &plan.grants, plan.timeout, signals, progress)
        .await?;
    Ok((Source::Cluster(session), files))
}

/// After the proof: online, the grants are bound (the certificate was recorded as it was
/// issued); offline, there are none, and the certificate is recorded if the cluster answers.
async fn bind_or_record(
    plan: &Plan,
    source: &Source,
    verified: &verify::Verified,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<()> {
    match source {
        Source::Cluster(session) => {
            let (conn, user) = (&session.conn, &plan.user);
            pipeline::bind(conn, user, &plan.grants, signals, progress).await
        }
        Source::Authority { target, loaded, .. } if plan.record => {
            let recording =
                record_offline(plan, loaded.as_ref(), &target.server, verified, progress);
            signals
                .interruptible(async {
                    recording.await;
                    Ok(())
                })
                .await
        }
        Source::Authority { .. } => Ok(()),
    }
}

/// Offline: records the certificate through a context of the kubeconfig for the same server
/// (read for it when --output-kubeconfig means it was not).
async fn record_offline(
    plan: &Plan,
    loaded: Option<&Loaded>,
    server: &str,
    verified: &verify::Verified,
    progress: &mut Progress,
) {
    let read;
    let loaded = match loaded {
        Some(loaded) => loaded,
        None => match kubeconfig::load(plan.kubeconfig.as_deref()) {
            Ok(found) => {
                read = found;
                &read
            }
            Err(e) => {
                progress.step(&pipeline::record::not_recorded(&e.to_string()));
                return;
            }
        },
    };
    match Recorder::offline(loaded, server).await {
        Ok(recorder) => recorder.record(verified, progress).await,
        Err(why) => progress.step(&why),
    }
}

/// Offline: the CA to sign with, and the kubeconfig to merge into, names checked to be free.
fn sign_here(
    plan: &Plan,
    offline: &Offline,
    progress: &mut Progress,
) -> Result<(Source, Option<CredentialFiles>)> {
    let started = Instant::now();
    let authority = Authority::load(&offline.ca_cert, &offline.ca_key)?;
    progress.detail(&format!(
        "CA {}: valid until {}",
        offline.ca_cert.display(),
        verify::rfc3339(authority.not_after())
    ));
    progress.phase("ca read", started);
    let target = Target::for_server(&offline.cluster_name, &offline.server, authority.ca_pem());
    let context = format!("{}@{}", plan.user, target.cluster_name);
    let files = CredentialFiles::unless_embedded(plan.embed, &context)?;
    let (loaded, cluster_entry) = match &plan.output_kubeconfig {
        Some(path) => {
            let destination = Destination::Standalone {
                path,
                target: &target,
            };
            destination.check_free(&plan.user, &context, None, plan.force)?;
            destination.probe()?;
            (None, ClusterEntry::Absent)
        }
        None => {
            let loaded = kubeconfig::load(plan.kubeconfig.as_deref())?;
            let destination = Destination::Merge {
                loaded: &loaded,
                cluster: None,
                use_context: plan.use_context,
            };
            destination.probe()?;
            let entry =
                loaded.cluster_entry(&target.cluster_name, &target.server, authority.ca_pem())?;
            if !plan.force
                && let ClusterEntry::Different(path) = &entry
            {
                destination.check_free(&plan.user, &context, None, false)?;
                return Err(Error::failed(format!(
                    "cluster \"{}\" already exists in {} with another server or CA; pass --cluster-name NAME to add this one under another name, or --force to replace it",
                    target.cluster_name,
                    path.display()
                )));
            }
            destination.check_free(&plan.user, &context, files.as_ref(), plan.force)?;
            (Some(loaded), entry)
        }
    };
    let source = Source::Authority {
        authority,
        target,
        loaded,
        cluster_entry,
    };
    Ok((source, files))
}

impl Source {
    fn certifier<'a>(&'a self, plan: &Plan) -> Certifier<'a> {
        match self {
            Source::Cluster(session) => {
                let how = match plan.approve {
                    true => How::Admin,
                    false => How::SelfService,
                };
                let record = plan.record.then_some(how);
                Certifier::cluster(session, plan.approve, plan.timeout, plan.keep_csr, record)
            }
            Source::Authority { authority, .. } => Certifier::Authority(authority),
        }
    }

    fn proof(&self) -> Proof<'_> {
        match self {
            Source::Cluster(session) => Proof::Cluster(&session.conn),
            Source::Authority { target, .. } => Proof::Reachable(target),
        }
    }

    fn target(&self) -> &Target {
        match self {
            Source::Cluster(session) => &session.local.target,
            Source::Authority { target, .. } => target,
        }
    }

    /// Where the new entries go: `--output-kubeconfig`, or merged into the kubeconfig (offline
    /// with the cluster entry, unless the same one is there).
    fn destination<'a>(&'a self, plan: &'a Plan) -> Result<Destination<'a>> {
        if let Some(path) = &plan.output_kubeconfig {
            let target = self.target();
            return Ok(Destination::Standalone { path, target });
        }
        let (loaded, cluster) = match self {
            Source::Cluster(session) => (&session.local.loaded, None),
            Source::Authority {
                loaded: Some(loaded),
                target,
                cluster_entry,
                ..
            } => {
                let cluster = (*cluster_entry != ClusterEntry::Same)
                    .then_some((target.cluster_name.as_str(), &target.cluster));
                (loaded, cluster)
            }
            Source::Authority { loaded: None, .. } => {
                return Err(Error::failed(
                    "no kubeconfig was read to merge into; pass --output-kubeconfig FILE",
                ));
            }
        };
        Ok(Destination::Merge {
            loaded,
            cluster,
            use_context: plan.use_context,
        })
    }
}
