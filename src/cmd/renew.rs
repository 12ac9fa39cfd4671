//! `kubectl onboard renew`: a new certificate for a user in the kubeconfig, for the same CN
//! and O, replacing certificate and key where they are (embedded data, or the files the entry
//! names) and keeping every context that uses the user.
//!
//! Whose credentials send the request: the user's own when they may (the self-service role,
//! and the approve rules too with `--approve`), otherwise an administrator's context
//! (`--admin-context`, or the current context when it is another user's). The lifetime is the
//! old certificate's unless `--duration` says otherwise: whoever onboarded the user chose it,
//! and a renewal should not quietly turn a 30-day contractor certificate into a year-long one.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use argh::{ArgsInfo, FromArgs};
use base64ct::{Base64, Encoding};
use pkcs8::der::zeroize::Zeroizing;
use serde_json::{Value, json};

use crate::cluster::access;
use crate::cluster::session::{Local, Session, display_paths};
use crate::cluster::whoami::Identity;
use crate::cluster::{self, Connection};
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan::{self, format_duration, parse_duration};
use crate::kubeconfig::credential::{self, Field, Slot};
use crate::kubeconfig::edit::{self, Section};
use crate::kubeconfig::file::{self, Mode, Transaction};
use crate::kubeconfig::{self, Loaded, yaml};
use crate::pipeline::certify::Requester;
use crate::pipeline::{self, Certified, Certifier, Proof, Subject};
use crate::pki::key::{KeyAlgorithm, KeySource, PrivateKey};
use crate::pki::verify::{self, CertInfo, rfc3339};
use crate::records::inventory::How;
use crate::records::revocation;
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::Output;

/// The kube-apiserver-client signer starts every certificate 5 minutes early (clock skew);
/// below 8h it adds those minutes to the lifetime, from 8h on it takes them off
/// (kube-controller-manager, certificates/authority/policies.go).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
const SHORT: Duration = Duration::from_secs(8 * 3600);
const MIN_DURATION: Duration = Duration::from_secs(600);

flags! {
    /// Renew a user's client certificate in place: same CN and O, a new key, contexts kept.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Renew the user of the current context, if it expires within 30 days (for cron):\n  $ {command_name} --if-expires-within 30d",
        example = "As an administrator, renew jane and approve it:\n  $ {command_name} jane --approve",
        note = "The request goes with the user's own credentials when they may create CertificateSigningRequests (and approve them, with --approve); else with --admin-context, or the current context if it is another user's.",
        note = "The lifetime is the old certificate's unless --duration is given (the signer may cap it)."
    )]
    pub struct Args {
        /// the kubeconfig user to renew (default: the user of --context, or of the current context)
        #[argh(positional)]
        pub user: Option<String>,

        /// the context whose user to renew (and whose cluster to ask)
        #[argh(option)]
        pub context: Option<String>,

        /// a context to send the request with when the user may not (default: the current one)
        #[argh(option)]
        pub admin_context: Option<String>,

        /// keep the current private key (default: a new one of the same algorithm)
        #[argh(switch)]
        pub reuse_key: bool,

        /// the new key: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 (default: as the old)
        #[argh(option)]
        pub key_algorithm: Option<String>,

        /// lifetime of the new certificate, at least 10m (default: the old one's)
        #[argh(option)]
        pub duration: Option<String>,

        /// renew only if the certificate expires within this long, e.g. 30d; else exit 0 (for cron)
        #[argh(option)]
        pub if_expires_within: Option<String>,
    }
    with request, kubeconfig, output, timings
}

/// The user entry to renew, as read.
struct UserEntry {
    name: String,
    context: String,
    /// The file the entry comes from, and its body there.
    origin: PathBuf,
    body: Value,
    cert_slot: Slot,
    key_slot: Slot,
    info: CertInfo,
    /// SHA-256 of the certificate as it is in the kubeconfig (`None` if its bytes cannot be read).
    fingerprint: Option<String>,
    /// The current key, or why it cannot be used.
    key: std::result::Result<PrivateKey, String>,
}

impl UserEntry {
    /// `user "jane" in …: CN=jane O=["dev"], valid … to …; context jane@local` (for -v).
    fn describe(&self) -> String {
        format!(
            "user \"{}\" in {}: CN={} O={:?}, valid {} to {}; context {}",
            self.name,
            self.origin.display(),
            self.info.common_name.as_deref().unwrap_or(""),
            self.info.organizations,
            rfc3339(self.info.not_before),
            rfc3339(self.info.not_after),
            self.context
        )
    }
}

