//! `kubectl onboard offboard USER`: take back what onboarding gave. The RBAC bindings
//! kubectl-onboard made for the user are deleted; with `--kubeconfig-entries` their user and
//! contexts leave the kubeconfig too. What cannot be taken back is said plainly: Kubernetes has
//! no revocation for client certificates, so the certificate authenticates until it expires.

use std::path::PathBuf;
use std::time::SystemTime;

use argh::{ArgsInfo, FromArgs};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::cluster::Connection;
use crate::cluster::access;
use crate::cluster::rbac;
use crate::cluster::session::{Local, display_paths};
use crate::csr::review::Reviewed;
use crate::csr::submit::SIGNER;
use crate::csr::wait::State;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::kubeconfig::credential::{self, Field};
use crate::kubeconfig::file::{self, Transaction};
use crate::kubeconfig::{Forgotten, Loaded};
use crate::pki::verify::{self, rfc3339};
use crate::records::inventory::Record;
use crate::records::inventory::{State as CertState, state};
use crate::records::revocation::enforcement::check_enforced;
use crate::records::revocation::targets::{Target, put_on_list, trusted};
use crate::records::revocation::{self, credential_id};
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::Output;

flags! {
    /// Remove a user's access: the RBAC bindings kubectl onboard made, and optionally their kubeconfig entries.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Remove jane's bindings, and her user and contexts from your kubeconfig:\n  $ {command_name} jane --kubeconfig-entries",
        note = "Kubernetes cannot revoke a client certificate: it authenticates until it expires. Without bindings it grants nothing beyond what its groups and system:authenticated are bound to, which is listed; --revoke refuses its writes (kubectl onboard revoke)."
    )]
    pub struct Args {
        /// the user to offboard
        #[argh(positional)]
        pub user: String,

        /// also remove the user and every context that uses it from the kubeconfig file(s)
        #[argh(switch)]
        pub kubeconfig_entries: bool,

        /// also revoke the user's still-valid certificates: their writes are refused (kubectl onboard revoke)
        #[argh(switch)]
        pub revoke: bool,
    }
    with connection, limit, output
}

/// What offboarding did, for the text and `-o json|yaml`.
#[derive(Default)]
struct Offboarded {
    bindings_deleted: Vec<String>,
    entries_removed: Vec<Forgotten>,
    files_removed: Vec<PathBuf>,
    certificates: Vec<Known>,
    /// The user's still-valid certificates in the cluster's inventory.
    recorded: Vec<Record>,
    /// Whether those were revoked just now (--revoke).
    revoked: bool,
    /// Bindings that still grant the user's certificates something (through the user, its
    /// groups or system:authenticated), described.
    still_granted: Vec<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let user = args.user.as_str();
    if user.trim().is_empty() {
        return Err(Error::usage(
            "name the user to offboard: kubectl onboard offboard USER",
        ));
    }
    crate::flags::plan::validate_name("user", user)?;
    let limit = crate::cluster::session::request_timeout_flag(args.request_timeout.as_deref())?;
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut signals = Signals::install()?;
    let mut progress = output.progress(false);
    let local = Local::load(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        &mut progress,
    )?;
    let entry_files = local.loaded.files_of_user(user);
    if args.kubeconfig_entries {
        // A stale lock stops us before anything in the cluster is deleted.
        for path in &entry_files {
            file::probe(path)?;
        }
    }
    let mut done = Offboarded {
        certificates: kubeconfig_certificate(&local.loaded, user)
            .into_iter()
            .collect(),
        ..Offboarded::default()
    };
    let conn = signals
        .interruptible(Connection::open_bounded(
            &local.loaded,
            &local.target,
            limit,
        ))
        .await?;
    done.bindings_deleted = unbind(&conn, user, &mut signals, &mut progress).await?;
    if signals.interruptible(access::may_list_csrs(&conn)).await? {
        let requests = signals.interruptible(requests_for(&conn, user)).await?;
        for name in &requests.pending {
            progress.warn(&format!(
                "CertificateSigningRequest {name} asks for a certificate for {user} and is still pending; deny it: kubectl onboard deny {name} --reason \"{user} was offboarded\""
            ));
        }
        done.certificates.extend(requests.issued);
    }
    account(&conn, user, args.revoke, &mut done, &mut progress).await?;
    if args.kubeconfig_entries {
        done.entries_removed = Transaction::all(|tx| local.loaded.forget_user(user, tx))?;
        done.files_removed = remove_credential_files(&done.entries_removed, &mut progress);
    } else if !entry_files.is_empty() {
        progress.warn(&format!(
            "{} still has user {user} or its contexts; add --kubeconfig-entries to remove them",
            display_paths(&entry_files)
        ));
    }
    let looked_in = args
        .kubeconfig_entries
        .then(|| display_paths(&local.loaded.sources.read));
    let now = SystemTime::now();
    let text = done.text(user, looked_in.as_deref(), now);
    output.print(|| done.to_value(user, now), &text)
}

