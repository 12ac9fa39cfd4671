//! `kubectl onboard batch team.yaml --output-dir out/`: every user of a YAML list, each into a
//! standalone kubeconfig `out/<user>.kubeconfig` (0600), what `--output-kubeconfig` writes for
//! one user.
//!
//! - The whole file is checked first; any problem, and nothing is done.
//! - Resumable: a user whose file is already there and good (see `resume.rs`) is skipped, so a
//!   second run finishes what the first left; no connection is made when nothing is left.
//! - One connection and one permission check for all; `--parallel` users at a time (default 8),
//!   each through the same steps as `kubectl onboard <user> --output-kubeconfig` (`issue`,
//!   `whoami`, `rbac`); key generation and local signing run on blocking threads, so that RSA
//!   key generation uses every core while requests are in flight.
//! - One user's failure stops no other; the summary table (stdout) says what became of each,
//!   and the exit code is 1 if any failed.
//! - Ctrl-C: the requests in flight are withdrawn, no new user starts, the table is printed.

mod resume;

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use argh::{ArgsInfo, FromArgs};
use futures::StreamExt;

use crate::cluster::rbac::Grant;
use crate::cluster::session::{Local, Session};
use crate::error::{Error, Kind, Result};
use crate::flags::cli::flags;
use crate::flags::plan::{self, Offline};
use crate::kubeconfig::{self, Target};
use crate::pipeline::certify::{self, Requester};
use crate::pipeline::record::{self, Recorder};
use crate::pipeline::{self, Certifier, Credentials, Proof, Subject, new_user_entries};
use crate::pki::authority::Authority;
use crate::pki::key::{KeyAlgorithm, KeySource, PrivateKey};
use crate::pki::verify::rfc3339;
use crate::records::inventory::How;
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::Output;

use crate::flags::roster::{self, Member};

const DEFAULT_PARALLEL: usize = 8;
/// From this many users on, say that ECDSA keys are much faster to make than RSA ones.
const RSA_HINT_FROM: usize = 100;

flags! {
    /// Onboard every user listed in a YAML file, each into a standalone kubeconfig in --output-dir.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "The users of team.yaml, approving their requests yourself:\n  $ {command_name} team.yaml --output-dir out/ --approve",
        example = "Signed locally with the cluster CA, with fast ECDSA keys:\n  $ {command_name} team.yaml --output-dir out/ --ca-cert ca.crt --ca-key ca.key --server https://10.0.0.1:6443 --key-algorithm ecdsa-p256",
        note = "The file is a YAML list: '- name: jane', with optional groups: [dev], duration: 90d, clusterRoles: [view], roles: [{{name: deployer, namespace: team-a}}].",
        note = "Run it again to finish what is left: users whose kubeconfig is already in --output-dir and valid are skipped.",
        error_code(
            1,
            "A user failed, or the cluster could not be used (the table says which)."
        ),
        error_code(2, "Usage error, or a problem in the file: nothing was done."),
        error_code(130, "Interrupted (Ctrl-C); requests in flight were withdrawn.")
    )]
    pub struct Args {
        /// the YAML file listing the users
        #[argh(positional)]
        pub file: PathBuf,

        /// where to write <user>.kubeconfig for each user (created 0700)
        #[argh(option)]
        pub output_dir: Option<PathBuf>,

        /// approve the requests yourself (needs approve on signers/kubernetes.io/kube-apiserver-client)
        #[argh(switch)]
        pub approve: bool,

        /// do not record the certificates in the cluster's inventory (kubectl onboard certificates)
        #[argh(switch)]
        pub no_record: bool,

        /// how many users to onboard at a time (default 8)
        #[argh(option)]
        pub parallel: Option<usize>,

        /// key to generate: rsa-2048 (default), rsa-3072, rsa-4096, ecdsa-p256 (fastest), ecdsa-p384
        #[argh(option)]
        pub key_algorithm: Option<String>,

        /// lifetime for users whose entry names none, at least 10m (default: the cluster's)
        #[argh(option)]
        pub duration: Option<String>,

        /// how long to wait for each certificate (default 5m)
        #[argh(option)]
        pub timeout: Option<String>,

        /// replace a file in --output-dir that is not a valid kubeconfig for its user
        #[argh(switch)]
        pub force: bool,

        /// skip proving each user's credentials with a SelfSubjectReview
        #[argh(switch)]
        pub no_verify: bool,

        /// copy the cluster's insecure-skip-tls-verify into a kubeconfig made for someone else
        #[argh(switch)]
        pub allow_insecure_cluster: bool,
    }
    with connection, output, offline
}

