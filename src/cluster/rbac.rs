//! RBAC for a new user: `--clusterrole NAME` → a ClusterRoleBinding, `--role NAME --namespace
//! NS` → a RoleBinding in NS. Idempotent, and recognisable later (offboard): named
//! `kubectl-onboard:<user>:<role>`, labelled `app.kubernetes.io/managed-by=kubectl-onboard`,
//! annotated `kubectl-onboard/user=<user>`, with the user as the only subject.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use crate::cluster::Connection;
use crate::csr::submit::MANAGED_BY;
use crate::error::{Error, Result};

pub const USER_ANNOTATION: &str = "kubectl-onboard/user";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One binding to make for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A ClusterRoleBinding to this ClusterRole.
    ClusterRole(String),
    /// A RoleBinding in `namespace` to the Role `role` there.
    Role { role: String, namespace: String },
}

impl Grant {
    pub fn describe(&self) -> String {
        match self {
            Grant::ClusterRole(role) => format!("ClusterRoleBinding to ClusterRole {role}"),
            Grant::Role { role, namespace } => {
                format!("RoleBinding to Role {role} in namespace {namespace}")
            }
        }
    }
}

/// `kubectl-onboard:jane:view`.
pub fn binding_name(user: &str, role: &str) -> String {
    format!("kubectl-onboard:{user}:{role}")
}

fn metadata(user: &str, role: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(binding_name(user, role)),
        namespace: namespace.map(Into::into),
        labels: Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())])),
        annotations: Some(BTreeMap::from([(USER_ANNOTATION.into(), user.into())])),
        ..Default::default()
    }
}

fn subject(user: &str) -> Vec<Subject> {
    vec![Subject {
        kind: "User".into(),
        api_group: Some(RBAC_GROUP.into()),
        name: user.into(),
        namespace: None,
    }]
}

/// Whether the role a grant names exists; `None` when we may not look (a binding to a role
/// that does not exist yet is valid, and grants nothing until it does).
pub async fn role_exists(conn: &Connection, grant: &Grant) -> Option<bool> {
    match grant {
        Grant::ClusterRole(role) => {
            let api: Api<ClusterRole> = Api::all(conn.client.clone());
            api.get_opt(role).await.ok().map(|found| found.is_some())
        }
        Grant::Role { role, namespace } => {
            let api: Api<Role> = Api::namespaced(conn.client.clone(), namespace);
            api.get_opt(role).await.ok().map(|found| found.is_some())
        }
    }
}

/// Whether a binding made earlier is exactly the one we would make now.
fn same(
    role_ref: &RoleRef,
    subjects: Option<&Vec<Subject>>,
    kind: &str,
    role: &str,
    user: &str,
) -> bool {
    role_ref.kind == kind && role_ref.name == role && subjects == Some(&subject(user))
}

/// Creates the binding, or accepts the identical one that is already there.
/// Returns true when it created it.
pub async fn bind(conn: &Connection, user: &str, grant: &Grant) -> Result<bool> {
    let role_ref = |kind: &str, role: &str| RoleRef {
        api_group: RBAC_GROUP.into(),
        kind: kind.into(),
        name: role.into(),
    };
    match grant {
        Grant::ClusterRole(role) => {
            let binding = ClusterRoleBinding {
                metadata: metadata(user, role, None),
                role_ref: role_ref("ClusterRole", role),
                subjects: Some(subject(user)),
            };
            let api = Api::all(conn.client.clone());
            let shown = format!("ClusterRoleBinding {}", binding_name(user, role));
            create_or_keep(conn, api, binding, grant, user, &shown).await
        }
        Grant::Role { role, namespace } => {
            let binding = RoleBinding {
                metadata: metadata(user, role, Some(namespace)),
                role_ref: role_ref("Role", role),
                subjects: Some(subject(user)),
            };
            let api = Api::namespaced(conn.client.clone(), namespace);
            let shown = format!("RoleBinding {namespace}/{}", binding_name(user, role));
            create_or_keep(conn, api, binding, grant, user, &shown).await
        }
    }
}

/// The two kinds of binding we make, as far as `bind` needs to tell them apart.
trait Binding:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
{
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> Option<&Vec<Subject>>;
}

impl Binding for ClusterRoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
}

impl Binding for RoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
}

/// Creates `binding`; if one of its name exists, keeps it when it is identical (same role,
/// the user as the only subject) and refuses otherwise. True when it created it.
async fn create_or_keep<B: Binding>(
    conn: &Connection,
    api: Api<B>,
    binding: B,
    grant: &Grant,
    user: &str,
    shown: &str,
) -> Result<bool> {
    let doing = format!("creating the {}", grant.describe());
    match api.create(&PostParams::default(), &binding).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let name = binding.meta().name.clone().unwrap_or_default();
            let existing = api
                .get(&name)
                .await
                .map_err(|e| conn.api_error(&doing, e))?;
            let wanted = binding.role_ref();
            if same(
                existing.role_ref(),
                existing.subjects(),
                &wanted.kind,
                &wanted.name,
                user,
            ) {
                return Ok(false);
            }
            Err(Error::failed(format!(
                "{shown} already exists and binds something else; delete it or choose another role"
            )))
        }
        Err(e) => Err(conn.api_error(&doing, e)),
    }
}

