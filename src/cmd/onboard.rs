//! `kubectl onboard <user>`: a new user with a client certificate, in one command. Online, the
//! cluster of the context in use issues it through its CSR API; offline (`--ca-cert --ca-key
//! --server`) it is signed here with the cluster CA, as `kubeadm kubeconfig user` does, and no
//! kubeconfig is read to find the cluster. Everything else is the pipeline's. Nothing is
//! written unless every step before succeeded, and then all of it or nothing.

use std::path::PathBuf;
use std::time::Instant;

use crate::cluster::session::{Local, Session, display_paths};
use crate::error::{Error, Result};
use crate::flags::plan::{Offline, Plan};
use crate::invitation;
use crate::kubeconfig::{self, ClusterEntry, Loaded, Target};
use crate::pipeline::certify::Requester;
use crate::pipeline::record::Recorder;
use crate::pipeline::{
    self, Certified, Certifier, CredentialFiles, Credentials, Destination, Proof, Replaced,
    Subject, new_user_entries,
};
use crate::pki::authority::Authority;
use crate::pki::key::{KeySource, PrivateKey};
use crate::pki::verify;
use crate::records::inventory::How;
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::Summary;

/// Who certifies, and the cluster the new entries name.
// One value for the whole run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// The context in use, connected: the cluster's CSR API.
    Cluster(Session),
    /// `--ca-cert --ca-key --server`: signed here.
    Authority {
        authority: Authority,
        target: Target,
        landing: Landing,
    },
    /// `accept FILE`: the cluster's CSR API, through the invitation `invitation` in FILE.
    Invited {
        session: Session,
        landing: Landing,
        invitation: String,
    },
}

/// Where the entries for a cluster known from outside the kubeconfig (offline, an invitation)
/// go: the kubeconfig is read only to merge into it (not with `--output-kubeconfig`), and the
/// cluster entry is added unless the same is there.
struct Landing {
    loaded: Option<Loaded>,
    cluster_entry: ClusterEntry,
}

pub async fn run(plan: Plan) -> Result<()> {
    onboard(plan, None).await
}

/// `kubectl onboard accept FILE`: the invited user, onboarded through the invitation, which is
/// used up once the new entries are written.
pub async fn accept(plan: Plan, invitation: invitation::file::Opened) -> Result<()> {
    onboard(plan, Some(invitation)).await
}

async fn onboard(plan: Plan, invitation: Option<invitation::file::Opened>) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    // A supplied key first: a bad --key file is a usage error before anything else.
    let supplied = match &plan.key {
        KeySource::File(_) => Some(PrivateKey::obtain(&plan.key)?),
        KeySource::Generate(_) => None,
    };
    let (source, files) = match (&plan.offline, invitation) {
        (Some(offline), _) => sign_here(&plan, offline, &mut progress)?,
        (None, Some(invited)) => through(&plan, invited, &mut signals, &mut progress).await?,
        (None, None) => connect(&plan, &mut signals, &mut progress).await?,
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
    let (written, replaced, switched) =
        write(&plan, &source, &context, files, cert, &key, &mut progress)?;
    progress.phase("kubeconfig write", started);
    progress.detail(&format!("wrote {}", display_paths(&written)));
    if let Source::Invited {
        session,
        invitation,
        ..
    } = &source
    {
        use_up(&session.conn, invitation, &mut progress).await;
    }
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
        switched,
        replaced,
    };
    print!("{}", summary.render(plan.output)?);
    Ok(())
}

/// The new user and context, with the certificate and key embedded or (`--embed=false`) in
/// `files`, where `plan` says: all of it, or on an error nothing. Returns the files written,
/// what `--force` replaced, and whether the new context became the current one.
fn write(
    plan: &Plan,
    source: &Source,
    context: &str,
    files: Option<&CredentialFiles>,
    cert_pem: &str,
    key: &PrivateKey,
    progress: &mut Progress,
) -> Result<(Vec<PathBuf>, Replaced, bool)> {
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
    let switched = matches!(
        destination,
        Destination::Merge {
            use_context: true,
            ..
        }
    );
    Ok((written, replaced, switched))
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
        .connect(
            plan.approve,
            &plan.grants,
            None,
            plan.timeout,
            signals,
            progress,
        )
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
        Source::Authority {
            target, landing, ..
        } if plan.record => {
            let loaded = landing.loaded.as_ref();
            let recording = record_offline(plan, loaded, &target.server, verified, progress);
            signals
                .interruptible(async {
                    recording.await;
                    Ok(())
                })
                .await
        }
        // The approver binds and records what an invitation grants.
        Source::Authority { .. } | Source::Invited { .. } => Ok(()),
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
    let landing = landing(plan, &target, &context, files.as_ref())?;
    let source = Source::Authority {
        authority,
        target,
        landing,
    };
    Ok((source, files))
}

