//! `kubectl onboard approve NAME…`: `kubectl certificate approve` with a reviewer's eye. Each
//! request is read first (signer, usages, the PKCS#10's subject and self-signature); if any of
//! them is not a plain client certificate for a person, none is approved. Approving one that is
//! approved already is fine, as with kubectl.

use argh::{ArgsInfo, FromArgs};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use serde_json::json;
use std::time::SystemTime;

use crate::csr::queue::{self, because, fetch, names, request_value, review_all};

use crate::cluster::Connection;
use crate::cluster::access;
use crate::cluster::session;
use crate::csr::review::Reviewed;
use crate::csr::submit;
use crate::csr::wait::State;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan::format_duration;
use crate::invitation::approval::{self, Verdict};
use crate::invitation::{self, Invitation};
use crate::records::inventory::{self, Recorded};
use crate::ui::progress::Progress;
use crate::ui::report::Output;

flags! {
    /// Approve certificate requests for people (kube-apiserver-client signer), after checking what they ask for.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Approve a request from the queue:\n  $ kubectl onboard pending\n  $ {command_name} jane-4kx9q2",
        example = "Approve every request that matches its invitation:\n  $ {command_name} --invited",
        note = "Refused, and nothing approved: another signer, usages other than client auth (plus digital signature, key encipherment), a subject with no or several CNs or in system: (system:masters above all), a request whose self-signature does not verify, a request made with an invitation that asks for another user, other groups or a longer lifetime than invited, or whose invitation is used, expired or withdrawn. Approving a request made with an invitation makes the invitation's role bindings and uses it up.",
        error_code(1, "Refused, not found, denied already, or not allowed.")
    )]
    pub struct Args {
        /// the CertificateSigningRequests to approve (kubectl onboard pending lists them)
        #[argh(positional)]
        pub names: Vec<String>,
        /// do not record the issued certificates in the cluster's inventory
        #[argh(switch)]
        pub no_record: bool,
        /// approve every pending request that asks for exactly what its invitation allows, and nothing else
        #[argh(switch)]
        pub invited: bool,
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
    let names = match args.invited {
        true if !args.names.is_empty() => {
            return Err(Error::usage(
                "--invited approves every request that matches its invitation: name no request with it",
            ));
        }
        true => Vec::new(),
        false => names(&args.names, "approve")?,
    };
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);
    let (kubeconfig, context) = (args.kubeconfig.as_deref(), args.context.as_deref());
    let conn = session::connection(
        kubeconfig,
        context,
        args.request_timeout.as_deref(),
        &mut progress,
    )
    .await?;
    access::check_reviewer(&conn, "approve").await?;

    // Validate every request before approving any.
    let sorted = sort(&conn, &names, args.invited, &mut progress).await?;
    let Sorted {
        to_approve,
        done_already,
    } = sorted;
    let grants: Vec<_> = to_approve
        .iter()
        .flat_map(|(_, i)| i.iter().flat_map(|(i, _)| i.grants.clone()))
        .collect();
    access::check_grants(&conn, &grants).await?;
    let mut text = String::new();
    for r in &done_already {
        text += &format!("{} is already approved\n", r.name);
    }
    if args.invited && to_approve.is_empty() {
        progress.step("No pending request matches its invitation.");
    }
    let approver = match to_approve.is_empty() {
        true => None,
        false => inventory::caller(&conn).await,
    };
    for (r, invitation) in &to_approve {
        if let Some((invitation, version)) = invitation {
            text += &use_invitation(&conn, r, invitation, version).await?;
        }
        submit::approve(&conn, &r.checked, approver.as_deref()).await?;
        progress.detail(&format!("approved {}", r.name));
        text += &format!("Approved {}\n", describe(r));
    }
    if args.no_record || to_approve.is_empty() {
        // Nothing to record.
    } else {
        let approved: Vec<&Reviewed> = to_approve.iter().map(|(r, _)| r).collect();
        record_when_issued(&conn, &approved, &mut progress).await;
    }
    // After the signer (recording waits for it): the credentials of finished invitations go.
    if to_approve
        .iter()
        .any(|(_, invitation)| invitation.is_some())
    {
        crate::invitation::server::tidy_all(&conn, &mut progress).await;
    }
    let now = Timestamp::now();
    let value = || {
        let approved: Vec<_> = to_approve
            .iter()
            .map(|(r, _)| request_value(r, now))
            .collect();
        let already: Vec<&str> = done_already.iter().map(|r| r.name.as_str()).collect();
        json!({"approved": approved, "alreadyApproved": already})
    };
    output.print(value, &text)
}