/// The arguments, checked.
struct Batch {
    file: PathBuf,
    dir: PathBuf,
    approve: bool,
    /// Record each certificate in the cluster's inventory (not --no-record).
    record: bool,
    parallel: usize,
    key: KeyAlgorithm,
    duration: Option<Duration>,
    timeout: Duration,
    force: bool,
    verify: bool,
    offline: Option<Offline>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    output: Output,
    allow_insecure_cluster: bool,
}

impl TryFrom<Args> for Batch {
    type Error = Error;

    fn try_from(args: Args) -> Result<Batch> {
        let dir = args.output_dir.ok_or_else(|| {
            Error::usage("--output-dir DIR is required: each user's kubeconfig is written there")
        })?;
        let parallel = args.parallel.unwrap_or(DEFAULT_PARALLEL);
        if parallel == 0 {
            return Err(Error::usage("--parallel must be 1 or more"));
        }
        let offline = plan::offline(args.ca_cert, args.ca_key, args.server, args.cluster_name)?;
        if offline.is_some() {
            let pointless = [
                (args.approve, "--approve"),
                (args.timeout.is_some(), "--timeout"),
                (args.context.is_some(), "--context"),
                (args.kubeconfig.is_some(), "--kubeconfig"),
            ];
            if let Some((_, flag)) = pointless.iter().find(|(set, _)| *set) {
                return Err(Error::usage(format!(
                    "{flag} has no meaning offline: with --ca-key the certificates are signed here and no request goes to the cluster; drop {flag}"
                )));
            }
        }
        let timeout = match args.timeout.as_deref() {
            Some(t) => plan::parse_duration("--timeout", t)?,
            None => plan::DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(Error::usage(
                "--timeout must be more than 0s, e.g. 30s or 5m",
            ));
        }
        Ok(Batch {
            file: args.file,
            dir,
            approve: args.approve,
            record: !args.no_record,
            parallel,
            key: match args.key_algorithm {
                Some(name) => name.parse()?,
                None => KeyAlgorithm::Rsa2048,
            },
            duration: args
                .duration
                .as_deref()
                .map(|d| plan::lifetime("--duration", d))
                .transpose()?,
            timeout,
            force: args.force,
            verify: !args.no_verify,
            offline,
            kubeconfig: args.kubeconfig,
            context: args.context,
            output: Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?,
            allow_insecure_cluster: args.allow_insecure_cluster,
        })
    }
}

pub async fn run(args: Args) -> Result<()> {
    let batch = Batch::try_from(args)?;
    let entries = read_roster(&batch)?;
    let mut signals = Signals::install()?;
    let mut progress = batch.output.progress(false);
    let (source, target) = source(&batch, &mut progress)?;
    target.check_portable(batch.allow_insecure_cluster)?;
    crate::kubeconfig::file::make_output_dir(&batch.dir)?;
    let mut results = resumed(&batch, &entries, &target);
    let todo: Vec<usize> = (0..entries.len())
        .filter(|&i| results[i].is_none())
        .collect();
    let mut bar = Bar::new(batch.output.quiet, entries.len());
    announce(&batch, &entries, &results, &todo, &mut bar);
    let mut stopped = None;
    if !todo.is_empty() {
        let mode = match source {
            Source::Local(authority) => {
                let prove = batch.verify && pipeline::prove::reachable(&target.server).await;
                if batch.verify && !prove {
                    bar.warn(&format!(
                        "cannot reach the API server at {}; the new credentials are not proven (check later with kubectl auth whoami)",
                        target.server
                    ));
                }
                let recorder = match batch.record {
                    true => offline_recorder(&batch, &target.server, &mut bar).await,
                    false => None,
                };
                // read_roster refuses roles offline: there are no grants to make.
                Mode::Local {
                    authority,
                    prove,
                    recorder,
                }
            }
            Source::Cluster(local) => {
                let mut grants: Vec<Grant> = Vec::new();
                for grant in todo.iter().flat_map(|&i| &entries[i].grants) {
                    if !grants.contains(grant) {
                        grants.push(grant.clone());
                    }
                }
                let session = local
                    .connect(
                        batch.approve,
                        &grants,
                        None,
                        batch.timeout,
                        &mut signals,
                        &mut progress,
                    )
                    .await?;
                Mode::Cluster(Box::new(session))
            }
        };
        let work = Work {
            batch: &batch,
            mode,
            target: &target,
            stop: Cell::new(None),
        };
        work.drive(&entries, &todo, &mut results, &mut signals, &mut bar)
            .await;
        stopped = work.stop.get();
    }
    bar.close();
    finish(&batch, &entries, &results, stopped)
}