/// What the inventory knows of `user`'s still-valid certificates, and what keeps granting them
/// access once the bindings are gone; with `revoke`, their writes are refused from now on.
async fn account(
    conn: &Connection,
    user: &str,
    revoke: bool,
    done: &mut Offboarded,
    progress: &mut Progress,
) -> Result<()> {
    let now = SystemTime::now();
    // Trusted records only: a forged one could name anyone's certificate.
    let records = match trusted(conn, Some(user), progress).await {
        Ok(records) => records,
        Err(e) if revoke => return Err(e),
        Err(e) => {
            progress.detail(&format!("inventory not read: {e}"));
            Vec::new()
        }
    };
    done.recorded = records
        .iter()
        .filter(|r| r.user == user && state(r, now, None) != CertState::Expired)
        .cloned()
        .collect();
    for r in &done.recorded {
        if let Some(not_after) = r.not_after_time() {
            done.certificates.push(Known {
                groups: r.groups.clone(),
                not_after,
            });
        }
    }
    if revoke {
        if done.recorded.is_empty() {
            return Err(Error::failed(format!(
                "--revoke: no still-valid certificate of {user} in the inventory (kubectl onboard certificates {user} --all); the bindings are removed, nothing was revoked"
            )));
        }
        revocation::supported(conn).await.map_err(|why| {
            Error::failed(format!("--revoke: cannot revoke on this cluster: {why}; the bindings are removed, nothing was revoked"))
        })?;
        let targets: Vec<Target> = done
            .recorded
            .iter()
            .map(|r| Target::Recorded(Box::new(r.clone())))
            .collect();
        put_on_list(
            conn,
            &targets,
            Some(&format!("{user} was offboarded")),
            &records,
        )
        .await?;
        let fingerprints: Vec<String> = targets
            .iter()
            .map(|t| t.fingerprint().to_string())
            .collect();
        check_enforced(conn, &fingerprints, true, progress).await?;
        done.revoked = true;
    }
    let mut groups: Vec<String> = done
        .certificates
        .iter()
        .flat_map(|k| k.groups.clone())
        .collect();
    groups.sort();
    groups.dedup();
    done.still_granted = rbac::granting(conn, user, &groups).await?;
    Ok(())
}

/// Deletes the bindings kubectl onboard made for `user`; warns about the others naming them.
async fn unbind(
    conn: &Connection,
    user: &str,
    signals: &mut Signals,
    progress: &mut Progress,
) -> Result<Vec<String>> {
    signals
        .interruptible(access::check_binding_lister(conn))
        .await?;
    let ours = signals.interruptible(rbac::bindings_of(conn, user)).await?;
    signals
        .interruptible(access::check_unbinder(conn, &ours))
        .await?;
    let mut deleted = Vec::new();
    for (namespace, name) in &ours {
        if signals
            .interruptible(rbac::unbind(conn, namespace.as_deref(), name))
            .await?
        {
            deleted.push(rbac::describe_binding(namespace.as_deref(), name));
        }
    }
    for (namespace, name) in signals
        .interruptible(rbac::others_naming(conn, user))
        .await?
    {
        let delete = match namespace.as_deref() {
            None => format!("kubectl delete clusterrolebinding {name}"),
            Some(ns) => format!("kubectl delete rolebinding {name} -n {ns}"),
        };
        progress.warn(&format!(
            "{} was not made by kubectl onboard and still names {user}; remove it ({delete}) or edit its subjects",
            rbac::describe_binding(namespace.as_deref(), &name)
        ));
    }
    Ok(deleted)
}

/// Removes the certificate and key files of the removed entries; returns those removed.
fn remove_credential_files(forgotten: &[Forgotten], progress: &mut Progress) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for path in credential_files(forgotten) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => progress.warn(&format!(
                "cannot remove {}: {}; delete it yourself",
                path.display(),
                file::io_reason(&e)
            )),
        }
    }
    removed
}

