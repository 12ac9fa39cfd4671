//! `kubectl onboard invite USER`: the administrator's half of self-service onboarding. Makes an
//! invitation (see `invitation/`): a record of who is invited with which groups and grants, a
//! ServiceAccount that may only request certificates, and a token for it that expires, written
//! with the cluster's address and CA into a file for the new user (`kubectl onboard accept`).
//! With `--from team.yaml`, one invitation per user of a batch file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::cluster::Connection;
use crate::cluster::access;
use crate::cluster::rbac::Grant;
use crate::cluster::session::Local;
use crate::csr::submit;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan::{self, format_duration};
use crate::flags::roster;
use crate::invitation::{self, DEFAULT_EXPIRY, Invitation, MAX_EXPIRY, MIN_EXPIRY, file, server};
use crate::kubeconfig::Target;
use crate::records::inventory;
use crate::ui::progress::Progress;
use crate::ui::report::Output;

flags! {
    /// Invite a new user: a single-use invitation file they redeem with kubectl onboard accept.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Invite jane into group dev, with read access to pods, for a day:\n  $ {command_name} jane --group dev --clusterrole pod-reader --expires 24h",
        example = "Invite everyone in a batch file:\n  $ {command_name} --from team.yaml --output-dir invites/",
        note = "The invitation may only request certificates; kubectl onboard approve approves a request made with it only if it asks for exactly the user, groups and at most the lifetime invited, once. The file holds a credential: it is written 0600 and never printed."
    )]
    pub struct Args {
        /// the user to invite: the certificate's common name (CN)
        #[argh(positional)]
        pub user: Option<String>,

        /// a group for the user: the certificate's organization (O); repeat for several
        #[argh(option, short = 'g')]
        pub group: Vec<String>,

        /// the longest certificate the user may ask for, e.g. 90d (default: the signer's)
        #[argh(option)]
        pub duration: Option<String>,

        /// how long the invitation may be redeemed, 10m to 30d (default 24h)
        #[argh(option)]
        pub expires: Option<String>,

        /// where to write the invitation (default: <user>.invite)
        #[argh(option)]
        pub output: Option<PathBuf>,

        /// a batch file (the format of kubectl onboard batch): one invitation per user
        #[argh(option)]
        pub from: Option<PathBuf>,

        /// with --from: where to write <user>.invite for each user (created 0700)
        #[argh(option)]
        pub output_dir: Option<PathBuf>,

        /// overwrite an existing invitation file
        #[argh(switch)]
        pub force: bool,

        /// print the result as json or yaml
        #[argh(option, short = 'o')]
        pub format: Option<String>,

        /// print what it looks at and decides (never the token)
        #[argh(switch, short = 'v')]
        pub verbose: bool,
    }
    with connection, limit, grants
}

/// One invitation to make.
#[derive(Clone, Debug, PartialEq)]
struct Wanted {
    user: String,
    groups: Vec<String>,
    grants: Vec<Grant>,
    duration: Option<Duration>,
    path: PathBuf,
}

pub async fn run(args: Args) -> Result<()> {
    let wanted = wanted(&args)?;
    let expires = expiry(args.expires.as_deref())?;
    let limit = crate::cluster::session::request_timeout_flag(args.request_timeout.as_deref())?;
    for w in &wanted {
        file::check_free(&w.path, args.force)?;
    }
    let output = Output::from_flags(args.format.as_deref(), false, args.verbose)?;
    let mut progress = output.progress(false);
    let (kubeconfig, context) = (args.kubeconfig.as_deref(), args.context.as_deref());
    let local = Local::load(kubeconfig, context, &mut progress)?;
    local.target.check_portable(false)?;
    let conn = Connection::open_bounded(&local.loaded, &local.target, limit).await?;
    access::check_inviter(&conn).await?;
    let grants: Vec<Grant> = wanted.iter().flat_map(|w| w.grants.clone()).collect();
    access::check_grants(&conn, &grants).await.map_err(|e| {
        e.context("an invitation may grant only what you may bind yourself; nothing was created")
    })?;
    server::prepare(&conn).await?;
    server::tidy_all(&conn, &mut progress).await;
    warn_missing_roles(&conn, &wanted, &mut progress).await;
    if let Some(dir) = &args.output_dir {
        crate::kubeconfig::file::make_output_dir(dir)?;
    }
    let invited_by = inventory::caller(&conn).await;
    let mut made: Vec<(Invitation, PathBuf)> = Vec::new();
    for w in &wanted {
        let name = submit::object_name(&w.user, &submit::random_suffix());
        let now = SystemTime::now();
        let mut invitation = invitation::new(
            name, &w.user, &w.groups, &w.grants, w.duration, expires, now,
        );
        invitation.invited_by = invited_by.clone();
        let (target, path) = (&local.target, &w.path);
        if let Err(e) = make(&conn, target, &invitation, expires, path, args.force).await {
            // Those made before stand: say which, then why the rest was not.
            made.iter()
                .for_each(|(i, path)| print!("{}", said(i, path)));
            let counted = format!("{} of {} invitations made", made.len(), wanted.len());
            return Err(e.context(counted));
        }
        made.push((invitation, w.path.clone()));
    }
    let text: String = made.iter().map(|(i, path)| said(i, path)).collect();
    output.print(|| to_value(&made), &text)
}