/// Offline, who records the certificates signed here: the user of a context of the kubeconfig
/// for the same server, if it can be reached (said once when not).
async fn offline_recorder(batch: &Batch, server: &str, bar: &mut Bar) -> Option<Box<Recorder>> {
    let recorder = match kubeconfig::load(batch.kubeconfig.as_deref()) {
        Ok(loaded) => Recorder::offline(&loaded, server).await,
        Err(e) => Err(record::not_recorded(&e.to_string())),
    };
    recorder.map(Box::new).map_err(|why| bar.warn(&why)).ok()
}

/// Where the certificates come from, and the cluster the files are for.
fn source(batch: &Batch, progress: &mut Progress) -> Result<(Source, Target)> {
    Ok(match &batch.offline {
        Some(offline) => {
            let authority = Authority::load(&offline.ca_cert, &offline.ca_key)?;
            let target =
                Target::for_server(&offline.cluster_name, &offline.server, authority.ca_pem());
            (Source::Local(Arc::new(authority)), target)
        }
        None => {
            let local = Local::load(
                batch.kubeconfig.as_deref(),
                batch.context.as_deref(),
                progress,
            )?;
            let target = local.target.clone();
            (Source::Cluster(Box::new(local)), target)
        }
    })
}

/// What an earlier run already did: a user whose file is a valid kubeconfig for them is
/// skipped; one whose file is something else fails unless --force. `None`: to do.
fn resumed(batch: &Batch, entries: &[Member], target: &Target) -> Vec<Option<Outcome>> {
    let now = SystemTime::now();
    entries
        .iter()
        .map(|entry| {
            let path = file_of(&batch.dir, &entry.name);
            match resume::already_done(&path, entry, &target.server, target.ca_pem.as_deref(), now)
            {
                Ok(Some(not_after)) => Some(Outcome::Skipped(not_after)),
                Ok(None) => None,
                Err(_) if batch.force => None,
                Err(why) => Some(Outcome::Failed(format!(
                    "{} exists but {why}; pass --force to replace it",
                    path.display()
                ))),
            }
        })
        .collect()
}

/// What is about to happen, and the users settled already.
fn announce(
    batch: &Batch,
    entries: &[Member],
    results: &[Option<Outcome>],
    todo: &[usize],
    bar: &mut Bar,
) {
    if !batch.output.quiet {
        let done = results
            .iter()
            .flatten()
            .filter(|o| matches!(o, Outcome::Skipped(_)))
            .count();
        let plan = match todo.len() {
            0 => "nothing left to do".to_string(),
            n => format!(
                "{n} to onboard, {} at a time, into {}",
                batch.parallel.min(n),
                batch.dir.display()
            ),
        };
        eprintln!(
            "{} users in {}: {done} already done, {plan}",
            entries.len(),
            batch.file.display(),
        );
    }
    for (entry, outcome) in entries.iter().zip(results) {
        if let Some(outcome) = outcome {
            bar.finished(&entry.name, outcome, &[]);
        }
    }
    let rsa = matches!(
        batch.key,
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
    );
    if rsa && todo.len() >= RSA_HINT_FROM && !batch.output.quiet {
        eprintln!(
            "Note: an RSA key takes some 50 ms of CPU to generate (RSA-2048; more for larger ones); --key-algorithm ecdsa-p256 takes well under 1 ms"
        );
    }
}