impl Offboarded {
    /// `looked_in`: the kubeconfig files searched, with --kubeconfig-entries.
    fn text(&self, user: &str, looked_in: Option<&str>, now: SystemTime) -> String {
        let mut out = String::new();
        for what in &self.bindings_deleted {
            out += &format!("Deleted {what}\n");
        }
        for f in &self.entries_removed {
            out += &format!("{}\n", removed_line(user, f));
            if let Some(context) = &f.unset_current_context {
                out += &format!(
                    "current-context \"{context}\" is now unset in {}; choose another: kubectl config use-context NAME\n",
                    f.path.display()
                );
            }
        }
        for path in &self.files_removed {
            out += &format!("Removed {}\n", path.display());
        }
        let unbound = !self.bindings_deleted.is_empty();
        if !unbound && self.entries_removed.is_empty() {
            let entries = looked_in
                .map(|files| format!(" and no user or context in {files}"))
                .unwrap_or_default();
            out += &format!(
                "Nothing to remove for {user}: no role bindings made by kubectl onboard{entries}.\n"
            );
            if self.certificates.is_empty() {
                return out;
            }
        }
        for r in &self.recorded {
            out += &format!(
                "Certificate {} of {user} ({}) is valid until {}{}\n",
                credential_id(&r.fingerprint),
                match r.groups.is_empty() {
                    true => "no groups".to_string(),
                    false => format!("groups {}", r.groups.join(", ")),
                },
                r.not_after,
                match self.revoked {
                    true => ": revoked, its writes are refused",
                    false => "",
                }
            );
        }
        if !self.still_granted.is_empty() {
            out += &format!(
                "Still granted to {user}'s certificates (reads too, revoked or not), until they expire:\n"
            );
            for grant in &self.still_granted {
                out += &format!("  {grant}\n");
            }
        }
        out + &revocation_note(user, &self.certificates, unbound, now) + "\n"
    }

    fn to_value(&self, user: &str, now: SystemTime) -> Value {
        let valid_until = self
            .certificates
            .iter()
            .filter(|k| k.not_after > now)
            .map(|k| k.not_after)
            .max();
        let entries: Vec<Value> = self
            .entries_removed
            .iter()
            .map(|f| {
                json!({
                    "kubeconfig": f.path.display().to_string(),
                    "user": f.user.is_some(),
                    "contexts": f.contexts,
                    "unsetCurrentContext": f.unset_current_context,
                })
            })
            .collect();
        let files: Vec<String> = self
            .files_removed
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        json!({
            "user": user,
            "bindingsDeleted": self.bindings_deleted,
            "kubeconfigEntriesRemoved": entries,
            "filesRemoved": files,
            "certificateValidUntil": valid_until.map(rfc3339),
            "certificates": self.recorded.iter().map(|r| json!({
                "credentialId": credential_id(&r.fingerprint),
                "groups": r.groups,
                "notAfter": r.not_after,
            })).collect::<Vec<_>>(),
            "revoked": self.revoked,
            "stillGrantedBy": self.still_granted,
        })
    }
}

/// A certificate of the user's that we could read, and where it was.
#[derive(Clone, Debug, PartialEq)]
struct Known {
    groups: Vec<String>,
    not_after: SystemTime,
}

/// The user's certificate in the kubeconfig (the entry kubectl uses), if its CN is the user.
fn kubeconfig_certificate(loaded: &Loaded, user: &str) -> Option<Known> {
    let row = crate::kubeconfig::certificates::held(&loaded.merged)
        .into_iter()
        .find(|r| r.user == user)?;
    let cert = row.certificate.ok()?;
    (cert.common_name == user).then_some(Known {
        groups: cert.groups,
        not_after: cert.not_after,
    })
}

struct Requests {
    /// Pending requests whose PKCS#10 asks for CN=user.
    pending: Vec<String>,
    /// Certificates issued for CN=user that are still in a request object.
    issued: Vec<Known>,
}

