//! `kubectl onboard import`: the end of two-party onboarding, on the new user's machine. The
//! kubeconfig an administrator wrote with `kubectl onboard sign` holds the certificate but no
//! key; this pairs it with the key `kubectl onboard request` kept (found by the certificate's
//! public key), proves the pair with a SelfSubjectReview, and only then merges cluster, user
//! and context into the kubeconfig kubectl writes to.
//!
//! The kept key stays in `~/.kube/onboard/keys` afterwards: the kubeconfig embeds a copy, but
//! deleting a private key on the way is a surprise nobody can undo (a second import, into
//! another kubeconfig, needs it too). `kubectl onboard renew` replaces the pair in the
//! kubeconfig and never reads the kept key.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use argh::{ArgsInfo, FromArgs};
use serde_json::Value;

use crate::cluster::Connection;
use crate::cluster::session::display_paths;
use crate::cluster::whoami::Identity;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::kubeconfig::credential::{self, Field};
use crate::kubeconfig::edit::{self, Section};
use crate::kubeconfig::{self, Entries, Loaded, Target};
use crate::pipeline::{self, Credentials, Destination, Proof, new_user_entries};
use crate::pki::key::{KeySource, PrivateKey};
use crate::pki::keystore;
use crate::pki::verify::{self, CertInfo, rfc3339};
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::{Output, Summary};

/// The cluster entry an imported kubeconfig brings.
#[derive(Clone, Debug)]
struct NamedCluster {
    name: String,
    body: Value,
}

flags! {
    /// Add the kubeconfig an administrator signed for you to your own, with the private key kept
    /// by kubectl onboard request.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "After kubectl onboard request, with the file the administrator sent:\n  $ {command_name} jane.kubeconfig",
        note = "Cluster, user and context are merged by kubectl's rules (its lock, atomic writes); an existing cluster of the same name and server is reused."
    )]
    pub struct Args {
        /// the kubeconfig written by kubectl onboard sign
        #[argh(positional)]
        pub file: PathBuf,

        /// the private key (PEM) to pair with the certificate, if not one kept by kubectl onboard request
        #[argh(option)]
        pub key: Option<PathBuf>,

        /// replace a user, context or cluster (with another server) of the same name
        #[argh(switch)]
        pub force: bool,

        /// switch the current context to the imported one (done anyway when none is set)
        #[argh(switch)]
        pub use_context: bool,

        /// skip proving the credentials with a SelfSubjectReview (e.g. while offline)
        #[argh(switch)]
        pub no_verify: bool,

        /// accept a received cluster that does not check the server (no CA, or insecure-skip-tls-verify)
        #[argh(switch)]
        pub allow_insecure_cluster: bool,
    }
    with kubeconfig, output
}

/// What the administrator's file holds.
struct Received {
    context: String,
    context_body: Value,
    cluster: NamedCluster,
    server: String,
    user: String,
    cert_pem: String,
    info: CertInfo,
    /// The file read as a kubeconfig, to connect to its cluster for the proof.
    loaded: Loaded,
    target: kubeconfig::Target,
}

pub async fn run(args: Args) -> Result<()> {
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);
    let supplied = args
        .key
        .as_ref()
        .map(|path| PrivateKey::obtain(&KeySource::File(path.clone())))
        .transpose()?;
    let received = read_received(&args.file)?;
    let name = args.file.display().to_string();
    progress.step(&format!("{name}: {}", received.describe()));
    trusted(
        &received.target,
        &name,
        args.allow_insecure_cluster,
        &mut progress,
    )?;
    let key = pair(&received, supplied, &name, &mut progress)?;

    let loaded = kubeconfig::load(args.kubeconfig.as_deref())?;
    progress.detail(&format!(
        "kubeconfig: read {}; new entries go to {}",
        display_paths(&loaded.sources.read),
        loaded.sources.destination.display()
    ));
    let cluster = cluster_to_write(&loaded, &received, args.force, &mut progress)?;
    let entries = received.entries(&key);
    let switch = args.use_context || loaded.merged.current_context().is_none();
    let destination = Destination::Merge {
        loaded: &loaded,
        cluster: cluster.as_ref().map(|c| (c.name.as_str(), &c.body)),
        use_context: switch,
    };
    let context = &received.context;
    destination.check_free(&received.user, context, None, args.force)?;
    destination.probe()?;

    // Proven before anything is written.
    let identity = match args.no_verify {
        true => None,
        false => received.prove(&key, &mut progress).await?,
    };
    if let Some(warning) = destination.exposure() {
        progress.warn(&warning);
    }
    let written = destination.write(&entries, None, args.force)?;

    let cluster_added = cluster.is_some().then_some(received.cluster.name.as_str());
    let text = imported(
        &received,
        cluster_added,
        &written,
        identity.as_ref(),
        switch,
    );
    let summary = Summary {
        user: received.user.clone(),
        groups: received.info.organizations.clone(),
        context: received.context.clone(),
        cluster: received.cluster.name.clone(),
        kubeconfigs: written,
        standalone: false,
        csr: None,
        key_algorithm: key.algorithm(),
        certificate: received.info,
        identity,
        switched: switch,
        replaced: Default::default(),
    };
    output.print(|| summary.to_value(), &text)
}