/// Through an invitation: its cluster and token to request with, the kubeconfig to merge into.
async fn through(
    plan: &Plan,
    invited: invitation::file::Opened,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<(Source, Option<CredentialFiles>)> {
    let target = invited.target;
    let context = format!("{}@{}", plan.user, target.cluster_name);
    let files = CredentialFiles::unless_embedded(plan.embed, &context)?;
    let landing = landing(plan, &target, &context, files.as_ref())?;
    let local = Local {
        loaded: invited.loaded,
        target,
    };
    let request = Some(invited.invited.name.as_str());
    let session = local
        .connect(false, &[], request, plan.timeout, signals, progress)
        .await
        .map_err(|e| match e.to_string().contains("(401 Unauthorized)") {
            true => Error::failed(
                "the cluster no longer accepts this invitation (401 Unauthorized): it was used, withdrawn, or it expired; ask your administrator for a new one",
            ),
            false => e,
        })?;
    let invitation = invited.invited.name;
    let source = Source::Invited {
        session,
        landing,
        invitation,
    };
    Ok((source, files))
}

/// The invitation deletes its own credential: its token stops working. When it cannot, it
/// expires, and any invitation command deletes it.
async fn use_up(conn: &crate::cluster::Connection, name: &str, progress: &mut Progress) {
    match invitation::server::delete_own_credential(conn, name).await {
        Ok(()) => progress.step("The invitation is used up: its token no longer works."),
        Err(e) => progress.warn(&format!(
            "the invitation's token could not be withdrawn ({e}); it stops working when it expires, or when an administrator runs kubectl onboard invitations"
        )),
    }
}

/// Where the entries for `target` (a cluster known from outside the kubeconfig) go, the names
/// checked to be free.
fn landing(
    plan: &Plan,
    target: &Target,
    context: &str,
    files: Option<&CredentialFiles>,
) -> Result<Landing> {
    if let Some(path) = &plan.output_kubeconfig {
        let destination = Destination::Standalone { path, target };
        destination.check_free(&plan.user, context, None, plan.force)?;
        destination.probe()?;
        return Ok(Landing {
            loaded: None,
            cluster_entry: ClusterEntry::Absent,
        });
    }
    let loaded = kubeconfig::load(plan.kubeconfig.as_deref())?;
    let destination = Destination::Merge {
        loaded: &loaded,
        cluster: None,
        use_context: plan.use_context,
    };
    destination.probe()?;
    let ca = target.ca_pem.as_deref().unwrap_or_default();
    let entry = loaded.cluster_entry(&target.cluster_name, &target.server, ca)?;
    if !plan.force
        && let ClusterEntry::Different(path) = &entry
    {
        destination.check_free(&plan.user, context, None, false)?;
        return Err(Error::failed(format!(
            "cluster \"{}\" already exists in {} with another server or CA; pass --cluster-name NAME to add this one under another name, or --force to replace it",
            target.cluster_name,
            path.display()
        )));
    }
    destination.check_free(&plan.user, context, files, plan.force)?;
    Ok(Landing {
        loaded: Some(loaded),
        cluster_entry: entry,
    })
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
            // The invitation may not write the inventory: the approver records.
            Source::Invited {
                session,
                invitation,
                ..
            } => Certifier::cluster(session, false, plan.timeout, plan.keep_csr, None)
                .invited(invitation),
            Source::Authority { authority, .. } => Certifier::Authority(authority),
        }
    }

    fn proof(&self) -> Proof<'_> {
        match self {
            Source::Cluster(session) | Source::Invited { session, .. } => {
                Proof::Cluster(&session.conn)
            }
            Source::Authority { target, .. } => Proof::Reachable(target),
        }
    }

    fn target(&self) -> &Target {
        match self {
            Source::Cluster(session) | Source::Invited { session, .. } => &session.local.target,
            Source::Authority { target, .. } => target,
        }
    }

    /// Where the new entries go: `--output-kubeconfig`, or merged into the kubeconfig (with the
    /// cluster entry when it comes from outside it, unless the same one is there).
    fn destination<'a>(&'a self, plan: &'a Plan) -> Result<Destination<'a>> {
        if let Some(path) = &plan.output_kubeconfig {
            let target = self.target();
            return Ok(Destination::Standalone { path, target });
        }
        let (loaded, cluster) = match self {
            Source::Cluster(session) => (&session.local.loaded, None),
            Source::Authority { landing, .. } | Source::Invited { landing, .. } => {
                let Some(loaded) = &landing.loaded else {
                    return Err(Error::failed(
                        "no kubeconfig was read to merge into; pass --output-kubeconfig FILE",
                    ));
                };
                let target = self.target();
                let cluster = (landing.cluster_entry != ClusterEntry::Same)
                    .then_some((target.cluster_name.as_str(), &target.cluster));
                (loaded, cluster)
            }
        };
        // An invited newcomer usually has no current context yet: the new one becomes it, so
        // that kubectl works at once.
        let invited_first =
            matches!(self, Source::Invited { .. }) && loaded.merged.current_context().is_none();
        Ok(Destination::Merge {
            loaded,
            cluster,
            use_context: plan.use_context || invited_first,
        })
    }
}
