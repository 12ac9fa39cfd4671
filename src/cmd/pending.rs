//! `kubectl onboard pending`: the review queue. Every request to the kube-apiserver-client
//! signer that waits for a decision, with what its PKCS#10 really asks for (CN, groups, key)
//! rather than what its name or labels suggest — what `kubectl get csr` leaves to
//! `openssl req -text`.

use argh::{ArgsInfo, FromArgs};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use std::time::SystemTime;

use crate::cluster::Connection;
use crate::cluster::access;
use crate::cluster::session;
use crate::csr::review::Reviewed;
use crate::csr::submit::SIGNER;
use crate::error::Result;
use crate::flags::cli::flags;
use crate::flags::plan::format_duration;
use crate::invitation::{
    self,
    approval::{self, Verdict},
};
use crate::ui::report::Output;

flags! {
    /// List the certificate requests for people (kube-apiserver-client signer) that wait for a decision.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "What waits for approval?\n  $ {command_name}\n  $ kubectl onboard approve jane-4kx9q2",
        note = "CN, groups and key are read from each request's own PKCS#10. ONBOARD: made by kubectl onboard (its label; anyone may set it). INVITE: for a request made with an invitation (kubectl onboard invite), whether it asks for exactly what was invited (matches) or not (differs: kubectl onboard approve refuses it)."
    )]
    pub struct Args {
    }
    with connection, limit, output
}

pub async fn run(args: Args) -> Result<()> {
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
    access::check_lister(&conn).await?;
    let mut pending = pending(&conn).await?;
    pending.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));

    let mut verdicts = Vec::with_capacity(pending.len());
    for r in &pending {
        verdicts.push(approval::verdict_or_unknown(&conn, r, SystemTime::now()).await);
    }
    let now = Timestamp::now();
    let text = match pending.is_empty() {
        true => String::new(),
        false => table(&pending, &verdicts, now),
    };
    output.print(|| to_value(&pending, &verdicts, now), &text)?;
    if pending.is_empty() && output.format.is_none() {
        progress.step(&format!(
            "No CertificateSigningRequests for {SIGNER} are waiting for a decision."
        ));
    }
    let floods = floods(&pending);
    for (requester, count) in &floods {
        progress.warn(&flood_warning(requester, *count));
    }
    for (r, verdict) in pending.iter().zip(&verdicts) {
        if floods.contains_key(r.requester.as_deref().unwrap_or_default()) {
            continue; // said once, above
        }
        match verdict {
            Verdict::Differs { name, why } => progress.warn(&format!(
                "{}: kubectl onboard approve will refuse it: it does not match invitation {name}: {}",
                r.name,
                why.join("; ")
            )),
            Verdict::Unknown { name, why } => progress.warn(&format!(
                "{}: made with invitation {name}, which cannot be read: {why}",
                r.name
            )),
            Verdict::NotInvited | Verdict::Matches { .. } => {}
        }
        let why = r.refusals();
        if !why.is_empty() {
            progress.warn(&format!(
                "{}: kubectl onboard approve will refuse it: {}",
                r.name,
                why.join("; ")
            ));
        }
    }
    Ok(())
}

/// The requests for our signer that wait for a decision.
pub async fn pending(conn: &Connection) -> Result<Vec<Reviewed>> {
    let api: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let ours = ListParams::default().fields(&format!("spec.signerName={SIGNER}"));
    let list = api
        .list(&ours)
        .await
        .map_err(|e| conn.api_error("listing CertificateSigningRequests", e))?;
    Ok(list
        .items
        .iter()
        .map(Reviewed::of)
        .filter(|r| r.signer == SIGNER && r.is_pending())
        .collect())
}

fn requested(r: &Reviewed) -> String {
    match r.expiration_seconds {
        Some(s) if s > 0 => format_duration(std::time::Duration::from_secs(s as u64)),
        _ => "default".into(),
    }
}

