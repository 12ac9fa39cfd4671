//! Revocation of a certificate's writes. Kubernetes cannot revoke a client certificate
//! (kubernetes/kubernetes#18982), but since 1.31 the API server gives a certificate's user the
//! credential id `X509SHA256=<hex>` (in `userInfo.extra`), and a ValidatingAdmissionPolicy can
//! refuse every request carrying one. One policy for all revocations, [`POLICY`], reads its list
//! from the ConfigMap [`LIST`] in the inventory's namespace: fingerprint (the credential id
//! without `X509SHA256=`, which a ConfigMap key cannot hold) → the message the holder sees. Reads never reach admission: they stay as RBAC allows, and `revoke` says so.
//!
//! Lock-out is guarded against: the policy allows when its list is missing
//! (`parameterNotFoundAction: Allow`) and when an expression cannot be evaluated
//! (`failurePolicy: Ignore`), and it matches only requests that carry a credential id.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::cluster::Connection;
use crate::error::{Error, Result};
use crate::records::inventory::NAMESPACE;

pub mod enforcement;
pub mod targets;

/// The policy and its binding.
pub const POLICY: &str = "kubectl-onboard-revocations";
/// The revocation list: a ConfigMap in [`NAMESPACE`].
pub const LIST: &str = "revocations";
const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";
const FIELD_MANAGER: &str = "kubectl-onboard";
const PREFIX: &str = "X509SHA256=";

/// `X509SHA256=<hex>`: how the API server names a certificate.
pub fn credential_id(fingerprint: &str) -> String {
    format!("{PREFIX}{fingerprint}")
}

/// Whether the cluster can revoke: credential ids (Kubernetes ≥ 1.31) and ValidatingAdmissionPolicy
/// (admissionregistration.k8s.io/v1). `Err` says why not, in a line.
pub async fn supported(conn: &Connection) -> std::result::Result<(), String> {
    let version = conn
        .client
        .apiserver_version()
        .await
        .map_err(|_| "the API server does not say its version".to_string())?;
    let minor: u32 = version
        .minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    if version.major != "1" || minor < 31 {
        return Err(format!(
            "Kubernetes {}.{} gives a certificate's user no credential id (that came in 1.31)",
            version.major, version.minor
        ));
    }
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(conn.client.clone());
    match policies.list(&Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(
            "the cluster serves no ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1)"
                .into(),
        ),
        Err(kube::Error::Api(s)) if s.code == 403 => {
            Err("you may not list ValidatingAdmissionPolicies".into())
        }
        Err(_) => Err("the cluster did not answer about ValidatingAdmissionPolicies".into()),
    }
}

/// The fingerprint of the certificate the caller is using, as the API server names it (its
/// credential id); `None` when the caller uses no certificate, or the server does not say.
pub async fn own_fingerprint(conn: &Connection) -> Option<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let review = Api::<SelfSubjectReview>::all(conn.client.clone())
        .create(&Default::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    let extra = review.status?.user_info?.extra?;
    extra
        .get(CREDENTIAL_ID)?
        .iter()
        .find_map(|id| id.strip_prefix(PREFIX))
        .map(str::to_lowercase)
}

/// The revocation list: fingerprint → message.
pub async fn list(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), NAMESPACE);
    match maps.get_opt(LIST).await {
        Ok(found) => Ok(found.and_then(|m| m.data).unwrap_or_default()),
        Err(e) => Err(conn.api_error("reading the revocation list", e)),
    }
}

/// Changes the revocation list, `add`ing and `remove`ing entries by fingerprint, and puts the
/// policy and its binding in place (server-side apply: made when missing). Entries are added and
/// removed by a merge patch, key by key, so that two administrators revoking at once both land.
pub async fn update(
    conn: &Connection,
    add: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<()> {
    policy(conn).await?;
    let mut data = serde_json::Map::new();
    for (fingerprint, message) in add {
        data.insert(fingerprint.clone(), json!(message));
    }
    for fingerprint in remove.iter().filter(|f| !add.contains_key(*f)) {
        data.insert(fingerprint.clone(), serde_json::Value::Null);
    }
    let maps: Api<ConfigMap> = Api::namespaced(conn.client.clone(), NAMESPACE);
    let doing = "writing the revocation list";
    let patch = json!({ "data": data });
    for _ in 0..3 {
        match maps
            .patch(LIST, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(conn.api_error(doing, e)),
        }
        // No list yet: made, with what is added (someone else may make it meanwhile: 409).
        crate::records::inventory::ensure_namespace(conn)
            .await
            .map_err(|e| conn.api_error(doing, e))?;
        let list = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(LIST.to_string()),
                namespace: Some(NAMESPACE.to_string()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "kubectl-onboard".to_string(),
                )])),
                ..Default::default()
            },
            data: Some(add.clone()),
            ..Default::default()
        };
        match maps.create(&Default::default(), &list).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(conn.api_error(doing, e)),
        }
    }
    Err(Error::failed(
        "the revocation list kept changing under us; run again",
    ))
}