/// The received cluster must say which CA to trust for its server, or we would trust anyone
/// in between from now on; `allow` accepts it all the same, with a warning.
fn trusted(target: &Target, name: &str, allow: bool, progress: &mut Progress) -> Result<()> {
    let why = match (target.skips_tls_verify(), &target.ca_pem) {
        (true, _) => "is set to insecure-skip-tls-verify",
        (false, None) => "names no CA",
        (false, Some(_)) => return Ok(()),
    };
    let what = format!(
        "the cluster \"{}\" in {name} {why}, so the server would not be checked",
        target.cluster_name
    );
    match allow {
        true => {
            progress.warn(&format!("{what} (--allow-insecure-cluster)"));
            Ok(())
        }
        false => Err(Error::failed(format!(
            "{what}; nothing was changed: ask for a file with the cluster's CA, or pass --allow-insecure-cluster"
        ))),
    }
}

/// `Cluster "c", user "jane" and context "jane@c" added to …`, the proof, and the switch.
fn imported(
    received: &Received,
    cluster_added: Option<&str>,
    written: &[PathBuf],
    identity: Option<&Identity>,
    switched: bool,
) -> String {
    let what = match cluster_added {
        Some(name) => format!("Cluster \"{name}\", user"),
        None => "User".to_string(),
    };
    let mut out = format!(
        "{what} \"{}\" and context \"{}\" added to {}.\n",
        received.user,
        received.context,
        display_paths(written)
    );
    if let Some(id) = identity {
        out += &format!(
            "Authenticated as {} (groups: {}).\n",
            id.username,
            id.groups.join(", ")
        );
    }
    out += &match switched {
        true => format!("Switched to context \"{}\".\n", received.context),
        false => format!(
            "Switch to it with: kubectl config use-context {}\n",
            received.context
        ),
    };
    out
}

impl Received {
    /// The user with the received certificate and `key` embedded, and the context as the
    /// administrator's file has it (its namespace, say).
    fn entries(&self, key: &PrivateKey) -> Entries {
        let key_pem = key.to_pem();
        let credentials = Credentials::Embedded {
            cert_pem: &self.cert_pem,
            key_pem: Some(&key_pem),
        };
        let cluster = &self.cluster.name;
        let mut entries = new_user_entries(&self.user, cluster, &self.context, credentials, None);
        entries.context_body = self.context_body.clone();
        entries
    }

    /// `user "jane" (CN=jane, groups: dev), cluster "local" at https://…, valid until …`.
    fn describe(&self) -> String {
        let groups = match self.info.organizations.is_empty() {
            true => "none".to_string(),
            false => self.info.organizations.join(", "),
        };
        format!(
            "user \"{}\" (CN={}, groups: {groups}), cluster \"{}\" at {}, valid until {}",
            self.user,
            self.info.common_name.as_deref().unwrap_or(""),
            self.cluster.name,
            self.server,
            rfc3339(self.info.not_after)
        )
    }

    /// The SelfSubjectReview with the received certificate and `key`, on the file's cluster.
    async fn prove(&self, key: &PrivateKey, progress: &mut Progress) -> Result<Option<Identity>> {
        let mut signals = Signals::install()?;
        let conn = Connection::open_unauthenticated(&self.loaded, &self.target).await?;
        let user = self.info.common_name.clone().unwrap_or_default();
        let proof = Proof::Cluster(&conn);
        pipeline::prove(proof, &self.cert_pem, key, &user, &mut signals, progress).await
    }
}