/// The requests `names` (with `invited`: every pending one), sorted; any that cannot be
/// approved is an error that names them all.
async fn sort(
    conn: &Connection,
    names: &[String],
    invited: bool,
    progress: &mut Progress,
) -> Result<Sorted> {
    let mut problems = Vec::new();
    let reviewed = match invited {
        // Newest first. An invitation has one request of its own at a time (`accept` replaces
        // an undecided one), so this only orders what else is pending.
        true => {
            let mut pending = queue::pending(conn).await?;
            pending.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
            // A flood from one invitation is said, whatever is approved of it (only its own
            // request can match).
            for (requester, count) in queue::floods(&pending) {
                progress.warn(&queue::flood_warning(&requester, count));
            }
            pending
        }
        false => review_all(conn, names, &mut problems).await?,
    };
    let mut sorted = Sorted::default();
    for reviewed in reviewed {
        sorted
            .add(conn, reviewed, invited, &mut problems, progress)
            .await?;
    }
    match problems.is_empty() {
        true => Ok(sorted),
        false => Err(Error::failed(format!(
            "{}; nothing was approved",
            problems.join("; ")
        ))),
    }
}

/// The requests named (or, with --invited, pending), sorted: what to approve (with the
/// invitation it was made with, read at a version), what is approved already.
#[derive(Default)]
struct Sorted {
    to_approve: Vec<(Reviewed, Option<(Invitation, String)>)>,
    done_already: Vec<Reviewed>,
}

impl Sorted {
    /// Sorts `reviewed` in, or says in `problems` why it cannot be approved (with `invited`,
    /// requests that do not match an invitation are left alone, said with -v).
    async fn add(
        &mut self,
        conn: &Connection,
        reviewed: Reviewed,
        invited: bool,
        problems: &mut Vec<String>,
        progress: &mut Progress,
    ) -> Result<()> {
        let name = &reviewed.name;
        match &reviewed.state {
            // (With `invited` every request here is pending.)
            State::Issued(_) | State::Approved => self.done_already.push(reviewed),
            State::Denied { reason, message } => problems.push(format!(
                "{name} was denied ({}), so it cannot be approved: the requester must ask again",
                because(reason, message)
            )),
            State::Failed { reason, message } => problems.push(format!(
                "{name} was approved and then failed by the signer ({}): the requester must ask again",
                because(reason, message)
            )),
            State::Pending => {
                let why = reviewed.refusals();
                if invited && !why.is_empty() {
                    return Ok(());
                }
                if !why.is_empty() {
                    problems.push(format!("refusing to approve {name}: {}", why.join("; ")));
                    return Ok(());
                }
                let verdict = approval::verdict(conn, &reviewed, SystemTime::now()).await?;
                let refused = match verdict {
                    Verdict::NotInvited if invited => return Ok(()),
                    Verdict::NotInvited => {
                        self.to_approve.push((reviewed, None));
                        return Ok(());
                    }
                    Verdict::Differs {
                        name: invitation,
                        why,
                    } => format!(
                        "it does not match invitation {invitation}: {}",
                        why.join("; ")
                    ),
                    Verdict::Unknown { why, .. } => why,
                    Verdict::Matches { invitation, .. } if self.uses(&invitation.name).is_some() => {
                        let first = self.uses(&invitation.name).unwrap_or_default();
                        format!(
                            "it is made with invitation {}, which {first} uses in this approval: it serves once",
                            invitation.name
                        )
                    }
                    Verdict::Matches {
                        invitation,
                        version,
                    } => {
                        self.to_approve.push((reviewed, Some((*invitation, version))));
                        return Ok(());
                    }
                };
                match invited {
                    true => progress.detail(&format!("not approving {name}: {refused}")),
                    false => problems.push(format!("refusing to approve {name}: {refused}")),
                }
            }
        }
        Ok(())
    }

    /// The request that uses invitation `name` in this approval, if one does.
    fn uses(&self, name: &str) -> Option<String> {
        self.to_approve.iter().find_map(|(r, i)| {
            i.as_ref()
                .filter(|(i, _)| i.name == name)
                .map(|_| r.name.clone())
        })
    }
}

/// Before a request made with `invitation` is approved: the invitation is marked used by it
/// (unless it changed since it was read: then someone else used or withdrew it), and its
/// role bindings are made for the user. Returns what was done, in lines.
async fn use_invitation(
    conn: &Connection,
    request: &Reviewed,
    invitation: &Invitation,
    version: &str,
) -> Result<String> {
    let name = &invitation.name;
    let uid = request.checked.metadata.uid.as_deref().unwrap_or_default();
    if !invitation::server::mark_used(conn, name, version, &request.name, uid).await? {
        return Err(Error::failed(format!(
            "invitation {name} changed while {} was being approved (approved or withdrawn by someone else?); {} was not approved: run again to see",
            request.name, request.name
        )));
    }
    let mut text = format!("Invitation {name} is used by {}\n", request.name);
    for grant in &invitation.grants {
        crate::cluster::rbac::bind(conn, &invitation.user, grant).await?;
        text += &format!("Bound {} for {}\n", grant.describe(), invitation.user);
    }
    Ok(text)
}

