//! Before anything is created: ask the cluster (SelfSubjectAccessReview) whether the caller may
//! do what the flow needs, so that a missing permission costs nothing and names the exact RBAC
//! rule an administrator has to grant.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Connection;
use crate::error::{Error, Result};
use crate::rbac::Grant;
use crate::submit::SIGNER;

const GROUP: &str = "certificates.k8s.io";
const CSRS: &str = "certificatesigningrequests";

/// What the caller may do besides creating CSRs; the flow adapts to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    /// May watch its CSR (else: GET with backoff).
    pub watch: bool,
    /// May delete its CSR when done or interrupted (else the cluster cleans up).
    pub delete: bool,
}

/// One permission, as a rule an administrator can paste into a Role.
struct Rule {
    group: &'static str,
    verb: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    name: Option<&'static str>,
    namespace: Option<String>,
}

impl Rule {
    const fn csrs(verb: &'static str) -> Rule {
        Rule {
            group: GROUP,
            verb,
            resource: CSRS,
            subresource: None,
            name: None,
            namespace: None,
        }
    }

    /// Creating the binding a grant needs.
    fn binding(grant: &Grant) -> Rule {
        let (resource, namespace) = match grant {
            Grant::ClusterRole(_) => ("clusterrolebindings", None),
            Grant::Role { namespace, .. } => ("rolebindings", Some(namespace.clone())),
        };
        Rule {
            group: "rbac.authorization.k8s.io",
            verb: "create",
            resource,
            subresource: None,
            name: None,
            namespace,
        }
    }

    fn as_yaml(&self) -> String {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        };
        let names = self
            .name
            .map(|n| format!(", resourceNames: [\"{n}\"]"))
            .unwrap_or_default();
        let within = self
            .namespace
            .as_ref()
            .map(|ns| format!(" in namespace {ns}"))
            .unwrap_or_default();
        format!(
            "{{apiGroups: [\"{}\"], resources: [\"{resource}\"], verbs: [\"{}\"]{names}}}{within}",
            self.group, self.verb
        )
    }

    fn review(&self) -> SelfSubjectAccessReview {
        SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(self.group.into()),
                    namespace: self.namespace.clone(),
                    resource: Some(self.resource.into()),
                    subresource: self.subresource.map(Into::into),
                    verb: Some(self.verb.into()),
                    name: self.name.map(Into::into),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

static CREATE: Rule = Rule::csrs("create");
static WATCH: Rule = Rule::csrs("watch");
static DELETE: Rule = Rule::csrs("delete");
static APPROVAL: Rule = Rule {
    group: GROUP,
    verb: "update",
    resource: CSRS,
    subresource: Some("approval"),
    name: None,
    namespace: None,
};
static APPROVE_SIGNER: Rule = Rule {
    group: GROUP,
    verb: "approve",
    resource: "signers",
    subresource: None,
    name: Some(SIGNER),
    namespace: None,
};

pub async fn check(conn: &Connection, approve: bool, grants: &[Grant]) -> Result<Permissions> {
    let bindings: Vec<Rule> = grants.iter().map(Rule::binding).collect();
    let mut required = vec![&CREATE];
    if approve {
        required.extend([&APPROVAL, &APPROVE_SIGNER]);
    }
    required.extend(bindings.iter());
    let optional = [&WATCH, &DELETE];
    let answers = futures::future::join_all(
        required
            .iter()
            .chain(optional.iter())
            .map(|rule| allowed(conn, rule)),
    )
    .await;
    let mut answers = answers.into_iter();
    let mut missing = Vec::new();
    for rule in &required {
        if answers.next().expect("one answer per rule")? == Some(false) {
            missing.push(*rule);
        }
    }
    if let Some(first) = missing.first() {
        let what = match (first.group, first.verb) {
            (GROUP, "create") => "you may not create CertificateSigningRequests",
            (GROUP, _) => {
                "you may not approve requests for the kube-apiserver-client signer (drop --approve to wait for an administrator)"
            }
            _ => {
                "you may not create the role bindings asked for (drop --clusterrole/--role, or bind later)"
            }
        };
        let rules: Vec<String> = missing.iter().map(|r| r.as_yaml()).collect();
        let noun = if rules.len() == 1 { "rule" } else { "rules" };
        return Err(Error::failed(format!(
            "{what}; an administrator must grant the RBAC {noun} {}",
            rules.join(" and ")
        )));
    }
    // Unknown (reviews not allowed) counts as allowed: the real call will tell.
    let watch = answers.next().expect("watch answer")?.unwrap_or(true);
    let delete = answers.next().expect("delete answer")?.unwrap_or(true);
    Ok(Permissions { watch, delete })
}

/// `None` when the cluster would not answer the review itself (a 403 or 404 on it).
async fn allowed(conn: &Connection, rule: &Rule) -> Result<Option<bool>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
    match api.create(&PostParams::default(), &rule.review()).await {
        Ok(review) => Ok(Some(review.status.is_some_and(|s| s.allowed))),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(None),
        Err(e) => Err(conn.api_error("checking your permissions", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_rbac_yaml() {
        assert_eq!(
            CREATE.as_yaml(),
            r#"{apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests"], verbs: ["create"]}"#
        );
        assert_eq!(
            APPROVAL.as_yaml(),
            r#"{apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/approval"], verbs: ["update"]}"#
        );
        assert_eq!(
            APPROVE_SIGNER.as_yaml(),
            r#"{apiGroups: ["certificates.k8s.io"], resources: ["signers"], verbs: ["approve"], resourceNames: ["kubernetes.io/kube-apiserver-client"]}"#
        );
    }
}