/// The flags, checked before anything is read.
struct Options {
    algorithm: Option<KeyAlgorithm>,
    duration: Option<Duration>,
    timeout: Duration,
    /// `--if-expires-within`, as given and parsed.
    window: Option<(String, Duration)>,
    output: Output,
    /// Recorded in the inventory (not --no-record).
    record: Option<How>,
}

impl TryFrom<&Args> for Options {
    type Error = Error;

    fn try_from(args: &Args) -> Result<Options> {
        if let Some(user) = &args.user {
            crate::flags::plan::validate_name("user", user)?;
        }
        if args.reuse_key && args.key_algorithm.is_some() {
            return Err(Error::usage(
                "--reuse-key and --key-algorithm exclude each other: --reuse-key keeps the key, --key-algorithm makes a new one",
            ));
        }
        let window = match &args.if_expires_within {
            Some(text) => Some((text.clone(), parse_duration("--if-expires-within", text)?)),
            None => None,
        };
        Ok(Options {
            algorithm: args.key_algorithm.as_deref().map(str::parse).transpose()?,
            duration: plan::duration_flag(args.duration.as_deref())?,
            timeout: plan::timeout_flag(args.timeout.as_deref())?,
            window,
            output: Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?,
            record: (!args.no_record).then_some(How::Renew),
        })
    }
}

pub async fn run(args: Args) -> Result<()> {
    let options = Options::try_from(&args)?;
    let mut progress = options.output.progress(args.timings);
    let loaded = kubeconfig::load(args.kubeconfig.as_deref())?;
    let entry = find_entry(&loaded, args.user.as_deref(), args.context.as_deref())?;
    progress.detail(&entry.describe());
    if let Some(not_due) = not_due(&entry, options.window.as_ref(), &mut progress) {
        let value = || json!({"user": entry.name, "renewed": false, "notAfter": rfc3339(entry.info.not_after)});
        return options.output.print(value, &not_due);
    }
    let (cn, groups) = subject_of(&entry)?;
    let duration = options.duration.unwrap_or_else(|| lifetime_of(&entry.info));
    progress.detail(&format!(
        "asking for {}{}",
        format_duration(duration),
        match options.duration {
            None => " (the old certificate's lifetime)",
            Some(_) => "",
        }
    ));
    let key = RenewalKey::choose(&entry, args.reuse_key, options.algorithm, &mut progress)?;

    let mut signals = Signals::install()?;
    let admin_context = args.admin_context.as_deref();
    let (approve, timeout) = (args.approve, options.timeout);
    let session = connect(
        loaded,
        &entry,
        admin_context,
        approve,
        timeout,
        &mut signals,
        &mut progress,
    )
    .await?;
    warn_if_revoked(&session.conn, &entry, &cn, &mut progress).await;
    let certifier = Certifier::cluster(&session, approve, timeout, args.keep_csr, options.record);
    let subject = Subject {
        user: &cn,
        groups: &groups,
    };
    let requester = Requester::Key(key.signing());
    let Certified { verified, csr_name } = certifier
        .certify(
            subject,
            requester,
            Some(duration),
            &mut signals,
            &mut progress,
        )
        .await?;
    let proof = Proof::Cluster(&session.conn);
    let identity = pipeline::prove(
        proof,
        &verified.pem,
        key.signing(),
        &cn,
        &mut signals,
        &mut progress,
    )
    .await?;

    let started = Instant::now();
    let key_pem = key.new_pem();
    let written = replace_in_place(&entry, &verified.pem, key_pem.as_ref().map(|k| k.as_str()))?;
    progress.phase("kubeconfig write", started);
    progress.detail(&format!("wrote {}", display_paths(&written)));
    progress.print_timings();

    let renewed = Renewed {
        entry: &entry,
        written,
        certificate: verified.info,
        new_key: key.new_algorithm(),
        csr_name,
        identity,
    };
    options.output.print(|| renewed.to_value(), &renewed.text())
}

/// Says so when the certificate being renewed is on the revocation list: the new one will not
/// be, so renewing gives back what revoking took (a list that cannot be read says nothing).
async fn warn_if_revoked(conn: &Connection, entry: &UserEntry, cn: &str, progress: &mut Progress) {
    let Some(fingerprint) = &entry.fingerprint else {
        return;
    };
    if revocation::list(conn)
        .await
        .is_ok_and(|list| list.contains_key(fingerprint))
    {
        progress.warn(&format!(
            "the certificate being renewed ({}) is revoked, and the new one will not be; if {cn} should not write, stop here, or revoke again afterwards (kubectl onboard revoke {cn})",
            revocation::credential_id(fingerprint)
        ));
    }
}

