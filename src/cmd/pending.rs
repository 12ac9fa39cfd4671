//! `kubectl onboard pending`: the review queue. Every request to the kube-apiserver-client
//! signer that waits for a decision, with what its PKCS#10 really asks for (CN, groups, key)
//! rather than what its name or labels suggest — what `kubectl get csr` leaves to
//! `openssl req -text`.

use argh::{ArgsInfo, FromArgs};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::time::SystemTime;

use crate::cluster::access;
use crate::cluster::session;
use crate::csr::queue::{age, flood_warning, floods, pending, request_value, requested};
use crate::csr::review::Reviewed;
use crate::csr::submit::SIGNER;
use crate::error::Result;
use crate::flags::cli::flags;
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

/// How many of a flood's requests the table still shows.
const FLOOD_SHOWN: usize = 3;