/// What to make, every name and flag checked before anything is sent.
fn wanted(args: &Args) -> Result<Vec<Wanted>> {
    let duration = plan::duration_flag(args.duration.as_deref())?;
    if let Some(ns) = &args.namespace {
        plan::validate_namespace(ns)?;
    }
    let grants = plan::grants(&args.clusterrole, &args.role, args.namespace.as_deref())?;
    match (&args.user, &args.from) {
        (Some(user), None) => {
            if args.output_dir.is_some() {
                return Err(Error::usage(
                    "--output-dir goes with --from; for one user, --output FILE",
                ));
            }
            plan::validate_user(user)?;
            let path = args
                .output
                .clone()
                .unwrap_or_else(|| file::default_path(None, user));
            file::check_directory(&path)?;
            Ok(vec![Wanted {
                user: user.clone(),
                groups: plan::validate_groups(args.group.clone(), false)?,
                grants,
                duration,
                path,
            }])
        }
        (None, Some(from)) => {
            let given = !args.group.is_empty() || !grants.is_empty() || args.output.is_some();
            if given {
                return Err(Error::usage(
                    "with --from, groups and roles come from the file: drop --group, --clusterrole, --role and --output",
                ));
            }
            let dir = args.output_dir.as_deref().ok_or_else(|| {
                Error::usage(
                    "--from needs --output-dir DIR: each user's invitation is written there",
                )
            })?;
            from_file(from, dir, duration)
        }
        (Some(_), Some(_)) => Err(Error::usage("name one user, or --from FILE, not both")),
        (None, None) => Err(Error::usage(
            "name the user to invite: kubectl onboard invite USER (or --from FILE for several)",
        )),
    }
}

fn from_file(from: &Path, dir: &Path, duration: Option<Duration>) -> Result<Vec<Wanted>> {
    let text = roster::read(from)?;
    let members = roster::parse(&text).map_err(|problems| {
        let each: Vec<String> = problems
            .iter()
            .map(|p| format!("line {}: {}", p.line, p.message))
            .collect();
        Error::usage(format!("{}: {}", from.display(), each.join("; ")))
    })?;
    Ok(members
        .into_iter()
        .map(|m| Wanted {
            path: file::default_path(Some(dir), &m.name),
            duration: m.duration.or(duration),
            user: m.name,
            groups: m.groups,
            grants: m.grants,
        })
        .collect())
}

/// `--expires`: at least [`MIN_EXPIRY`] (TokenRequest's minimum), [`DEFAULT_EXPIRY`] if not given.
fn expiry(text: Option<&str>) -> Result<Duration> {
    let Some(text) = text else {
        return Ok(DEFAULT_EXPIRY);
    };
    let expires = plan::parse_duration("--expires", text)?;
    if expires < MIN_EXPIRY {
        return Err(Error::usage(format!(
            "--expires {text} is too short: a token lives at least {}",
            format_duration(MIN_EXPIRY)
        )));
    }
    if expires > MAX_EXPIRY {
        return Err(Error::usage(format!(
            "--expires {text} is too long: an invitation lives at most {} (its token works for whoever holds the file until it is used)",
            format_duration(MAX_EXPIRY)
        )));
    }
    Ok(expires)
}

/// The invitation's objects, its token, and the file; on an error after the objects, they are
/// deleted again, so that no credential is left that nobody holds.
async fn make(
    conn: &Connection,
    target: &Target,
    invitation: &Invitation,
    expires: Duration,
    path: &Path,
    force: bool,
) -> Result<()> {
    server::create(conn, invitation).await?;
    let written = async {
        let token = server::token(conn, &invitation.name, expires).await?;
        file::write(path, &file::render(target, &token, invitation), force)
    }
    .await;
    if written.is_err() {
        let _ = server::delete_credential(conn, &invitation.name).await;
        let _ = server::set(conn, &invitation.name, None, &invitation::Stored::Withdrawn).await;
    }
    written
}

/// A role that does not exist yet is bound all the same at approval, and grants nothing until
/// it exists: say so now.
async fn warn_missing_roles(conn: &Connection, wanted: &[Wanted], progress: &mut Progress) {
    let mut grants: Vec<&Grant> = wanted.iter().flat_map(|w| &w.grants).collect();
    grants.dedup();
    for grant in grants {
        if crate::cluster::rbac::role_exists(conn, grant).await == Some(false) {
            progress.warn(&format!(
                "{} does not exist (yet): the binding made at approval grants nothing until it does (and approval fails while its namespace does not exist)",
                invitation::grant_text(grant)
            ));
        }
    }
}

fn said(invitation: &Invitation, path: &Path) -> String {
    format!(
        "Invitation {} for {} written to {} (0600), valid until {}.\nSend it to {}; they run: kubectl onboard accept {}\n",
        invitation.name,
        invitation.identity(),
        path.display(),
        invitation.expires,
        invitation.user,
        path.display()
    )
}

fn to_value(made: &[(Invitation, PathBuf)]) -> Value {
    let items: Vec<Value> = made
        .iter()
        .map(|(i, path)| {
            let mut v = invitation::invitation_value(i, invitation::State::Open);
            v["file"] = json!(path.display().to_string());
            v
        })
        .collect();
    json!({ "invitations": items })
}