/// With `--if-expires-within`: the line to print when the certificate is not due yet.
fn not_due(
    entry: &UserEntry,
    window: Option<&(String, Duration)>,
    progress: &mut Progress,
) -> Option<String> {
    let (given, window) = window?;
    let now = SystemTime::now();
    if entry.info.not_after > now + *window {
        let left = entry.info.not_after.duration_since(now).unwrap_or_default();
        return Some(format!(
            "Not renewing user \"{}\": its certificate is valid until {} ({} left), beyond --if-expires-within {given}.\n",
            entry.name,
            rfc3339(entry.info.not_after),
            verify::approximately(left),
        ));
    }
    progress.step(&format!(
        "The certificate of user \"{}\" expires at {}, within {given}: renewing",
        entry.name,
        rfc3339(entry.info.not_after),
    ));
    None
}

/// The CN and O to ask for again, checked as a new request would be.
fn subject_of(entry: &UserEntry) -> Result<(String, Vec<String>)> {
    let cn = entry.info.common_name.clone().ok_or_else(|| {
        Error::failed(format!(
            "the certificate of user \"{}\" has no CN, so there is no user name to renew it for",
            entry.name
        ))
    })?;
    let groups = entry.info.organizations.clone();
    let refused = |e: Error| {
        Error::failed(format!(
            "the certificate of user \"{}\" cannot be renewed through the cluster's CSR API: {e}",
            entry.name
        ))
    };
    plan::validate_user(&cn).map_err(refused)?;
    plan::validate_groups(groups.clone(), false).map_err(refused)?;
    Ok((cn, groups))
}

/// The key of the renewed certificate: a new one (the default), or the current one kept.
enum RenewalKey<'a> {
    New(PrivateKey),
    Kept(&'a PrivateKey),
}

impl<'a> RenewalKey<'a> {
    fn choose(
        entry: &'a UserEntry,
        reuse: bool,
        algorithm: Option<KeyAlgorithm>,
        progress: &mut Progress,
    ) -> Result<RenewalKey<'a>> {
        match (&entry.key, reuse) {
            (Ok(current), true) => return Ok(RenewalKey::Kept(current)),
            (Err(why), true) => {
                return Err(Error::failed(format!(
                    "--reuse-key: the key of user \"{}\" cannot be used: {why}; drop --reuse-key to make a new one",
                    entry.name
                )));
            }
            (Err(why), false) => progress.warn(&format!(
                "the current key of user \"{}\" cannot be used ({why}); making a new one",
                entry.name
            )),
            (Ok(_), false) => {}
        }
        let algorithm = algorithm
            .or_else(|| entry.key.as_ref().ok().map(KeyAlgorithm::of))
            .unwrap_or(KeyAlgorithm::Rsa2048);
        let started = Instant::now();
        let key = PrivateKey::obtain(&KeySource::Generate(algorithm))?;
        progress.phase("key", started);
        progress.step(&format!(
            "Generated a new private key ({})",
            key.algorithm()
        ));
        Ok(RenewalKey::New(key))
    }

    fn signing(&self) -> &PrivateKey {
        match self {
            RenewalKey::New(key) => key,
            RenewalKey::Kept(key) => key,
        }
    }

    /// The new key's PEM, to write; `None` when the key is kept.
    fn new_pem(&self) -> Option<Zeroizing<String>> {
        match self {
            RenewalKey::New(key) => Some(key.to_pem()),
            RenewalKey::Kept(_) => None,
        }
    }

    fn new_algorithm(&self) -> Option<String> {
        match self {
            RenewalKey::New(key) => Some(key.algorithm()),
            RenewalKey::Kept(_) => None,
        }
    }
}

/// What a renewal did, for the text and `-o json|yaml`.
struct Renewed<'a> {
    entry: &'a UserEntry,
    written: Vec<PathBuf>,
    certificate: CertInfo,
    /// The new key's algorithm; `None` with `--reuse-key`.
    new_key: Option<String>,
    csr_name: Option<String>,
    identity: Option<Identity>,
}

