//! The review queue: the requests for our signer that wait for a decision, read as a reviewer
//! reads them, and what `pending`, `approve`, `deny` and completion share about them (names
//! given on the command line, floods, the JSON of one request).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::review::Reviewed;
use super::submit::SIGNER;
use crate::cluster::Connection;
use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::invitation;

/// More requests than this waiting from one requester is a flood: summarised, not listed.
pub const FLOOD: usize = 10;

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

pub fn requested(r: &Reviewed) -> String {
    match r.expiration_seconds {
        Some(s) if s > 0 => format_duration(std::time::Duration::from_secs(s as u64)),
        _ => "default".into(),
    }
}

pub fn age(r: &Reviewed, now: Timestamp) -> String {
    match r.created {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".into(),
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

/// The names given, each once; at least one.
pub fn names(given: &[String], verb: &str) -> Result<Vec<String>> {
    if given.is_empty() {
        return Err(Error::usage(format!(
            "name the CertificateSigningRequest to {verb}: kubectl onboard {verb} NAME (kubectl onboard pending lists them)"
        )));
    }
    let mut names: Vec<String> = Vec::with_capacity(given.len());
    for name in given {
        if name.contains('/') {
            return Err(Error::usage(format!(
                "'{}' is not a CertificateSigningRequest name; kubectl onboard pending lists them",
                name.escape_default()
            )));
        }
        crate::flags::plan::validate_name("CertificateSigningRequest", name)?;
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

/// Each named request, read and reviewed; one not found is a problem in `problems`.
pub async fn review_all(
    conn: &Connection,
    names: &[String],
    problems: &mut Vec<String>,
) -> Result<Vec<Reviewed>> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        match fetch(conn, name).await? {
            Some(csr) => found.push(Reviewed::of(&csr)),
            None => problems.push(format!(
                "CertificateSigningRequest {name} not found (kubectl onboard pending lists the waiting ones)"
            )),
        }
    }
    Ok(found)
}

pub async fn fetch(conn: &Connection, name: &str) -> Result<Option<CertificateSigningRequest>> {
    Api::<CertificateSigningRequest>::all(conn.client.clone())
        .get_opt(name)
        .await
        .map_err(|e| conn.api_error(&format!("reading CertificateSigningRequest {name}"), e))
}

pub fn because(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.is_empty()) {
        (true, true) => "no reason given".into(),
        (false, true) => reason.into(),
        (true, false) => message.into(),
        (false, false) => format!("{reason}: {message}"),
    }
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

    use crate::error::Kind;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_required_deduplicated_and_plain() {
        assert_eq!(
            names(&strings(&["a", "b", "a"]), "approve").unwrap(),
            ["a", "b"]
        );
        let err = names(&[], "deny").unwrap_err();
        assert_eq!(err.kind, Kind::Usage);
        assert!(
            err.to_string().contains("kubectl onboard deny NAME"),
            "{err}"
        );
        assert_eq!(
            names(&strings(&["csr/x"]), "approve").unwrap_err().kind,
            Kind::Usage
        );
    }

    #[test]
    fn reasons_read_naturally() {
        assert_eq!(because("", ""), "no reason given");
        assert_eq!(because("R", "m"), "R: m");
        assert_eq!(because("", "m"), "m");
    }
}