/// The bindings kubectl-onboard made for `user`, as (namespace, name); namespace `None` for
/// ClusterRoleBindings.
pub async fn bindings_of(conn: &Connection, user: &str) -> Result<Vec<(Option<String>, String)>> {
    let selector = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let ours = |meta: &ObjectMeta| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(USER_ANNOTATION))
            .map(String::as_str)
            == Some(user)
    };
    let doing = "listing the bindings made for the user";
    let cluster: Api<ClusterRoleBinding> = Api::all(conn.client.clone());
    let mut found: Vec<(Option<String>, String)> = cluster
        .list(&selector)
        .await
        .map_err(|e| conn.api_error(doing, e))?
        .items
        .into_iter()
        .filter(|b| ours(&b.metadata))
        .filter_map(|b| b.metadata.name.map(|n| (None, n)))
        .collect();
    let namespaced: Api<RoleBinding> = Api::all(conn.client.clone());
    found.extend(
        namespaced
            .list(&selector)
            .await
            .map_err(|e| conn.api_error(doing, e))?
            .items
            .into_iter()
            .filter(|b| ours(&b.metadata))
            .filter_map(|b| Some((b.metadata.namespace, b.metadata.name?))),
    );
    Ok(found)
}

/// Deletes a ClusterRoleBinding (`namespace` None) or a RoleBinding. False when it was gone
/// already.
pub async fn unbind(conn: &Connection, namespace: Option<&str>, name: &str) -> Result<bool> {
    let doing = format!("deleting {}", describe_binding(namespace, name));
    let result = match namespace {
        None => Api::<ClusterRoleBinding>::all(conn.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(drop),
        Some(ns) => Api::<RoleBinding>::namespaced(conn.client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .map(drop),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(conn.api_error(&doing, e)),
    }
}

/// `ClusterRoleBinding x` or `RoleBinding x in namespace y`.
pub fn describe_binding(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        None => format!("ClusterRoleBinding {name}"),
        Some(ns) => format!("RoleBinding {name} in namespace {ns}"),
    }
}

/// Every binding through which a certificate for `user` in `groups` is granted something: those
/// naming the User, one of the Groups, or `system:authenticated` (every authenticated user), as
/// "ClusterRoleBinding NAME (ClusterRole R, through Group dev)". Kubernetes' own bindings of
/// `system:authenticated` (discovery, self-review: `system:…` names) are left out.
pub async fn granting(conn: &Connection, user: &str, groups: &[String]) -> Result<Vec<String>> {
    let through = |subjects: Option<&Vec<Subject>>| {
        subjects.into_iter().flatten().find_map(|s| {
            let hit = match s.kind.as_str() {
                "User" => s.name == user,
                "Group" => s.name == "system:authenticated" || groups.contains(&s.name),
                _ => false,
            };
            hit.then(|| format!("{} {}", s.kind, s.name))
        })
    };
    let doing = "listing the role bindings";
    let all = ListParams::default();
    let mut found = Vec::new();
    for b in Api::<ClusterRoleBinding>::all(conn.client.clone())
        .list(&all)
        .await
        .map_err(|e| conn.api_error(doing, e))?
        .items
    {
        if let Some(via) = through(b.subjects.as_ref()) {
            let name = b.metadata.name.unwrap_or_default();
            if via == "Group system:authenticated" && name.starts_with("system:") {
                continue;
            }
            found.push(format!(
                "ClusterRoleBinding {name} ({} {}, through {via})",
                b.role_ref.kind, b.role_ref.name
            ));
        }
    }
    for b in Api::<RoleBinding>::all(conn.client.clone())
        .list(&all)
        .await
        .map_err(|e| conn.api_error(doing, e))?
        .items
    {
        if let Some(via) = through(b.subjects.as_ref()) {
            let (ns, name) = (
                b.metadata.namespace.unwrap_or_default(),
                b.metadata.name.unwrap_or_default(),
            );
            found.push(format!(
                "RoleBinding {name} in {ns} ({} {}, through {via})",
                b.role_ref.kind, b.role_ref.name
            ));
        }
    }
    Ok(found)
}

/// Bindings that name User `user` as a subject but that kubectl-onboard did not make for them
/// (offboarding leaves these to a person), as (namespace, name).
pub async fn others_naming(conn: &Connection, user: &str) -> Result<Vec<(Option<String>, String)>> {
    let names_user = |subjects: Option<&Vec<Subject>>| {
        subjects
            .into_iter()
            .flatten()
            .any(|s| s.kind == "User" && s.name == user)
    };
    let ours = |meta: &ObjectMeta| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY.0))
            .map(String::as_str)
            == Some(MANAGED_BY.1)
            && meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(USER_ANNOTATION))
                .map(String::as_str)
                == Some(user)
    };
    let doing = "listing the role bindings";
    let all = ListParams::default();
    let mut found: Vec<(Option<String>, String)> =
        Api::<ClusterRoleBinding>::all(conn.client.clone())
            .list(&all)
            .await
            .map_err(|e| conn.api_error(doing, e))?
            .items
            .into_iter()
            .filter(|b| names_user(b.subjects.as_ref()) && !ours(&b.metadata))
            .filter_map(|b| b.metadata.name.map(|n| (None, n)))
            .collect();
    found.extend(
        Api::<RoleBinding>::all(conn.client.clone())
            .list(&all)
            .await
            .map_err(|e| conn.api_error(doing, e))?
            .items
            .into_iter()
            .filter(|b| names_user(b.subjects.as_ref()) && !ours(&b.metadata))
            .filter_map(|b| Some((b.metadata.namespace, b.metadata.name?))),
    );
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sameness() {
        assert_eq!(binding_name("jane", "view"), "kubectl-onboard:jane:view");
        let role_ref = RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: "view".into(),
        };
        assert!(same(
            &role_ref,
            Some(&subject("jane")),
            "ClusterRole",
            "view",
            "jane"
        ));
        assert!(!same(
            &role_ref,
            Some(&subject("john")),
            "ClusterRole",
            "view",
            "jane"
        ));
        assert!(!same(
            &role_ref,
            Some(&subject("jane")),
            "Role",
            "view",
            "jane"
        ));
        assert!(!same(&role_ref, None, "ClusterRole", "view", "jane"));
    }
}