async fn requests_for(conn: &Connection, user: &str) -> Result<Requests> {
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let list = api
        .list(&ListParams::default().fields(&format!("spec.signerName={SIGNER}")))
        .await
        .map_err(|e| conn.api_error("listing CertificateSigningRequests", e))?;
    let mut found = Requests {
        pending: Vec::new(),
        issued: Vec::new(),
    };
    for csr in &list.items {
        let r = Reviewed::of(csr);
        let for_user = r
            .asked
            .as_ref()
            .is_ok_and(|a| a.common_name() == Some(user));
        if !for_user {
            continue;
        }
        match &r.state {
            State::Pending => found.pending.push(r.name),
            State::Issued(pem) => {
                let leaf = crate::pki::pem::certificates(pem)
                    .ok()
                    .and_then(|c| c.into_iter().next());
                if let Some(info) = leaf.and_then(|c| verify::inspect(&c).ok())
                    && info.common_name.as_deref() == Some(user)
                {
                    found.issued.push(Known {
                        groups: info.organizations,
                        not_after: info.not_after,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// `Removed user "jane" and context "jane@local" from /home/a/.kube/config.`
fn removed_line(user: &str, f: &Forgotten) -> String {
    let mut what = Vec::new();
    if f.user.is_some() {
        what.push(format!("user \"{user}\""));
    }
    match f.contexts.as_slice() {
        [] => {}
        [one] => what.push(format!("context \"{one}\"")),
        many => what.push(format!(
            "contexts {}",
            many.iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    if what.is_empty() {
        return format!("Updated {}.", f.path.display());
    }
    format!("Removed {} from {}.", what.join(" and "), f.path.display())
}

/// The certificate and key files `--embed=false` wrote for the removed user: only those in
/// ~/.kube/onboard/, which are ours.
fn credential_files(forgotten: &[Forgotten]) -> Vec<PathBuf> {
    let Some(home) = dirs::home_dir() else {
        return Vec::new();
    };
    let ours = home.join(".kube").join("onboard");
    let mut files = Vec::new();
    for f in forgotten {
        let Some(body) = &f.user else { continue };
        for field in [Field::ClientCertificate, Field::ClientKey] {
            let Some(path) = body.get(field.path_key()).and_then(Value::as_str) else {
                continue;
            };
            let path = credential::resolve(&f.path, path);
            if path.parent() == Some(ours.as_path()) && !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// What stays true after offboarding, with the date when we know it. `unbound`: whether we
/// removed bindings just now.
fn revocation_note(user: &str, known: &[Known], unbound: bool, now: SystemTime) -> String {
    let rbac = if unbound {
        "Access comes from RBAC, and the bindings kubectl onboard made are removed."
    } else {
        "Access comes from RBAC: remove whatever still binds them."
    };
    let sooner = "To cut it off sooner, rotate the cluster CA.";
    let latest = known
        .iter()
        .filter(|k| k.not_after > now)
        .max_by_key(|k| k.not_after);
    let Some(cert) = latest else {
        let when = if known.is_empty() {
            "until it expires (there is no copy of it here to tell when)"
        } else {
            "until it expires (the copies here have expired already, but another may have been issued)"
        };
        return format!(
            "Kubernetes cannot revoke a client certificate: any certificate issued to {user} stays valid {when}. {rbac} {sooner}"
        );
    };
    let days = cert
        .not_after
        .duration_since(now)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let groups = if cert.groups.is_empty() {
        String::new()
    } else {
        format!(
            " It still puts its holder in group(s) {}: whatever those groups are bound to, it keeps.",
            cert.groups.join(", ")
        )
    };
    format!(
        "Kubernetes cannot revoke a client certificate: {user}'s certificate stays valid until {} ({days} days). {rbac}{groups} {sooner}",
        rfc3339(cert.not_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_note_names_the_date_and_the_groups_when_known() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let day = Duration::from_secs(86_400);
        let known = [
            Known {
                groups: vec![],
                not_after: now + 10 * day,
            },
            Known {
                groups: vec!["dev".into()],
                not_after: now + 30 * day + Duration::from_secs(60),
            },
        ];
        let note = revocation_note("jane", &known, true, now);
        assert!(
            note.contains("jane's certificate stays valid until 2026-12-18T11:07:40Z (30 days)"),
            "{note}"
        );
        assert!(note.contains("group(s) dev"), "{note}");
        let note = revocation_note("jane", &[], false, now);
        assert!(
            note.contains("cannot revoke") && !note.contains("until 2"),
            "{note}"
        );
        let expired = [Known {
            groups: vec![],
            not_after: now - day,
        }];
        assert!(revocation_note("jane", &expired, true, now).contains("expired already"));
    }

    #[test]
    fn removal_lines_name_what_went() {
        let f = Forgotten {
            path: "/k/config".into(),
            user: Some(Value::Null),
            contexts: vec!["jane@local".into(), "dev".into()],
            unset_current_context: None,
        };
        assert_eq!(
            removed_line("jane", &f),
            "Removed user \"jane\" and contexts \"jane@local\", \"dev\" from /k/config."
        );
    }
}
