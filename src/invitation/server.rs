//! An invitation's objects on the server (see the module above for what each is for), and the
//! changes `invite`, `approve`, `accept` and `invitations` make to them. Every object is
//! labelled `app.kubernetes.io/managed-by=kubectl-onboard` and `kubectl-onboard/invitation`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{CLUSTER_ROLE, Invitation, LABEL, NAMESPACE, Stored};
use crate::cluster::Connection;
use crate::cluster::rbac::USER_ANNOTATION;
use crate::csr::review::Reviewed;
use crate::csr::submit::{self, MANAGED_BY, SIGNER};
use crate::error::{Error, Result};
use crate::pki::verify::rfc3339;

const FIELD_MANAGER: &str = "kubectl-onboard";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (LABEL.0.to_string(), LABEL.1.to_string()),
    ])
}

fn metadata(name: &str, user: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(NAMESPACE.to_string()),
        labels: Some(labels()),
        annotations: Some(BTreeMap::from([(
            USER_ANNOTATION.to_string(),
            user.to_string(),
        )])),
        ..Default::default()
    }
}

/// What every invitation shares, made once and kept as it must be (server-side apply): the
/// namespace, and the ClusterRole and ClusterRoleBinding that let its ServiceAccounts create
/// CertificateSigningRequests, and nothing else (each reads and deletes only its own request,
/// by name: [`create`]).
pub async fn prepare(conn: &Connection) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let labels = json!({"app.kubernetes.io/managed-by": "kubectl-onboard", LABEL.0: LABEL.1});
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": labels},
    });
    Api::<Namespace>::all(conn.client.clone())
        .patch(NAMESPACE, &params, &Patch::Apply(&namespace))
        .await
        .map_err(|e| conn.api_error(&format!("making namespace {NAMESPACE}"), e))?;
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE, "labels": labels},
        "rules": [{
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["create"],
        }],
    });
    Api::<ClusterRole>::all(conn.client.clone())
        .patch(CLUSTER_ROLE, &params, &Patch::Apply(&role))
        .await
        .map_err(|e| conn.api_error(&format!("writing ClusterRole {CLUSTER_ROLE}"), e))?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ROLE, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
            "name": format!("system:serviceaccounts:{NAMESPACE}"),
        }],
    });
    Api::<ClusterRoleBinding>::all(conn.client.clone())
        .patch(CLUSTER_ROLE, &params, &Patch::Apply(&binding))
        .await
        .map_err(|e| conn.api_error(&format!("writing ClusterRoleBinding {CLUSTER_ROLE}"), e))?;
    Ok(())
}

/// Creates `invitation`'s record, ServiceAccount, the Role and RoleBinding that let it delete
/// itself (owned by it, so that the garbage collector takes them along), and the ClusterRole
/// and ClusterRoleBinding that let it get, watch and delete the one request it may make,
/// named like the invitation. On an error, what was made is deleted again.
pub async fn create(conn: &Connection, invitation: &Invitation) -> Result<()> {
    let made = create_objects(conn, invitation).await;
    if made.is_err() {
        let _ = delete_credential(conn, &invitation.name).await;
        let _ = configmaps(conn)
            .delete(&invitation.name, &DeleteParams::default())
            .await;
    }
    made
}