impl Renewed<'_> {
    fn text(&self) -> String {
        let mut out = format!(
            "Renewed the certificate of user \"{}\" in {}: valid until {} (was {}).\n",
            self.entry.name,
            display_paths(&self.written),
            rfc3339(self.certificate.not_after),
            rfc3339(self.entry.info.not_after)
        );
        out += &match &self.new_key {
            Some(algorithm) => format!("New private key ({algorithm}).\n"),
            None => "Kept the private key (--reuse-key).\n".to_string(),
        };
        if let Some(id) = &self.identity {
            out += &format!(
                "Context \"{}\" authenticates as {} (groups: {}).\n",
                self.entry.context,
                id.username,
                id.groups.join(", ")
            );
        }
        out
    }

    fn to_value(&self) -> Value {
        let files: Vec<String> = self
            .written
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut v = json!({
            "user": self.entry.name,
            "renewed": true,
            "context": self.entry.context,
            "written": files,
            "csrName": self.csr_name,
            "notBefore": rfc3339(self.certificate.not_before),
            "notAfter": rfc3339(self.certificate.not_after),
            "previousNotAfter": rfc3339(self.entry.info.not_after),
            "newKey": self.new_key.is_some(),
        });
        if let Some(algorithm) = &self.new_key {
            v["keyAlgorithm"] = json!(algorithm);
        }
        if let Some(id) = &self.identity {
            v["authenticatedAs"] = json!({"username": id.username, "groups": id.groups});
        }
        v
    }
}

/// The user to renew and the context whose cluster to ask: both as given (they must agree),
/// or the one given and the other found, or the current context's.
fn user_and_context(
    loaded: &Loaded,
    user: Option<&str>,
    context: Option<&str>,
) -> Result<(String, String)> {
    let merged = &loaded.merged;
    let user_of = |ctx: &str| -> Option<String> {
        merged
            .find(Section::Contexts, ctx)
            .and_then(|(_, body)| body.get("user").and_then(Value::as_str))
            .map(str::to_string)
    };
    Ok(match (user, context) {
        (_, Some(ctx)) => {
            merged.find(Section::Contexts, ctx).ok_or_else(|| {
                Error::failed(format!(
                    "context \"{ctx}\" is not in {}: kubectl config get-contexts lists the ones there are",
                    display_paths(&loaded.sources.read)
                ))
            })?;
            let of_context = user_of(ctx)
                .ok_or_else(|| Error::failed(format!("context \"{ctx}\" names no user")))?;
            if let Some(u) = user
                && u != of_context
            {
                return Err(Error::usage(format!(
                    "context \"{ctx}\" uses user \"{of_context}\", not \"{u}\": give one of them"
                )));
            }
            (of_context, ctx.to_string())
        }
        (Some(u), None) => {
            let current = merged.current_context().map(|(_, c)| c.to_string());
            let context = current
                .filter(|c| user_of(c).as_deref() == Some(u))
                .or_else(|| contexts_of(loaded, u).into_iter().next())
                .ok_or_else(|| {
                    Error::failed(format!(
                        "no context uses user \"{u}\", so its cluster is unknown; add one (kubectl config set-context NAME --cluster C --user {u}) or pass --context"
                    ))
                })?;
            (u.to_string(), context)
        }
        (None, None) => {
            let (_, current) = merged.current_context().ok_or_else(|| {
                Error::usage(
                    "no current context: name the user (kubectl onboard renew USER) or pass --context",
                )
            })?;
            let u = user_of(current)
                .ok_or_else(|| Error::failed(format!("context \"{current}\" names no user")))?;
            (u, current.to_string())
        }
    })
}

