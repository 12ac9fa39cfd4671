//! Before anything is created: ask the cluster (SelfSubjectAccessReview) whether the caller may
//! do what the flow needs, so that a missing permission costs nothing and names the exact RBAC
//! rule an administrator has to grant.

use std::borrow::Cow;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Connection;
use crate::cluster::rbac::Grant;
use crate::csr::submit::SIGNER;
use crate::error::{Error, Result};

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
    name: Option<Cow<'static, str>>,
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

    /// Deleting one ClusterRoleBinding (`namespace` None) or RoleBinding.
    fn delete_binding(namespace: Option<&str>, name: &str) -> Rule {
        Rule {
            group: "rbac.authorization.k8s.io",
            verb: "delete",
            resource: if namespace.is_some() {
                "rolebindings"
            } else {
                "clusterrolebindings"
            },
            subresource: None,
            name: Some(Cow::Owned(name.to_string())),
            namespace: namespace.map(Into::into),
        }
    }

    const fn list_bindings(resource: &'static str) -> Rule {
        Rule {
            group: "rbac.authorization.k8s.io",
            verb: "list",
            resource,
            subresource: None,
            name: None,
            namespace: None,
        }
    }

    fn as_yaml(&self) -> String {
        let resource = match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        };
        let names = self
            .name
            .as_ref()
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
                    name: self.name.as_ref().map(|n| n.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

static CREATE: Rule = Rule::csrs("create");
static GET: Rule = Rule::csrs("get");
static LIST: Rule = Rule::csrs("list");
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
    name: Some(Cow::Borrowed(SIGNER)),
    namespace: None,
};

/// `request`: the name the request will have, when it is fixed (an invitation's, whose role
/// allows watching and deleting that one request only).
pub async fn check_requester(
    conn: &Connection,
    approve: bool,
    grants: &[Grant],
    request: Option<&str>,
) -> Result<Permissions> {
    let bindings: Vec<Rule> = grants.iter().map(Rule::binding).collect();
    let mut required = vec![&CREATE];
    if approve {
        required.extend([&APPROVAL, &APPROVE_SIGNER]);
    }
    required.extend(bindings.iter());
    let named = |verb| Rule {
        name: request.map(|n| Cow::Owned(n.to_string())),
        ..Rule::csrs(verb)
    };
    let (watch, delete) = (named("watch"), named("delete"));
    let optional = [&watch, &delete];
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
        return Err(missing_rules(what, &missing));
    }
    // Unknown (reviews not allowed) counts as allowed: the real call will tell.
    let watch = answers.next().expect("watch answer")?.unwrap_or(true);
    let delete = answers.next().expect("delete answer")?.unwrap_or(true);
    Ok(Permissions { watch, delete })
}

fn missing_rules(what: &str, missing: &[&Rule]) -> Error {
    let rules: Vec<String> = missing.iter().map(|r| r.as_yaml()).collect();
    let noun = if rules.len() == 1 { "rule" } else { "rules" };
    Error::failed(format!(
        "{what}; an administrator must grant the RBAC {noun} {}",
        rules.join(" and ")
    ))
}

/// Asks about every rule at once; the error names all that are missing.
async fn require(conn: &Connection, rules: &[&Rule], what: &str) -> Result<()> {
    let answers = futures::future::join_all(rules.iter().map(|rule| allowed(conn, rule))).await;
    let mut missing = Vec::new();
    for (rule, answer) in rules.iter().zip(answers) {
        if answer? == Some(false) {
            missing.push(*rule);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing_rules(what, &missing))
    }
}

/// `kubectl onboard approve|deny`: reading a request and recording a decision on it.
/// `verb` is "approve" or "deny".
pub async fn check_reviewer(conn: &Connection, verb: &str) -> Result<()> {
    require(
        conn,
        &[&GET, &APPROVAL, &APPROVE_SIGNER],
        &format!("you may not {verb} requests for the {SIGNER} signer"),
    )
    .await
}

/// `kubectl onboard pending`: listing the requests.
pub async fn check_lister(conn: &Connection) -> Result<()> {
    require(
        conn,
        &[&LIST],
        "you may not list CertificateSigningRequests",
    )
    .await
}