async fn create_objects(conn: &Connection, invitation: &Invitation) -> Result<()> {
    let (name, user) = (invitation.name.as_str(), invitation.user.as_str());
    let pp = PostParams::default();
    let record = ConfigMap {
        metadata: metadata(name, user),
        data: Some(invitation.to_data()),
        ..Default::default()
    };
    configmaps(conn)
        .create(&pp, &record)
        .await
        .map_err(|e| conn.api_error("recording the invitation", e))?;
    let account = ServiceAccount {
        metadata: metadata(name, user),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let account = accounts(conn)
        .create(&pp, &account)
        .await
        .map_err(|e| conn.api_error("creating the invitation's ServiceAccount", e))?;
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "ServiceAccount".into(),
        name: name.to_string(),
        uid: account.metadata.uid.clone().unwrap_or_default(),
        ..Default::default()
    };
    let owned = || ObjectMeta {
        owner_references: Some(vec![owner.clone()]),
        ..metadata(name, user)
    };
    let role: Role = serde_json::from_value(json!({
        "metadata": owned(),
        "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["delete"], "resourceNames": [name]}],
    }))
    .map_err(|e| Error::failed(format!("building the invitation's Role: {e}")))?;
    Api::<Role>::namespaced(conn.client.clone(), NAMESPACE)
        .create(&pp, &role)
        .await
        .map_err(|e| conn.api_error("creating the invitation's Role", e))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": owned(),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    }))
    .map_err(|e| Error::failed(format!("building the invitation's RoleBinding: {e}")))?;
    Api::<RoleBinding>::namespaced(conn.client.clone(), NAMESPACE)
        .create(&pp, &binding)
        .await
        .map_err(|e| conn.api_error("creating the invitation's RoleBinding", e))?;
    let own = own_request(name);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": own, "labels": labels()},
        "rules": [{
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "verbs": ["get", "watch", "delete"],
            "resourceNames": [name],
        }],
    }))
    .map_err(|e| Error::failed(format!("building the invitation's ClusterRole: {e}")))?;
    Api::<ClusterRole>::all(conn.client.clone())
        .create(&pp, &role)
        .await
        .map_err(|e| conn.api_error("creating the invitation's ClusterRole", e))?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": own, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": own},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    }))
    .map_err(|e| Error::failed(format!("building the invitation's ClusterRoleBinding: {e}")))?;
    Api::<ClusterRoleBinding>::all(conn.client.clone())
        .create(&pp, &binding)
        .await
        .map_err(|e| conn.api_error("creating the invitation's ClusterRoleBinding", e))?;
    Ok(())
}

/// The ClusterRole and ClusterRoleBinding of invitation `name`'s own request.
fn own_request(name: &str) -> String {
    format!("{CLUSTER_ROLE}:{name}")
}

/// A token for the invitation's ServiceAccount, valid for `lifetime`.
pub async fn token(conn: &Connection, name: &str, lifetime: Duration) -> Result<String> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(lifetime.as_secs() as i64),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = accounts(conn)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| conn.api_error("minting the invitation's token", e))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::failed("the API server returned no token for the invitation"))
}

/// Every invitation recorded, in name order.
pub async fn list(conn: &Connection) -> Result<Vec<Invitation>> {
    let ours = ListParams::default().labels(&format!("{}={}", LABEL.0, LABEL.1));
    let found = match configmaps(conn).list(&ours).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(conn.api_error("listing invitations", e)),
    };
    let mut invitations: Vec<Invitation> = found.iter().filter_map(read).collect();
    invitations.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(invitations)
}

/// The invitation `name` with the version it was read at; `None` if there is none.
pub async fn get(conn: &Connection, name: &str) -> Result<Option<(Invitation, String)>> {
    let found = configmaps(conn)
        .get_opt(name)
        .await
        .map_err(|e| conn.api_error(&format!("reading invitation {name}"), e))?;
    Ok(found.and_then(|map| {
        let version = map.metadata.resource_version.clone().unwrap_or_default();
        read(&map).map(|invitation| (invitation, version))
    }))
}

fn read(map: &ConfigMap) -> Option<Invitation> {
    let name = map.metadata.name.as_deref()?;
    Invitation::from_data(name, map.data.as_ref()?)
}

