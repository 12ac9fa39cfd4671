//! Whether the API server enforces what the revocation list says. The list is only words: the
//! policy or its binding may have been deleted or changed (by anyone with rights on admission
//! objects, a revoked user among them), and an API server whose binding was deleted keeps
//! enforcing the list as it was then, even once the binding is back, until it restarts
//! (kubernetes/kubernetes#130887: the parameters' informer is torn down for good). Two checks:
//! - [`problems`] reads the policy and binding and compares them with what `revoke` makes;
//! - [`probe`] asks the API server itself: a server-side dry run of a ConfigMap create,
//!   impersonating a certificate by its credential id, is refused by the policy exactly when
//!   that certificate is revoked (checked on v1.36.3, FACTS). Impersonating needs the right to
//!   impersonate users, groups and that extra, which cluster administrators have.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use super::{POLICY, credential_id, desired_binding, desired_policy};
use crate::cluster::Connection;
use crate::error::{Error, Result};
use crate::records::inventory::NAMESPACE;
use crate::ui::progress::Progress;

/// How long a change may take to reach the API server's admission (within seconds, normally).
pub const SETTLE: Duration = Duration::from_secs(15);

/// What the API server does with a write made with a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Refused by the revocation policy: revoked.
    Refused,
    /// Accepted: not revoked, whatever the list says.
    Allowed,
    /// Cannot tell, and why.
    Unknown(String),
}

/// A dry-run write as the certificate `fingerprint` (in a group that may write, so that RBAC,
/// which runs before admission, lets it through to the policy). Nothing is created.
pub async fn probe(conn: &Connection, fingerprint: &str) -> Probe {
    let name = format!("revocation-probe-{}", crate::csr::submit::random_suffix());
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
    });
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let url = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    let mut request = match kube::core::Request::new(url).create(&params, body.to_string().into()) {
        Ok(request) => request,
        Err(e) => return Probe::Unknown(e.to_string()),
    };
    let id = credential_id(fingerprint);
    let headers = request.headers_mut();
    for (name, value) in [
        ("impersonate-user", "kubectl-onboard:revocation-probe"),
        ("impersonate-group", "system:masters"),
        (
            "impersonate-extra-authentication.kubernetes.io%2fcredential-id",
            id.as_str(),
        ),
    ] {
        match value.parse() {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => return Probe::Unknown(format!("'{value}' cannot be sent as a header")),
        }
    }
    match conn.client.request_text(request).await {
        Ok(_) => Probe::Allowed,
        Err(kube::Error::Api(s)) if s.message.contains(POLICY) => Probe::Refused,
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("impersonate") => {
            Probe::Unknown("you may not impersonate, which the check needs".into())
        }
        Err(kube::Error::Api(s)) => {
            Probe::Unknown(format!("the API server answered {} {}", s.code, s.reason))
        }
        Err(_) => Probe::Unknown("the API server did not answer".into()),
    }
}