/// The table (or `-o json|yaml`), then one error if anyone failed or the run was stopped.
fn finish(
    batch: &Batch,
    entries: &[Member],
    results: &[Option<Outcome>],
    stopped: Option<Kind>,
) -> Result<()> {
    let value = || to_value(entries, results, &batch.dir);
    batch
        .output
        .print(value, &table(entries, results, &batch.dir))?;
    if let Some(kind) = stopped {
        let done = results
            .iter()
            .filter(|r| matches!(r, Some(Outcome::Done(_) | Outcome::Skipped(_))))
            .count();
        let what = match kind {
            Kind::Terminated => "terminated",
            _ => "interrupted",
        };
        return Err(Error::new(
            kind,
            format!(
                "{what}: {done} of {} users done; run the same command again to finish (users done are skipped)",
                entries.len()
            ),
        ));
    }
    let failed: Vec<&str> = entries
        .iter()
        .zip(results)
        .filter(|(_, r)| matches!(r, Some(Outcome::Failed(_))))
        .map(|(e, _)| e.name.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "{} of {} users failed: {}; fix what the table says and run again (users done are skipped)",
        failed.len(),
        entries.len(),
        abbreviated(&failed)
    )))
}

/// The roster, checked; every problem on its own line of stderr, then one error.
fn read_roster(batch: &Batch) -> Result<Vec<Member>> {
    let text = roster::read(&batch.file)?;
    let mut problems = match roster::parse(&text) {
        Ok(entries) => {
            if batch.offline.is_none() {
                return Ok(entries);
            }
            let with_roles: Vec<roster::Problem> = entries
                .iter()
                .filter(|e| !e.grants.is_empty())
                .map(|e| roster::Problem {
                    line: e.line,
                    message: format!(
                        "user {}: roles are bound through the API, which offline mode does not call; bind them afterwards, or drop --ca-key to go through the cluster",
                        e.name
                    ),
                })
                .collect();
            if with_roles.is_empty() {
                return Ok(entries);
            }
            with_roles
        }
        Err(problems) => problems,
    };
    problems.sort_by_key(|p| p.line);
    for p in &problems {
        match p.line {
            0 => eprintln!("{}: {}", batch.file.display(), p.message),
            line => eprintln!("{}:{line}: {}", batch.file.display(), p.message),
        }
    }
    Err(Error::usage(format!(
        "{} has {} (listed above); nothing was done",
        batch.file.display(),
        match problems.len() {
            1 => "a problem".to_string(),
            n => format!("{n} problems"),
        }
    )))
}

fn file_of(dir: &Path, user: &str) -> PathBuf {
    // User names are letters, digits and . - _ @ +, starting with a letter or digit (plan.rs).
    dir.join(format!("{user}.kubeconfig"))
}

/// Where certificates come from, before connecting.
enum Source {
    Cluster(Box<Local>),
    Local(Arc<Authority>),
}

/// … and once ready.
enum Mode {
    Cluster(Box<Session>),
    Local {
        authority: Arc<Authority>,
        /// The server answered: prove each user's credentials.
        prove: bool,
        /// Records each certificate in the cluster's inventory (`None`: not recorded).
        recorder: Option<Box<Recorder>>,
    },
}

/// What became of a user.
#[derive(Debug)]
enum Outcome {
    Done(SystemTime),
    Skipped(SystemTime),
    Failed(String),
    Interrupted(String),
}

/// What every user's onboarding shares.
struct Work<'a> {
    batch: &'a Batch,
    mode: Mode,
    target: &'a Target,
    /// Set on SIGINT/SIGTERM: no user starts after it.
    stop: Cell<Option<Kind>>,
}