/// The user to renew and the context to reach its cluster by: `user`, `context`, or the
/// current context's.
fn find_entry(loaded: &Loaded, user: Option<&str>, context: Option<&str>) -> Result<UserEntry> {
    let merged = &loaded.merged;
    if merged.documents.is_empty() {
        return Err(Error::failed(format!(
            "no kubeconfig found at {}: pass --kubeconfig FILE",
            loaded.sources.destination.display()
        )));
    }
    let (name, context) = user_and_context(loaded, user, context)?;
    let (index, body) = merged.find(Section::Users, &name).ok_or_else(|| {
        Error::failed(format!(
            "user \"{name}\" is not in {}; kubectl onboard status lists the users with certificates",
            display_paths(&loaded.sources.read)
        ))
    })?;
    let origin = merged.documents[index].path.clone();
    let certificate = credential::read(body, &origin, Field::ClientCertificate)?.ok_or_else(|| {
        Error::failed(format!(
            "user \"{name}\" has no client certificate (it signs in another way); renew replaces certificates only"
        ))
    })?;
    let key = credential::read(body, &origin, Field::ClientKey)?.ok_or_else(|| {
            Error::failed(format!(
                "user \"{name}\" has a certificate but no client key in {}; fix the entry, or onboard the user again",
                origin.display()
            ))
        })?;
    let chain = crate::pki::pem::certificates(&certificate.bytes).map_err(|_| {
        Error::failed(format!(
            "the client certificate of user \"{name}\" is not a PEM certificate; fix it in {}",
            origin.display()
        ))
    })?;
    let leaf = chain.first().ok_or_else(|| {
        Error::failed(format!(
            "the client certificate of user \"{name}\" is empty"
        ))
    })?;
    let info = verify::inspect(leaf)?;
    let usable_key = crate::pki::key::parse_pem(&key.bytes).and_then(|k| {
        if k.public_key_der() == info.public_key_der {
            Ok(k)
        } else {
            Err("it is not the key of the certificate".to_string())
        }
    });
    Ok(UserEntry {
        name,
        context,
        origin,
        body: body.clone(),
        fingerprint: crate::pki::pem::block(&certificate.bytes, "CERTIFICATE")
            .and_then(|block| crate::pki::pem::decode(block).ok())
            .map(|(_, der)| crate::records::inventory::fingerprint(&der)),
        cert_slot: certificate.slot,
        key_slot: key.slot,
        info,
        key: usable_key,
    })
}