/// Waits, at most [`SETTLE`], until the API server refuses the writes of every certificate in
/// `fingerprints` (`revoked`) or accepts them. `Ok`: those it still does not treat so; `Err`:
/// it cannot be told, and why.
pub async fn settle(
    conn: &Connection,
    fingerprints: &[String],
    revoked: bool,
) -> std::result::Result<Vec<String>, String> {
    let wanted = if revoked {
        Probe::Refused
    } else {
        Probe::Allowed
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut left: Vec<String> = fingerprints.to_vec();
    loop {
        let mut still = Vec::new();
        for fingerprint in left {
            match probe(conn, &fingerprint).await {
                Probe::Unknown(why) => return Err(why),
                seen if seen == wanted => {}
                _ => still.push(fingerprint),
            }
        }
        left = still;
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What to do when the API server does not do what the list says.
pub const ADVICE: &str = "run kubectl onboard revoke --repair, which puts the policy and binding back and checks again; if the API server still disagrees, it is enforcing a frozen copy of the list (an API server stops reading a policy's parameters once its binding was deleted, until it restarts: kubernetes/kubernetes#130887): restart kube-apiserver, then check with kubectl onboard revoke --list";

/// Says, as a warning, when revocations are listed but the policy or binding that enforces them
/// is not as `revoke` makes it (a command that shows revocations must not show them as working
/// when they are not). Cannot tell: said with -v.
pub async fn warn_if_broken(conn: &Connection, listed: usize, progress: &mut Progress) {
    if listed == 0 {
        return;
    }
    match problems(conn).await {
        Ok(found) if found.is_empty() => {}
        Ok(found) => progress.warn(&format!(
            "{listed} revoked certificate(s) may not be refused: {}; run kubectl onboard revoke --repair",
            found.join("; ")
        )),
        Err(why) => progress.detail(&format!("revocation policy not checked: {why}")),
    }
}

/// How the policy and its binding differ from what `revoke` makes, each in a phrase; empty
/// when they are as made. `Err` says why they could not be read.
pub async fn problems(conn: &Connection) -> std::result::Result<Vec<String>, String> {
    let read = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 403 => {
            "you may not read ValidatingAdmissionPolicies and their bindings".to_string()
        }
        kube::Error::Api(s) => format!("the API server answered {} {}", s.code, s.reason),
        _ => "the API server did not answer".to_string(),
    };
    let policy = Api::<ValidatingAdmissionPolicy>::all(conn.client.clone())
        .get_opt(POLICY)
        .await
        .map_err(read)?;
    let binding = Api::<ValidatingAdmissionPolicyBinding>::all(conn.client.clone())
        .get_opt(POLICY)
        .await
        .map_err(read)?;
    let as_value = |o: Option<Value>| o.map(|v| v["spec"].clone());
    Ok(compare(
        as_value(policy.and_then(|p| serde_json::to_value(p).ok())),
        as_value(binding.and_then(|b| serde_json::to_value(b).ok())),
    ))
}

/// The differences between the `policy` and `binding` specs found and the ones `revoke` makes.
fn compare(policy: Option<Value>, binding: Option<Value>) -> Vec<String> {
    let mut found = Vec::new();
    for (what, kind, actual, wanted) in [
        (
            "policy",
            "ValidatingAdmissionPolicy",
            policy,
            desired_policy(),
        ),
        (
            "binding",
            "ValidatingAdmissionPolicyBinding",
            binding,
            desired_binding(),
        ),
    ] {
        match actual {
            None => found.push(format!(
                "the revocation {what} ({kind} {POLICY}) is missing"
            )),
            Some(actual) if !holds(&actual, &wanted["spec"]) => found.push(format!(
                "the revocation {what} ({kind} {POLICY}) was changed"
            )),
            Some(_) => {}
        }
    }
    found
}

/// Whether `actual` says everything `wanted` says (the API server adds defaults: more is fine).
fn holds(actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted) {
        (Value::Object(a), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|found| holds(found, v))),
        (Value::Array(a), Value::Array(w)) => {
            a.len() == w.len() && a.iter().zip(w).all(|(found, v)| holds(found, v))
        }
        _ => actual == wanted,
    }
}

/// Checks, for at most [`SETTLE`], that the API server refuses (`revoked`) or
/// accepts the writes of `fingerprints`, as the list now says. A mismatch is an error that says
/// what to do; when it cannot be checked, that is said.
pub async fn check_enforced(
    conn: &Connection,
    fingerprints: &[String],
    revoked: bool,
    progress: &mut Progress,
) -> Result<()> {
    if fingerprints.is_empty() {
        return Ok(());
    }
    match settle(conn, fingerprints, revoked).await {
        Ok(left) if left.is_empty() => {
            progress.detail("checked: the API server does what the revocation list says");
            Ok(())
        }
        Ok(left) => {
            let ids: Vec<String> = left.iter().map(|hex| credential_id(hex)).collect();
            Err(Error::failed(format!(
                "the revocation list was changed, but {} later the API server still {} writes made with {}: {}",
                crate::duration::format_duration(SETTLE),
                if revoked { "accepts" } else { "refuses" },
                ids.join(", "),
                ADVICE
            )))
        }
        Err(why) => {
            progress.step(&format!(
                "Not checked that the API server does what the revocation list says: {why}"
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_revoke_makes_holds_with_the_servers_defaults_and_changes_show() {
        let mut policy = desired_policy()["spec"].clone();
        let binding = desired_binding()["spec"].clone();
        assert!(compare(Some(policy.clone()), Some(binding.clone())).is_empty());
        // Defaults the API server fills in are fine.
        policy["matchConstraints"]["matchPolicy"] = json!("Equivalent");
        policy["matchConstraints"]["resourceRules"][0]["scope"] = json!("*");
        assert!(compare(Some(policy.clone()), Some(binding.clone())).is_empty());
        // A weakened policy, a missing binding.
        policy["validations"][0]["expression"] = json!("true");
        let found = compare(Some(policy), None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("policy") && found[0].contains("changed"));
        assert!(found[1].contains("binding") && found[1].contains("missing"));
        let mut audit_only = binding;
        audit_only["validationActions"] = json!(["Audit"]);
        let found = compare(Some(desired_policy()["spec"].clone()), Some(audit_only));
        assert_eq!(
            found,
            [
                "the revocation binding (ValidatingAdmissionPolicyBinding kubectl-onboard-revocations) was changed"
            ]
        );
    }
}