impl Work<'_> {
    /// Onboards the users `todo`, `parallel` at a time, until done or stopped (Ctrl-C: no new
    /// user starts, and those in flight withdraw their requests).
    async fn drive(
        &self,
        entries: &[Member],
        todo: &[usize],
        results: &mut [Option<Outcome>],
        signals: &mut Signals,
        bar: &mut Bar,
    ) {
        let mut stream = futures::stream::iter(todo.iter().copied())
            .map(|i| {
                let entry = &entries[i];
                async move { (i, self.onboard(entry).await) }
            })
            .buffer_unordered(self.batch.parallel);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                e = signals.interruptible(std::future::pending::<Result<()>>()), if self.stop.get().is_none() => {
                    let kind = e.map_or_else(|e| e.kind, |()| Kind::Interrupted);
                    self.stop.set(Some(kind));
                    bar.warn("interrupted: withdrawing the requests in flight; no new user starts");
                }
                next = stream.next() => match next {
                    Some((i, (outcome, warnings))) => {
                        bar.finished(&entries[i].name, &outcome, &warnings);
                        results[i] = Some(outcome);
                    }
                    None => break,
                },
                _ = tick.tick() => bar.draw(),
            }
        }
    }

    async fn onboard(&self, entry: &Member) -> (Outcome, Vec<String>) {
        if self.stop.get().is_some() {
            return (Outcome::Interrupted("not started".into()), Vec::new());
        }
        // Each user's own handler: on Ctrl-C each withdraws its own request.
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => return (Outcome::Failed(e.to_string()), Vec::new()),
        };
        let mut progress = Progress::captured();
        let outcome = match self.steps(entry, &mut signals, &mut progress).await {
            Ok(not_after) => Outcome::Done(not_after),
            Err(e) if e.is_interruption() => Outcome::Interrupted(e.to_string()),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        (outcome, progress.take_warnings())
    }

    /// One user: key → certificate → proof → bindings → file. Returns the notAfter.
    async fn steps(
        &self,
        entry: &Member,
        signals: &mut Signals,
        progress: &mut Progress,
    ) -> Result<SystemTime> {
        let duration = entry.duration.or(self.batch.duration);
        let algorithm = self.batch.key;
        let subject = Subject {
            user: &entry.name,
            groups: &entry.groups,
        };
        let (key, verified, proof) = match &self.mode {
            Mode::Cluster(session) => {
                let key = signals
                    .interruptible(blocking(move || {
                        PrivateKey::obtain(&KeySource::Generate(algorithm))
                    }))
                    .await?;
                let certifier = Certifier::cluster(
                    session,
                    self.batch.approve,
                    self.batch.timeout,
                    false,
                    self.batch.record.then_some(How::Batch),
                );
                let certified = certifier
                    .certify(subject, Requester::Key(&key), duration, signals, progress)
                    .await?;
                (key, certified.verified, Proof::Cluster(&session.conn))
            }
            Mode::Local { authority, .. } => {
                // Key and signature are CPU work: off the thread that drives the others.
                let (user, groups) = (entry.name.clone(), entry.groups.clone());
                let authority = Arc::clone(authority);
                let (key, verified, warnings) = signals
                    .interruptible(blocking(move || {
                        let key = PrivateKey::obtain(&KeySource::Generate(algorithm))?;
                        let mut progress = Progress::captured();
                        let subject = Subject {
                            user: &user,
                            groups: &groups,
                        };
                        let verified = certify::sign_here(
                            &authority,
                            subject,
                            &key.public_key_der(),
                            duration,
                            SystemTime::now(),
                            &mut progress,
                        )?;
                        Ok((key, verified, progress.take_warnings()))
                    }))
                    .await?;
                for warning in &warnings {
                    progress.warn(warning);
                }
                if let Mode::Local {
                    recorder: Some(recorder),
                    ..
                } = &self.mode
                {
                    recorder.record(&verified, progress).await;
                }
                (key, verified, Proof::Reached(self.target))
            }
        };
        let proven = match &self.mode {
            Mode::Local { prove, .. } => *prove,
            Mode::Cluster(_) => true,
        };
        if self.batch.verify && proven {
            pipeline::prove(proof, &verified.pem, &key, &entry.name, signals, progress).await?;
        }
        if let Mode::Cluster(session) = &self.mode {
            pipeline::bind(&session.conn, &entry.name, &entry.grants, signals, progress).await?;
        }
        self.write(entry, &verified.pem, &key).await?;
        Ok(verified.info.not_after)
    }

    /// The user's own kubeconfig (`<dir>/<user>.kubeconfig`, 0600), written off the thread
    /// that drives the requests.
    async fn write(&self, entry: &Member, cert_pem: &str, key: &PrivateKey) -> Result<()> {
        let cluster = &self.target.cluster_name;
        let key_pem = key.to_pem();
        let credentials = Credentials::Embedded {
            cert_pem,
            key_pem: Some(&key_pem),
        };
        let context = format!("{}@{cluster}", entry.name);
        let entries = new_user_entries(&entry.name, cluster, &context, credentials, None);
        let config = kubeconfig::standalone(self.target, &entries)?;
        let path = file_of(&self.batch.dir, &entry.name);
        let force = self.batch.force;
        // Not interruptible: a write under way finishes (it is quick and atomic), so that a
        // user whose file exists is counted done, never "interrupted".
        blocking(move || kubeconfig::write_standalone(&path, &config, force)).await
    }
}