/// Reads the administrator's file: its current context (or its only one), that context's
/// cluster, and its user's certificate.
fn read_received(path: &Path) -> Result<Received> {
    let name = path.display();
    if !path.exists() {
        return Err(Error::usage(format!(
            "{name} does not exist; pass the kubeconfig kubectl onboard sign wrote"
        )));
    }
    let loaded = kubeconfig::load(Some(path))?;
    let document = &loaded.merged.documents[0];
    let contexts = edit::names(&document.value, Section::Contexts);
    let context = match (document.current_context(), contexts.as_slice()) {
        (Some(current), _) => current.to_string(),
        (None, [only]) => only.clone(),
        _ => {
            return Err(Error::failed(format!(
                "{name} has {} contexts and no current-context: which one to import is unclear; ask for the file kubectl onboard sign writes",
                contexts.len()
            )));
        }
    };
    let target = loaded.read_target(Some(&context))?;
    let context_body = document
        .entry(Section::Contexts, &context)
        .cloned()
        .unwrap_or(Value::Null);
    let user = context_body
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::failed(format!("context \"{context}\" in {name} names no user")))?
        .to_string();
    let user_body = document.entry(Section::Users, &user).ok_or_else(|| {
        Error::failed(format!(
            "context \"{context}\" in {name} points at user \"{user}\", which is not in it"
        ))
    })?;
    let certificate = credential::read(user_body, path, Field::ClientCertificate)?;
    let cert_bytes = certificate.map(|c| c.bytes).ok_or_else(|| {
        Error::failed(format!(
            "user \"{user}\" in {name} has no client certificate; import takes the kubeconfig kubectl onboard sign writes"
        ))
    })?;
    let chain = crate::pki::pem::certificates(&cert_bytes).map_err(|_| {
        Error::failed(format!(
            "the client certificate of user \"{user}\" in {name} is not a PEM certificate"
        ))
    })?;
    let leaf = chain.first().ok_or_else(|| {
        Error::failed(format!(
            "the client certificate of user \"{user}\" in {name} is empty"
        ))
    })?;
    let info = verify::inspect(leaf)?;
    if info.not_after <= SystemTime::now() {
        return Err(Error::failed(format!(
            "the certificate in {name} expired at {}; ask the administrator for a new one",
            rfc3339(info.not_after)
        )));
    }
    let cert_pem = String::from_utf8_lossy(&cert_bytes).into_owned();
    Ok(Received {
        context,
        context_body,
        cluster: NamedCluster {
            name: target.cluster_name.clone(),
            body: kubeconfig::portable_cluster(&target),
        },
        server: target.server.clone(),
        user,
        cert_pem,
        info,
        target,
        loaded,
    })
}

/// The private key for the certificate: `--key`, else the one `request` kept.
fn pair(
    received: &Received,
    supplied: Option<PrivateKey>,
    name: &str,
    progress: &mut Progress,
) -> Result<PrivateKey> {
    let wanted = &received.info.public_key_der;
    if let Some(key) = supplied {
        if key.public_key_der() != *wanted {
            return Err(Error::failed(format!(
                "--key is not the key of the certificate in {name} (its public key is {}); pass the key the request was made with",
                keystore::fingerprint(wanted)
            )));
        }
        return Ok(key);
    }
    match keystore::find(wanted)? {
        Some((path, key)) => {
            progress.step(&format!(
                "Paired it with the private key kept in {}",
                path.display()
            ));
            Ok(key)
        }
        None => Err(Error::failed(format!(
            "no key under {} matches the certificate in {name} (public key {}); was the request made on this machine? If the key is elsewhere, pass --key FILE",
            keystore::dir()?.display(),
            keystore::fingerprint(wanted)
        ))),
    }
}

/// The cluster entry to write: none when one of the same name and server is there already.
fn cluster_to_write(
    loaded: &Loaded,
    received: &Received,
    force: bool,
    progress: &mut Progress,
) -> Result<Option<NamedCluster>> {
    let name = &received.cluster.name;
    let Some((i, existing)) = loaded.merged.find(Section::Clusters, name) else {
        return Ok(Some(received.cluster.clone()));
    };
    let file = &loaded.merged.documents[i].path;
    let server = existing.get("server").and_then(Value::as_str).unwrap_or("");
    if server == received.server {
        progress.detail(&format!(
            "cluster \"{name}\" in {} has the same server; reusing it",
            file.display()
        ));
        return Ok(None);
    }
    if force {
        progress.warn(&format!(
            "replacing cluster \"{name}\" in {} (server {server}) with {} (--force)",
            file.display(),
            received.server
        ));
        return Ok(Some(received.cluster.clone()));
    }
    Err(Error::failed(format!(
        "cluster \"{name}\" in {} has server {server}, not {} as the imported file says; pass --force to replace it, or rename one of them",
        file.display(),
        received.server
    )))
}