/// Whether the caller may list CSRs (unknown counts as yes), without failing.
pub async fn may_list_csrs(conn: &Connection) -> Result<bool> {
    Ok(allowed(conn, &LIST).await?.unwrap_or(true))
}

/// `kubectl onboard offboard`: finding the bindings that name a user.
pub async fn check_binding_lister(conn: &Connection) -> Result<()> {
    static CLUSTER: Rule = Rule::list_bindings("clusterrolebindings");
    static NAMESPACED: Rule = Rule::list_bindings("rolebindings");
    require(
        conn,
        &[&CLUSTER, &NAMESPACED],
        "you may not list role bindings, so the user's cannot be found",
    )
    .await
}

/// `kubectl onboard offboard`: deleting these bindings, as (namespace, name); namespace
/// `None` for a ClusterRoleBinding.
pub async fn check_unbinder(
    conn: &Connection,
    bindings: &[(Option<String>, String)],
) -> Result<()> {
    let rules: Vec<Rule> = bindings
        .iter()
        .map(|(ns, name)| Rule::delete_binding(ns.as_deref(), name))
        .collect();
    let rules: Vec<&Rule> = rules.iter().collect();
    require(
        conn,
        &rules,
        "you may not delete the user's role bindings; nothing was deleted",
    )
    .await
}

/// `kubectl onboard invite`: making an invitation's objects and its token (see
/// `invitation/server.rs`), and keeping the shared ones as they must be.
pub async fn check_inviter(conn: &Connection) -> Result<()> {
    use crate::invitation::{CLUSTER_ROLE, NAMESPACE};
    const RBAC: &str = "rbac.authorization.k8s.io";
    let within = |group, verb, resource, subresource| Rule {
        group,
        verb,
        resource,
        subresource,
        name: None,
        namespace: Some(NAMESPACE.to_string()),
    };
    let cluster_wide = |group, resource| Rule {
        group,
        verb: "create",
        resource,
        subresource: None,
        name: None,
        namespace: None,
    };
    let named = |group, resource, name: &'static str| Rule {
        group,
        verb: "patch",
        resource,
        subresource: None,
        name: Some(Cow::Borrowed(name)),
        namespace: None,
    };
    let rules = [
        named("", "namespaces", NAMESPACE),
        named(RBAC, "clusterroles", CLUSTER_ROLE),
        named(RBAC, "clusterrolebindings", CLUSTER_ROLE),
        within("", "create", "configmaps", None),
        within("", "create", "serviceaccounts", None),
        within("", "create", "serviceaccounts", Some("token")),
        within(RBAC, "create", "roles", None),
        within(RBAC, "create", "rolebindings", None),
        cluster_wide(RBAC, "clusterroles"),
        cluster_wide(RBAC, "clusterrolebindings"),
    ];
    let rules: Vec<&Rule> = rules.iter().collect();
    require(conn, &rules, "you may not make invitations").await
}

/// `kubectl onboard approve` of a request made with an invitation: the bindings it grants.
pub async fn check_grants(conn: &Connection, grants: &[Grant]) -> Result<()> {
    let rules: Vec<Rule> = grants.iter().map(Rule::binding).collect();
    let rules: Vec<&Rule> = rules.iter().collect();
    require(
        conn,
        &rules,
        "you may not create the role bindings the invitation grants; nothing was approved",
    )
    .await
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
            Rule::delete_binding(Some("team"), "kubectl-onboard:jane:dev").as_yaml(),
            r#"{apiGroups: ["rbac.authorization.k8s.io"], resources: ["rolebindings"], verbs: ["delete"], resourceNames: ["kubectl-onboard:jane:dev"]} in namespace team"#
        );
        assert_eq!(
            APPROVE_SIGNER.as_yaml(),
            r#"{apiGroups: ["certificates.k8s.io"], resources: ["signers"], verbs: ["approve"], resourceNames: ["kubernetes.io/kube-apiserver-client"]}"#
        );
    }
}