/// The contexts that use `user`, in kubectl's order (first file first; a name defined again
/// later is the earlier one's).
fn contexts_of(loaded: &Loaded, user: &str) -> Vec<String> {
    let mut found = Vec::new();
    for doc in &loaded.merged.documents {
        let contexts = doc
            .value
            .get(Section::Contexts.key())
            .and_then(Value::as_array);
        for c in contexts.into_iter().flatten() {
            let Some(name) = c.get("name").and_then(Value::as_str) else {
                continue;
            };
            let first = loaded.merged.find(Section::Contexts, name);
            let uses = first
                .and_then(|(_, b)| b.get("user").and_then(Value::as_str))
                .is_some_and(|u| u == user);
            if uses && !found.iter().any(|f| f == name) {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// The old certificate's lifetime as it was asked for: without the signer's 5 minutes of
/// backdating on short ones, whole minutes, at least 10m.
fn lifetime_of(info: &CertInfo) -> Duration {
    let mut lifetime = info
        .not_after
        .duration_since(info.not_before)
        .unwrap_or_default();
    if lifetime < SHORT {
        lifetime = lifetime.saturating_sub(BACKDATE);
    }
    Duration::from_secs(lifetime.as_secs() / 60 * 60).max(MIN_DURATION)
}

/// A session that sends the request: the user's own credentials when they may, else an
/// administrator's context.
async fn connect(
    loaded: Loaded,
    entry: &UserEntry,
    admin_context: Option<&str>,
    approve: bool,
    timeout: Duration,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<Session> {
    let own = loaded.read_target(Some(&entry.context))?;
    let why_not = if entry.info.not_after <= SystemTime::now() {
        format!(
            "its certificate expired at {}",
            rfc3339(entry.info.not_after)
        )
    } else {
        let started = Instant::now();
        let attempt = async {
            let conn = Connection::open(&loaded, &own).await?;
            let checking = access::check_requester(&conn, approve, &[], None);
            let deadline = tokio::time::Instant::now() + timeout;
            let limit = format!("{} (--timeout)", format_duration(timeout));
            let doing = "checking the user's own permissions";
            let permissions = cluster::within(deadline, &limit, doing, checking).await?;
            Ok::<_, Error>((conn, permissions))
        };
        let outcome = signals.interruptible(attempt).await;
        progress.phase("permission check", started);
        match outcome {
            Ok((conn, permissions)) => {
                progress.step(&format!(
                    "Requesting with the user's own credentials (context {})",
                    entry.context
                ));
                return Ok(Session {
                    local: Local {
                        loaded,
                        target: own,
                    },
                    conn,
                    permissions,
                });
            }
            Err(e) if e.is_interruption() => {
                return Err(e.context("nothing was requested and no file was changed"));
            }
            Err(e) => e.to_string(),
        }
    };
    let Some(admin) = admin_context_for(&loaded, entry, admin_context) else {
        return Err(Error::failed(format!(
            "user \"{}\" cannot request its own renewal: {why_not}; pass --admin-context with a context that may create (and, with --approve, approve) CertificateSigningRequests",
            entry.name
        )));
    };
    let target = loaded.read_target(Some(&admin))?;
    if target.server != own.server {
        return Err(Error::usage(format!(
            "--admin-context {admin} is for {} but user \"{}\" is for {} (context {}); use a context of the same cluster",
            target.server, entry.name, own.server, entry.context
        )));
    }
    progress.step(&format!(
        "Requesting with context {admin}: the user's own credentials cannot ({why_not})"
    ));
    Local { loaded, target }
        .connect(approve, &[], None, timeout, signals, progress)
        .await
}

/// The context to ask with when the user's own cannot: `--admin-context`, or the current
/// context when it is another user's.
fn admin_context_for(loaded: &Loaded, entry: &UserEntry, given: Option<&str>) -> Option<String> {
    let current = loaded.merged.current_context().map(|(_, c)| c.to_string());
    given.map(str::to_string).or_else(|| {
        current.filter(|c| {
            c != &entry.context
                && loaded
                    .merged
                    .find(Section::Contexts, c)
                    .and_then(|(_, b)| b.get("user").and_then(Value::as_str))
                    != Some(entry.name.as_str())
        })
    })
}

/// Writes the new certificate (and key, unless it is kept) where the old ones were, under
/// kubectl's lock on the kubeconfig the entry comes from; all of it or, on an error, nothing.
fn replace_in_place(
    entry: &UserEntry,
    cert_pem: &str,
    key_pem: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let origin = &entry.origin;
    let _lock = file::lock(origin)?;
    let text = file::read(origin)?.unwrap_or_default();
    let mut doc = kubeconfig::parse_document(origin, &text)?;
    if doc.entry(Section::Users, &entry.name) != Some(&entry.body) {
        return Err(Error::failed(format!(
            "user \"{}\" in {} changed while the certificate was being renewed; no file was changed: run renew again",
            entry.name,
            origin.display()
        )));
    }
    let mut body = entry.body.clone();
    // Zeroizing: the key is in some of these, and the kubeconfig text may embed it.
    let mut writes: Vec<(PathBuf, Zeroizing<Vec<u8>>, Mode)> = Vec::new();
    let mut edited = false;
    let mut put = |slot: &Slot, bytes: &[u8], mode: Mode| match slot {
        Slot::Data(field) => {
            body[field.data_key()] = Value::String(Base64::encode_string(bytes));
            edited = true;
        }
        Slot::File(path) => writes.push((path.clone(), Zeroizing::new(bytes.to_vec()), mode)),
    };
    put(&entry.cert_slot, cert_pem.as_bytes(), Mode::Keep);
    if let Some(key) = key_pem {
        put(&entry.key_slot, key.as_bytes(), Mode::Secret);
    }
    if edited {
        edit::upsert(&mut doc.value, Section::Users, &entry.name, body, true).map_err(|why| {
            Error::failed(format!(
                "cannot update kubeconfig {}: {why}; nothing was changed",
                origin.display()
            ))
        })?;
        writes.push((
            origin.clone(),
            Zeroizing::new(yaml::emit(&doc.value)?.into_bytes()),
            Mode::Keep,
        ));
    }
    Transaction::all(|tx| {
        writes
            .iter()
            .try_for_each(|(path, bytes, mode)| tx.write(path, bytes, *mode))
    })?;
    Ok(writes.into_iter().map(|(p, _, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lifetime: Duration) -> CertInfo {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        CertInfo {
            common_name: None,
            common_names: vec![],
            organizations: vec![],
            not_before: start,
            not_after: start + lifetime,
            public_key_der: vec![],
        }
    }

    #[test]
    fn the_old_lifetime_without_the_signers_backdating() {
        let day = 86_400;
        let lifetime = |secs| lifetime_of(&info(Duration::from_secs(secs))).as_secs();
        // Measured on the test cluster: --duration 10m gives notAfter - notBefore = 15m,
        // --duration 1h gives 1h5m, 90d gives 90d.
        assert_eq!(lifetime(900), 600);
        assert_eq!(lifetime(3900), 3600);
        assert_eq!(lifetime(90 * day), 90 * day);
        assert_eq!(lifetime(365 * day), 365 * day);
        assert_eq!(lifetime(8 * 3600), 8 * 3600);
        assert_eq!(lifetime(61), 600);
        assert_eq!(lifetime(3630), 3300);
    }
}