fn age(r: &Reviewed, now: Timestamp) -> String {
    match r.created {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn to_value(pending: &[Reviewed], verdicts: &[Verdict], now: Timestamp) -> Value {
    let items: Vec<Value> = pending
        .iter()
        .zip(verdicts)
        .map(|(r, verdict)| {
            let mut v = request_value(r, now);
            v["invitation"] = match verdict {
                Verdict::NotInvited => Value::Null,
                Verdict::Matches { invitation, .. } => {
                    json!({"name": invitation.name, "matches": true, "differences": []})
                }
                Verdict::Differs { name, why } => {
                    json!({"name": name, "matches": false, "differences": why})
                }
                Verdict::Unknown { name, why } => {
                    json!({"name": name, "matches": null, "error": why})
                }
            };
            v
        })
        .collect();
    json!({ "pending": items })
}

/// `invite jane-x7k2q9` for a request made with an invitation, else the user who made it.
fn requester(r: &Reviewed) -> String {
    let Some(who) = &r.requester else {
        return "<unknown>".into();
    };
    match invitation::of_requester(who) {
        Some(name) => format!("invite {name}"),
        None => who.clone(),
    }
}

/// One request as `-o json|yaml` shows it (`pending`, `approve`, `deny`).
pub fn request_value(r: &Reviewed, now: Timestamp) -> Value {
    let mut v = json!({
        "name": r.name,
        "requester": r.requester,
    });
    match &r.asked {
        Ok(a) => {
            v["commonName"] = json!(a.common_name());
            v["groups"] = json!(a.groups);
            v["key"] = json!(a.key);
        }
        Err(why) => v["error"] = json!(why),
    }
    v["usages"] = json!(r.usages);
    v["expirationSeconds"] = json!(r.expiration_seconds);
    v["requestedDuration"] = json!(requested(r));
    v["created"] = json!(
        r.created
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    );
    v["age"] = json!(age(r, now));
    v["managedByOnboard"] = json!(r.onboard);
    v["refusals"] = json!(r.refusals());
    v
}

fn table(pending: &[Reviewed], verdicts: &[Verdict], now: Timestamp) -> String {
    let mut lines: Vec<Vec<String>> = vec![
        [
            "NAME",
            "REQUESTER",
            "CN",
            "GROUPS",
            "KEY",
            "DURATION",
            "AGE",
            "ONBOARD",
            "INVITE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let floods = floods(pending);
    let mut shown: std::collections::BTreeMap<String, usize> = Default::default();
    for (r, verdict) in pending.iter().zip(verdicts) {
        let who = r.requester.clone().unwrap_or_default();
        if let Some(count) = floods.get(&who) {
            let seen = shown.entry(who).or_default();
            *seen += 1;
            if *seen > FLOOD_SHOWN {
                if *seen == FLOOD_SHOWN + 1 {
                    lines.push(vec![
                        format!("… {} more", count - FLOOD_SHOWN),
                        requester(r),
                    ]);
                }
                continue;
            }
        }
        let (cn, groups, key) = match &r.asked {
            Ok(a) => (
                match a.common_names.as_slice() {
                    [] => "<none>".to_string(),
                    many => many.join("+"),
                },
                if a.groups.is_empty() {
                    "<none>".to_string()
                } else {
                    a.groups.join(",")
                },
                a.key.clone(),
            ),
            Err(_) => ("<unreadable>".into(), "-".into(), "-".into()),
        };
        lines.push(vec![
            r.name.clone(),
            requester(r),
            cn,
            groups,
            key,
            requested(r),
            age(r, now),
            if r.onboard { "yes" } else { "no" }.into(),
            verdict.column(),
        ]);
    }
    crate::ui::report::table(&lines)
}

/// More requests than this waiting from one requester is a flood: summarised, not listed.
pub const FLOOD: usize = 10;
/// How many of a flood's requests the table still shows.
const FLOOD_SHOWN: usize = 3;

/// The requesters with more than [`FLOOD`] requests waiting, and how many each has.
pub fn floods(pending: &[Reviewed]) -> std::collections::BTreeMap<String, usize> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for r in pending {
        *counts
            .entry(r.requester.clone().unwrap_or_default())
            .or_default() += 1;
    }
    counts.retain(|_, n| *n > FLOOD);
    counts
}

/// What to say of a flood of `count` requests from `requester`.
pub fn flood_warning(requester: &str, count: usize) -> String {
    match invitation::of_requester(requester) {
        Some(name) => format!(
            "invitation {name} has {count} requests waiting, more than anyone needs: its token is being misused? Withdraw it (kubectl onboard invitations --revoke {name}), which denies them all"
        ),
        None => format!(
            "{requester} has {count} requests waiting, more than anyone needs: look into it, and deny them (kubectl onboard deny NAME…)"
        ),
    }
}

/// kubectl's AGE: apimachinery's `duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86_400, "2d"),
            (2 * 86_400 + 3600, "2d1h"),
            (8 * 86_400, "8d"),
            (729 * 86_400, "729d"),
            (730 * 86_400, "2y"),
            (731 * 86_400, "2y1d"),
            (9 * 365 * 86_400, "9y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(seconds), want, "{seconds}");
        }
    }
}