/// Records `stored` on invitation `name` if it has not changed since `version` (if given): two
/// administrators approving at once cannot both use it. `Ok(false)`: it had changed.
pub async fn set(
    conn: &Connection,
    name: &str,
    version: Option<&str>,
    stored: &Stored,
) -> Result<bool> {
    let mut data = serde_json::Map::new();
    match stored {
        Stored::Open => data.insert("state".into(), json!("open")),
        Stored::Used { request, uid, at } => {
            data.insert("request".into(), json!(request));
            data.insert("requestUID".into(), json!(uid));
            data.insert("usedAt".into(), json!(at));
            data.insert("state".into(), json!("used"))
        }
        Stored::Withdrawn => data.insert("state".into(), json!("withdrawn")),
    };
    let mut patch = json!({ "data": data });
    if let Some(version) = version {
        patch["metadata"] = json!({ "resourceVersion": version });
    }
    match configmaps(conn)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(conn.api_error(&format!("updating invitation {name}"), e)),
    }
}

/// Marks invitation `name` used by `request` (the object with uid `uid`), unless it changed
/// since `version`.
pub async fn mark_used(
    conn: &Connection,
    name: &str,
    version: &str,
    request: &str,
    uid: &str,
) -> Result<bool> {
    if version.is_empty() {
        // No version, no compare-and-swap: refuse rather than risk a second use.
        return Ok(false);
    }
    let used = Stored::Used {
        request: request.to_string(),
        uid: uid.to_string(),
        at: rfc3339(SystemTime::now()),
    };
    set(conn, name, Some(version), &used).await
}

/// Deletes the invitation's ServiceAccount (its tokens stop working), Role and RoleBinding.
/// Gone already is fine; `Ok(true)` when the ServiceAccount was there.
pub async fn delete_credential(conn: &Connection, name: &str) -> Result<bool> {
    let dp = DeleteParams::default();
    let gone = |r: std::result::Result<(), kube::Error>, what: &str| match r {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(conn.api_error(&format!("deleting the invitation's {what}"), e)),
    };
    let account = accounts(conn).delete(name, &dp).await;
    let was_there = !matches!(&account, Err(kube::Error::Api(s)) if s.code == 404);
    gone(account.map(|_| ()), "ServiceAccount")?;
    let roles: Api<Role> = Api::namespaced(conn.client.clone(), NAMESPACE);
    gone(roles.delete(name, &dp).await.map(|_| ()), "Role")?;
    let bindings: Api<RoleBinding> = Api::namespaced(conn.client.clone(), NAMESPACE);
    gone(bindings.delete(name, &dp).await.map(|_| ()), "RoleBinding")?;
    let own = own_request(name);
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(conn.client.clone());
    gone(
        cluster_bindings.delete(&own, &dp).await.map(|_| ()),
        "ClusterRoleBinding",
    )?;
    let cluster_roles: Api<ClusterRole> = Api::all(conn.client.clone());
    gone(
        cluster_roles.delete(&own, &dp).await.map(|_| ()),
        "ClusterRole",
    )?;
    Ok(was_there)
}

/// `accept`, as the invitation: deletes its own ServiceAccount (all its Role allows). Gone
/// already is fine.
pub async fn delete_own_credential(conn: &Connection, name: &str) -> Result<()> {
    match accounts(conn).delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(conn.api_error("deleting the invitation's ServiceAccount", e)),
    }
}