/// CPU work (key generation, signing) or file I/O, off the thread that drives the requests.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::failed(format!("a worker thread failed: {e}")))?
}

/// The summary for `-o json|yaml`: each user with its result, and its file or error.
fn to_value(entries: &[Member], results: &[Option<Outcome>], dir: &Path) -> serde_json::Value {
    let users: Vec<serde_json::Value> = entries
        .iter()
        .zip(results)
        .map(|(entry, result)| {
            let file = file_of(dir, &entry.name).display().to_string();
            let (result, not_after, file, error) = match result {
                Some(Outcome::Done(t)) => ("ok", Some(rfc3339(*t)), Some(file), None),
                Some(Outcome::Skipped(t)) => ("skipped", Some(rfc3339(*t)), Some(file), None),
                Some(Outcome::Failed(why)) => ("failed", None, None, Some(why.as_str())),
                Some(Outcome::Interrupted(why)) => ("interrupted", None, None, Some(why.as_str())),
                None => ("interrupted", None, None, Some("not started")),
            };
            serde_json::json!({
                "user": entry.name,
                "result": result,
                "notAfter": not_after,
                "kubeconfig": file,
                "error": error,
            })
        })
        .collect();
    serde_json::json!({ "users": users })
}

/// The summary: USER, RESULT, NOT AFTER, FILE OR ERROR.
fn table(entries: &[Member], results: &[Option<Outcome>], dir: &Path) -> String {
    let mut rows = vec![["USER", "RESULT", "NOT AFTER", "FILE OR ERROR"].map(String::from)];
    for (entry, result) in entries.iter().zip(results) {
        let file = file_of(dir, &entry.name).display().to_string();
        rows.push(match result {
            Some(Outcome::Done(t)) => [entry.name.clone(), "ok".into(), rfc3339(*t), file],
            Some(Outcome::Skipped(t)) => [entry.name.clone(), "skipped".into(), rfc3339(*t), file],
            Some(Outcome::Failed(why)) => {
                [entry.name.clone(), "failed".into(), "-".into(), why.clone()]
            }
            Some(Outcome::Interrupted(why)) => [
                entry.name.clone(),
                "interrupted".into(),
                "-".into(),
                why.clone(),
            ],
            None => [
                entry.name.clone(),
                "interrupted".into(),
                "-".into(),
                "not started".into(),
            ],
        });
    }
    crate::ui::report::table(&rows)
}