/// The policy and its binding, as they must be (server-side apply, which also repairs them).
async fn policy(conn: &Connection) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Api::<ValidatingAdmissionPolicy>::all(conn.client.clone())
        .patch(POLICY, &params, &Patch::Apply(&desired_policy()))
        .await
        .map_err(|e| conn.api_error("writing the revocation policy", e))?;
    Api::<ValidatingAdmissionPolicyBinding>::all(conn.client.clone())
        .patch(POLICY, &params, &Patch::Apply(&desired_binding()))
        .await
        .map_err(|e| conn.api_error("binding the revocation policy", e))?;
    Ok(())
}

/// The policy as `revoke` makes it.
fn desired_policy() -> serde_json::Value {
    let ids = format!(
        "request.userInfo.extra['{CREDENTIAL_ID}'].filter(c, c.startsWith('{PREFIX}')).map(c, c.substring({}))",
        PREFIX.len()
    );
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY, "labels": {"app.kubernetes.io/managed-by": "kubectl-onboard"}},
        "spec": {
            "failurePolicy": "Ignore",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"],
                    "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"],
                }],
                // The revocation machinery itself is never blocked: whoever may manage it
                // can always undo a revocation, even one made with their own certificate.
                "excludeResourceRules": [
                    {
                        "apiGroups": [""], "apiVersions": ["*"], "resources": ["configmaps"],
                        "resourceNames": [LIST], "operations": ["*"],
                    },
                    {
                        "apiGroups": ["admissionregistration.k8s.io"], "apiVersions": ["*"],
                        "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
                        "resourceNames": [POLICY], "operations": ["*"],
                    },
                ],
            },
            // Only requests made with a certificate's credential id are looked at.
            "matchConditions": [{
                "name": "has-credential-id",
                "expression": format!("'{CREDENTIAL_ID}' in request.userInfo.extra"),
            }],
            "validations": [{
                "expression": format!("!has(params.data) || !{ids}.exists(c, c in params.data)"),
                "messageExpression": format!(
                    "'this certificate was revoked with kubectl onboard: ' + {ids}.filter(c, c in params.data).map(c, params.data[c])[0]"
                ),
                "message": "this certificate was revoked with kubectl onboard",
                "reason": "Forbidden",
            }],
        },
    })
}

/// The binding as `revoke` makes it.
fn desired_binding() -> serde_json::Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY, "labels": {"app.kubernetes.io/managed-by": "kubectl-onboard"}},
        "spec": {
            "policyName": POLICY,
            "validationActions": ["Deny"],
            "paramRef": {"name": LIST, "namespace": NAMESPACE, "parameterNotFoundAction": "Allow"},
        },
    })
}

/// The message a revoked certificate's holder sees, with the reason given (if any).
pub fn message(user: &str, not_after: &str, reason: Option<&str>) -> String {
    let mut text = format!("certificate of {user} (valid until {not_after}) revoked");
    if let Some(reason) = reason.filter(|r| !r.trim().is_empty()) {
        text += &format!(": {}", reason.trim());
    }
    text
}

/// Checks a fingerprint given on the command line: 64 hex digits, with or without colons or the
/// `X509SHA256=` prefix; lowercase hex comes back.
pub fn fingerprint_arg(given: &str) -> Result<String> {
    let hex: String = given
        .trim()
        .trim_start_matches(PREFIX)
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(hex);
    }
    Err(Error::usage(format!(
        "--fingerprint '{}' is not a SHA-256 fingerprint (64 hex digits, as kubectl onboard certificates -o json or openssl x509 -fingerprint -sha256 print it)",
        given.escape_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_as_openssl_and_the_inventory_print_them() {
        let hex = "ab".repeat(32);
        let colons = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        for given in [hex.clone(), colons, credential_id(&hex)] {
            assert_eq!(fingerprint_arg(&given).unwrap(), hex, "{given}");
        }
        assert!(fingerprint_arg("abc").is_err());
        assert!(fingerprint_arg(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_message_names_the_user_the_date_and_the_reason() {
        let m = message("jane", "2027-01-01T00:00:00Z", Some(" left the team "));
        assert_eq!(
            m,
            "certificate of jane (valid until 2027-01-01T00:00:00Z) revoked: left the team"
        );
        assert!(!message("jane", "x", Some("  ")).ends_with(": "));
    }
}