/// Records the approved requests' certificates once the signer has issued them, with us as
/// approver, if each is for exactly what was approved. The signer takes about a second; after
/// [`ISSUE_WAIT`] the rest is left to any later `kubectl onboard certificates` (within the hour
/// the cleaner leaves them). A request deleted as soon as it was issued is recorded all the
/// same: its history is read from the version that was checked.
async fn record_when_issued(conn: &Connection, approved: &[&Reviewed], progress: &mut Progress) {
    let deadline = tokio::time::Instant::now() + ISSUE_WAIT;
    let mut recorded = 0;
    for r in approved {
        let issued = match fate(conn, r, deadline).await {
            Fate::Issued(csr) => csr,
            Fate::Gone => {
                progress.detail(&format!(
                    "{} was deleted before the signer issued it: there is no certificate to record",
                    r.name
                ));
                continue;
            }
            Fate::Vanished => {
                progress.warn(&format!(
                    "request {} was deleted (by its requester?) before its certificate could be recorded, and without a watch it cannot be told whether one was issued: if it was, it is in no inventory record, so certificates, revoke and offboard cannot see it; if you did not expect this, take the user's access away with kubectl onboard offboard USER --revoke",
                    r.name
                ));
                continue;
            }
            Fate::Waiting => {
                progress.detail(&format!(
                    "{} not issued within {}s: kubectl onboard certificates records it later",
                    r.name,
                    ISSUE_WAIT.as_secs()
                ));
                continue;
            }
        };
        match inventory::record_request(conn, &issued, None).await {
            Ok(Recorded::Added) => recorded += 1,
            Ok(Recorded::Nothing) => {}
            Ok(Recorded::Mismatched(line)) => progress.warn(&line),
            Err(why) => {
                progress.step(&format!(
                    "Not recorded in the cluster's certificate inventory: {why} (--no-record skips it)"
                ));
                return;
            }
        }
    }
    progress.detail(&format!("inventory: recorded {recorded} certificates"));
}

/// What became of an approved request.
enum Fate {
    Issued(Box<CertificateSigningRequest>),
    /// Deleted before a certificate was issued.
    Gone,
    /// Deleted, seen without a watch: whether it was issued first is not known.
    Vanished,
    /// No certificate yet.
    Waiting,
}

/// What became of `r` by `deadline`, as a watch from the version that was checked shows it: it
/// replays every change since, so a request deleted right after it was issued still shows its
/// certificate. Without a watch (not allowed, or that version is gone), one read.
async fn fate(conn: &Connection, r: &Reviewed, deadline: tokio::time::Instant) -> Fate {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let uid = r.checked.metadata.uid.clone();
    let ours = |csr: &CertificateSigningRequest| csr.metadata.uid == uid;
    let issued = |csr: &CertificateSigningRequest| {
        csr.status.as_ref().is_some_and(|s| s.certificate.is_some())
    };
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let version = r
        .checked
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={}", r.name))
        .timeout(ISSUE_WAIT.as_secs() as u32 + 1);
    if let Ok(stream) = api.watch(&params, &version).await {
        let mut events = stream.boxed();
        while let Ok(Some(Ok(event))) = tokio::time::timeout_at(deadline, events.next()).await {
            match event {
                WatchEvent::Added(csr) | WatchEvent::Modified(csr)
                    if ours(&csr) && issued(&csr) =>
                {
                    return Fate::Issued(Box::new(csr));
                }
                WatchEvent::Deleted(csr) if ours(&csr) => {
                    return match issued(&csr) {
                        true => Fate::Issued(Box::new(csr)),
                        false => Fate::Gone,
                    };
                }
                _ => {}
            }
        }
    }
    match fetch(conn, &r.name).await {
        Ok(Some(csr)) if ours(&csr) && issued(&csr) => Fate::Issued(Box::new(csr)),
        Ok(Some(csr)) if ours(&csr) => Fate::Waiting,
        Ok(_) => Fate::Vanished,
        Err(_) => Fate::Waiting,
    }
}

/// How long `approve` waits for the signer before leaving the recording to later.
const ISSUE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `jane-4kx9q2: user jane, groups dev, RSA-2048, 90d, requested by onboarder`.
fn describe(r: &Reviewed) -> String {
    let mut parts = Vec::new();
    if let Ok(a) = &r.asked {
        parts.push(format!("user {}", a.common_name().unwrap_or("?")));
        if !a.groups.is_empty() {
            parts.push(format!("groups {}", a.groups.join(",")));
        }
        parts.push(a.key.clone());
    }
    parts.push(match r.expiration_seconds {
        Some(s) if s > 0 => format_duration(std::time::Duration::from_secs(s as u64)),
        _ => "the cluster's default lifetime".into(),
    });
    if let Some(who) = &r.requester {
        parts.push(format!("requested by {who}"));
    }
    format!("{}: {}", r.name, parts.join(", "))
}