/// The names of the invitations whose ServiceAccount, or the ClusterRoleBinding of its own
/// request (left when `accept` deleted the ServiceAccount), is still there.
pub async fn with_credential(conn: &Connection) -> Result<Vec<String>> {
    let ours = ListParams::default().labels(&format!("{}={}", LABEL.0, LABEL.1));
    let mut names: Vec<String> = match accounts(conn).list_metadata(&ours).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|a| a.metadata.name)
            .collect(),
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(conn.api_error("listing the invitations' ServiceAccounts", e)),
    };
    let prefix = own_request("");
    let bindings = Api::<ClusterRoleBinding>::all(conn.client.clone())
        .list_metadata(&ours)
        .await
        .map_err(|e| conn.api_error("listing the invitations' ClusterRoleBindings", e))?;
    for binding in bindings.items {
        if let Some(name) = binding
            .metadata
            .name
            .as_deref()
            .and_then(|n| n.strip_prefix(&prefix))
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Denies every pending request made with one of `ended` (withdrawn or expired invitations:
/// their token may still work for seconds, as the API server caches it), saying why. Returns
/// what it did, a line each.
pub async fn deny_made_with(
    conn: &Connection,
    ended: &[&Invitation],
    now: SystemTime,
) -> Result<Vec<String>> {
    if ended.is_empty() {
        return Ok(Vec::new());
    }
    let requests: Api<CertificateSigningRequest> = Api::all(conn.client.clone());
    let ours = ListParams::default().fields(&format!("spec.signerName={SIGNER}"));
    let list = requests
        .list(&ours)
        .await
        .map_err(|e| conn.api_error("listing CertificateSigningRequests", e))?;
    let mut done = Vec::new();
    for csr in list.items {
        let reviewed = Reviewed::of(&csr);
        let Some(invitation) = ended
            .iter()
            .find(|i| reviewed.requester.as_deref() == Some(i.requester().as_str()))
        else {
            continue;
        };
        if !reviewed.is_pending() {
            continue;
        }
        let why = match invitation.stored {
            Stored::Withdrawn => format!("invitation {} was withdrawn", invitation.name),
            _ if invitation.expired(now) => format!(
                "invitation {} expired at {}",
                invitation.name, invitation.expires
            ),
            _ => format!("invitation {} was used already", invitation.name),
        };
        submit::deny(conn, &reviewed.name, &why).await?;
        done.push(format!("Denied {}, made with it.", reviewed.name));
    }
    Ok(done)
}

/// What any invitation command tidies at `now`: the credentials of used (after the grace),
/// withdrawn and expired invitations, the requests made with withdrawn and expired ones, and
/// the records of those past retention. Returns what it did, a line each.
pub async fn tidy(
    conn: &Connection,
    invitations: &[Invitation],
    now: SystemTime,
) -> Result<Vec<String>> {
    let credentials = with_credential(conn).await?;
    let ended: Vec<&Invitation> = invitations
        .iter()
        .filter(|i| !i.stale(now))
        .filter(|i| match i.stored {
            Stored::Withdrawn => true,
            Stored::Open => i.expired(now),
            Stored::Used { .. } => false,
        })
        .collect();
    let mut done = deny_made_with(conn, &ended, now).await?;
    for name in &credentials {
        // A credential whose record was not in the list may be one `invite` is making right
        // now (it writes the record first): it is left alone.
        let finished = invitations
            .iter()
            .find(|i| &i.name == name)
            .is_some_and(|i| i.credential_done(now));
        if finished && delete_credential(conn, name).await? {
            done.push(format!("deleted the credential of invitation {name}"));
        }
    }
    for stale in invitations.iter().filter(|i| i.stale(now)) {
        match configmaps(conn)
            .delete(&stale.name, &DeleteParams::default())
            .await
        {
            Ok(_) => done.push(format!("deleted the record of invitation {}", stale.name)),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(conn.api_error("deleting an old invitation", e)),
        }
    }
    Ok(done)
}

fn configmaps(conn: &Connection) -> Api<ConfigMap> {
    Api::namespaced(conn.client.clone(), NAMESPACE)
}

fn accounts(conn: &Connection) -> Api<ServiceAccount> {
    Api::namespaced(conn.client.clone(), NAMESPACE)
}

/// The credentials of finished invitations go, whoever made them.
pub async fn tidy_all(conn: &Connection, progress: &mut crate::ui::progress::Progress) {
    let tidied = match list(conn).await {
        Ok(all) => tidy(conn, &all, SystemTime::now()).await,
        Err(e) => Err(e),
    };
    match tidied {
        Ok(done) => done.iter().for_each(|line| progress.detail(line)),
        Err(e) => progress.detail(&format!("invitations not tidied: {e}")),
    }
}