/// `a, b, c and 12 more`.
fn abbreviated(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

/// Progress on stderr: on a terminal a bar, with failures and warnings printed above it;
/// elsewhere one line per user as it finishes.
struct Bar {
    quiet: bool,
    tty: bool,
    total: usize,
    ok: usize,
    skipped: usize,
    failed: usize,
    started: Instant,
    drawn: bool,
}

impl Bar {
    fn new(quiet: bool, total: usize) -> Bar {
        Bar {
            quiet,
            tty: std::io::stderr().is_terminal(),
            total,
            ok: 0,
            skipped: 0,
            failed: 0,
            started: Instant::now(),
            drawn: false,
        }
    }

    fn finished(&mut self, user: &str, outcome: &Outcome, warnings: &[String]) {
        let line = match outcome {
            Outcome::Done(t) => {
                self.ok += 1;
                format!("{user}: ok, valid until {}", rfc3339(*t))
            }
            Outcome::Skipped(t) => {
                self.skipped += 1;
                format!(
                    "{user}: skipped, already done (valid until {})",
                    rfc3339(*t)
                )
            }
            Outcome::Failed(why) => {
                self.failed += 1;
                format!("{user}: failed: {why}")
            }
            Outcome::Interrupted(why) => {
                self.failed += 1;
                format!("{user}: {why}")
            }
        };
        for warning in warnings {
            self.warn(&format!("{user}: {warning}"));
        }
        let worth_a_line = !self.tty || matches!(outcome, Outcome::Failed(_));
        if !self.quiet && worth_a_line {
            self.clear();
            eprintln!("{line}");
        }
        self.draw();
    }

    /// Shown even with -q.
    fn warn(&mut self, message: &str) {
        self.clear();
        eprintln!("warning: {message}");
        self.draw();
    }

    fn draw(&mut self) {
        if self.quiet || !self.tty {
            return;
        }
        const WIDTH: usize = 30;
        let finished = self.ok + self.skipped + self.failed;
        let filled = (finished * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let bar: String = "█".repeat(filled) + &"░".repeat(WIDTH - filled);
        eprint!(
            "\r\x1b[2K{bar} {finished}/{} · ok {} · skipped {} · failed {} · {}s",
            self.total,
            self.ok,
            self.skipped,
            self.failed,
            self.started.elapsed().as_secs()
        );
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    /// Leaves the final bar on its own line.
    fn close(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_what_became_of_each_user() {
        let entry = |name: &str| Member {
            line: 1,
            name: name.into(),
            groups: vec![],
            duration: None,
            grants: vec![],
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let out = table(
            &[entry("jane"), entry("bob"), entry("al")],
            &[
                Some(Outcome::Done(t)),
                Some(Outcome::Failed("denied".into())),
                None,
            ],
            Path::new("out"),
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("USER   RESULT"), "{out}");
        assert!(
            lines[1].contains("ok")
                && lines[1].contains("2026-11-18T11:06:40Z")
                && lines[1].ends_with("out/jane.kubeconfig"),
            "{out}"
        );
        assert!(
            lines[2].contains("failed") && lines[2].ends_with("denied"),
            "{out}"
        );
        assert!(lines[3].contains("interrupted"), "{out}");
    }

    #[test]
    fn long_lists_of_names_are_cut() {
        assert_eq!(abbreviated(&["a", "b"]), "a, b");
        assert_eq!(
            abbreviated(&["a", "b", "c", "d", "e", "f", "g"]),
            "a, b, c, d, e and 2 more"
        );
    }

    #[test]
    fn output_dir_is_required_and_offline_refuses_api_flags() {
        let args = |extra: &[&str]| {
            let mut raw = vec!["team.yaml".to_string()];
            raw.extend(extra.iter().map(|s| s.to_string()));
            let strs: Vec<&str> = raw.iter().map(String::as_str).collect();
            Args::from_args(&["batch"], &strs).unwrap()
        };
        let err = |extra: &[&str]| Batch::try_from(args(extra)).err().unwrap().to_string();
        assert!(err(&[]).contains("--output-dir"));
        assert!(err(&["--output-dir", "o", "--parallel", "0"]).contains("--parallel"));
        let offline = [
            "--output-dir",
            "o",
            "--ca-cert",
            "c",
            "--ca-key",
            "k",
            "--server",
            "https://h",
        ];
        assert!(
            err(&[&offline[..], &["--approve"]].concat())
                .contains("--approve has no meaning offline")
        );
        assert!(
            err(&["--output-dir", "o", "--ca-key", "k"]).contains("add --ca-cert and --server")
        );
        let ok = Batch::try_from(args(&offline)).unwrap();
        assert_eq!(ok.offline.unwrap().cluster_name, "h");
        assert_eq!(ok.parallel, DEFAULT_PARALLEL);
    }
}
