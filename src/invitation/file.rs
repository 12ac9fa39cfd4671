//! The invitation file: a kubeconfig (the cluster with its CA embedded, the invitation's token,
//! a context joining them) that kubectl can use as it is, plus the invited identity in an
//! extension kubectl ignores. It holds a credential: written 0600, never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::Invitation;
use crate::error::{Error, Result};
use crate::kubeconfig::file::{self, Mode};
use crate::kubeconfig::{self, Loaded, Target, yaml};

/// The name of the extension that carries the invited identity.
pub const EXTENSION: &str = "kubectl-onboard/invitation";
const CONTEXT: &str = "invitation";

/// What the invitation file says it is for. The server's record decides; this is what `accept`
/// asks for and shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invited {
    pub name: String,
    pub user: String,
    pub groups: Vec<String>,
    pub duration: Option<Duration>,
    pub expires: String,
}

/// The only keys an invitation's cluster may have: where the server is and how to trust it.
/// Anything else (a CA or proxy named by path or URL) would make `accept` read a file or send
/// traffic where the sender of the file chose; `invite` never writes `insecure-skip-tls-verify`.
const CLUSTER_KEYS: [&str; 4] = [
    "server",
    "certificate-authority-data",
    "tls-server-name",
    "disable-compression",
];
const CONTEXT_KEYS: [&str; 3] = ["cluster", "user", "namespace"];
const TOP_KEYS: [&str; 8] = [
    "apiVersion",
    "kind",
    "clusters",
    "users",
    "contexts",
    "current-context",
    "preferences",
    "extensions",
];
/// An invitation is a few kilobytes; a larger file is not one.
const MAX_SIZE: u64 = 256 * 1024;

/// The file's content: `token` for `target`'s cluster, and `invitation`'s identity.
pub fn render(target: &Target, token: &str, invitation: &Invitation) -> Value {
    let mut extension = json!({
        "name": invitation.name,
        "user": invitation.user,
        "groups": invitation.groups,
        "expires": invitation.expires,
    });
    if let Some(d) = invitation.duration {
        extension["durationSeconds"] = json!(d.as_secs());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": target.cluster_name, "cluster": invited_cluster(target)}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": target.cluster_name, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
        "extensions": [{"name": EXTENSION, "extension": extension}],
    })
}

/// `target`'s cluster as the invitation carries it: its CA embedded, and only the keys `accept`
/// takes ([`CLUSTER_KEYS`]; a proxy of the inviter's network is no use to the invitee anyway).
fn invited_cluster(target: &Target) -> Value {
    let mut cluster = kubeconfig::portable_cluster(target);
    if let Some(obj) = cluster.as_object_mut() {
        obj.retain(|key, _| CLUSTER_KEYS.contains(&key.as_str()));
    }
    cluster
}

/// Checks that `document` is what `invite` writes: a bearer token for one cluster, and nothing
/// that would make `accept` run a program (`exec`, `auth-provider`), read a file the sender
/// chose (`tokenFile`, certificate or key paths), send another secret (basic auth, client
/// certificates) or go through a proxy. `Err` names what is there instead.
pub fn only_a_token(document: &Value) -> std::result::Result<(), String> {
    let unexpected = |what: &str, value: &Value, allowed: &[&str]| -> Option<String> {
        let obj = value.as_object()?;
        let extra: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        (!extra.is_empty()).then(|| format!("its {what} has {}", extra.join(", ")))
    };
    if !document.is_object() {
        return Err("it is not a kubeconfig".into());
    }
    if let Some(why) = unexpected("top level", document, &TOP_KEYS) {
        return Err(why);
    }
    let entries = |section: &str| -> std::result::Result<Vec<&Value>, String> {
        let list = document.get(section).and_then(Value::as_array);
        match list {
            Some(list) if list.len() == 1 => Ok(list.iter().collect()),
            _ => Err(format!("it does not have exactly one entry in {section}")),
        }
    };
    for (section, field, allowed) in [
        ("clusters", "cluster", &CLUSTER_KEYS[..]),
        ("contexts", "context", &CONTEXT_KEYS[..]),
        ("users", "user", &["token"][..]),
    ] {
        for entry in entries(section)? {
            let inner = entry.get(field).unwrap_or(&Value::Null);
            if !inner.is_object() {
                return Err(format!("its {field} entry is not a mapping"));
            }
            if let Some(why) = unexpected(field, inner, allowed) {
                return Err(why);
            }
        }
    }
    let cluster = &entries("clusters")?[0]["cluster"];
    let server = cluster.get("server").and_then(Value::as_str).unwrap_or("");
    let authority = server
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match authority {
        None => return Err("its server is not an https:// address".into()),
        Some(a) if a.is_empty() || a.contains('@') => {
            return Err("its server address is not a plain https://host:port".into());
        }
        Some(_) => {}
    }
    if cluster
        .get("certificate-authority-data")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("it carries no CA to check the server with".into());
    }
    let user = &entries("users")?[0]["user"];
    match user.get("token").and_then(Value::as_str) {
        Some(token) if !token.is_empty() => Ok(()),
        _ => Err("its user has no token".into()),
    }
}

/// Refuses a path whose directory does not exist, before anything is created: an invitation
/// holds a credential, and directories made for it on the way would be nobody's choice.
pub fn check_directory(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(Error::usage(format!(
            "directory {} does not exist: create it first, or choose another --output",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses to overwrite `path` unless `force`, before anything is created.
pub fn check_free(path: &Path, force: bool) -> Result<()> {
    if force || !path.exists() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "{} already exists; pass --force to overwrite it, or choose another --output",
        path.display()
    )))
}

/// Writes the invitation (0600) under kubectl's lock, all or nothing.
pub fn write(path: &Path, content: &Value, force: bool) -> Result<()> {
    let _lock = file::lock(path)?;
    check_free(path, force)?;
    file::write_atomic(path, yaml::emit(content)?.as_bytes(), Mode::Secret)
}

/// `<user>.invite` in the current directory, or in `dir`.
pub fn default_path(dir: Option<&Path>, user: &str) -> PathBuf {
    let stem: String = user
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || "@._-".contains(c) => c,
            _ => '_',
        })
        .collect();
    dir.unwrap_or(Path::new(".")).join(format!("{stem}.invite"))
}

/// An invitation file, read: the kubeconfig to connect with, its cluster, and the identity.
pub struct Opened {
    pub loaded: Loaded,
    pub target: Target,
    pub invited: Invited,
}

/// Reads the invitation at `path`.
pub fn open(path: &Path) -> Result<Opened> {
    if !path.is_file() {
        return Err(Error::usage(format!(
            "invitation file {} not found: pass the file kubectl onboard invite wrote for you",
            path.display()
        )));
    }
    let not_one = |why: &str| {
        Error::failed(format!(
            "{} is not a kubectl onboard invitation ({why}); nothing was run or sent: ask your administrator for the file kubectl onboard invite writes",
            path.display()
        ))
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_SIZE) {
        return Err(not_one(&format!(
            "it is larger than {} KiB",
            MAX_SIZE / 1024
        )));
    }
    let loaded = kubeconfig::load(Some(path))?;
    let document = loaded
        .merged
        .documents
        .first()
        .ok_or_else(|| not_one("it is empty"))?;
    // Before anything else reads it: what it names is the sender's choice.
    only_a_token(&document.value).map_err(|why| not_one(&why))?;
    let extension = document
        .value
        .get("extensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(EXTENSION))
        .and_then(|e| e.get("extension"))
        .ok_or_else(|| not_one(&format!("no {EXTENSION} extension")))?;
    let invited =
        read_extension(extension).ok_or_else(|| not_one("its identity cannot be read"))?;
    let target = loaded.read_target(Some(CONTEXT))?;
    Ok(Opened {
        loaded,
        target,
        invited,
    })
}

fn read_extension(e: &Value) -> Option<Invited> {
    let text = |k: &str| e.get(k).and_then(Value::as_str).map(String::from);
    let groups = e
        .get("groups")?
        .as_array()?
        .iter()
        .map(|g| g.as_str().map(String::from))
        .collect::<Option<Vec<String>>>()?;
    let duration = match e.get("durationSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Duration::from_secs(v.as_u64()?)),
    };
    Some(Invited {
        name: text("name")?,
        user: text("user")?,
        groups,
        duration,
        expires: text("expires")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::rbac::Grant;

    #[test]
    fn an_invitation_file_reads_back_and_holds_the_token_only_as_its_user() {
        let dir = crate::testing::Scratch::new("invitation");
        let target = Target::for_server("prod", "https://10.0.0.1:6443", b"CA PEM");
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let invitation = super::super::new(
            "jane-x7k2q9".into(),
            "jane",
            &["dev".into()],
            &[Grant::ClusterRole("view".into())],
            Some(Duration::from_secs(3600)),
            super::super::DEFAULT_EXPIRY,
            now,
        );
        let path = default_path(Some(dir.path()), "jane");
        assert_eq!(path, dir.path().join("jane.invite"));
        write(&path, &render(&target, "s3cr3t", &invitation), false).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let opened = open(&path).unwrap();
        assert_eq!(
            opened.invited,
            Invited {
                name: "jane-x7k2q9".into(),
                user: "jane".into(),
                groups: vec!["dev".into()],
                duration: Some(Duration::from_secs(3600)),
                expires: invitation.expires.clone(),
            }
        );
        assert_eq!(opened.target.server, "https://10.0.0.1:6443");
        assert_eq!(opened.target.ca_pem.as_deref(), Some(&b"CA PEM"[..]));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("s3cr3t").count(), 1, "{text}");
        assert!(check_free(&path, false).is_err());

        std::fs::write(&path, "apiVersion: v1\nkind: Config\n").unwrap();
        let err = open(&path).err().unwrap().to_string();
        assert!(err.contains("is not a kubectl onboard invitation"), "{err}");
    }

    #[test]
    fn anything_but_a_token_for_one_cluster_is_refused() {
        let target = Target::for_server("prod", "https://10.0.0.1:6443", b"CA PEM");
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let invitation = super::super::new(
            "jane-x7k2q9".into(),
            "jane",
            &[],
            &[],
            None,
            super::super::DEFAULT_EXPIRY,
            now,
        );
        let good = render(&target, "s3cr3t", &invitation);
        assert_eq!(only_a_token(&good), Ok(()));
        let with = |pointer: &str, key: &str, value: Value| {
            let mut doc = good.clone();
            doc.pointer_mut(pointer).unwrap()[key] = value;
            only_a_token(&doc)
        };
        let exec = json!({"command": "sh", "args": ["-c", "touch /tmp/pwned"], "apiVersion": "client.authentication.k8s.io/v1"});
        for (pointer, key, value, named) in [
            ("/users/0/user", "exec", exec, "exec"),
            (
                "/users/0/user",
                "auth-provider",
                json!({"name": "oidc", "config": {"cmd-path": "/bin/sh"}}),
                "auth-provider",
            ),
            (
                "/users/0/user",
                "tokenFile",
                json!("/root/.git-credentials"),
                "tokenFile",
            ),
            ("/users/0/user", "username", json!("admin"), "username"),
            (
                "/users/0/user",
                "client-certificate",
                json!("/etc/ssl/me.crt"),
                "client-certificate",
            ),
            (
                "/users/0/user",
                "client-key-data",
                json!("AAAA"),
                "client-key-data",
            ),
            ("/users/0/user", "as", json!("system:admin"), "as"),
            (
                "/clusters/0/cluster",
                "proxy-url",
                json!("http://evil:3128"),
                "proxy-url",
            ),
            (
                "/clusters/0/cluster",
                "certificate-authority",
                json!("/etc/passwd"),
                "certificate-authority",
            ),
            ("", "users2", json!([]), "users2"),
        ] {
            let why = with(pointer, key, value).unwrap_err();
            assert!(why.contains(named), "{key}: {why}");
        }
        let mut two_users = good.clone();
        two_users["users"] =
            json!([{"name": "a", "user": {"token": "x"}}, {"name": "b", "user": {"exec": {}}}]);
        assert!(
            only_a_token(&two_users)
                .unwrap_err()
                .contains("exactly one")
        );
        let mut no_token = good.clone();
        no_token["users"][0]["user"] = json!({});
        assert!(only_a_token(&no_token).unwrap_err().contains("no token"));
        assert!(only_a_token(&json!("text")).is_err());

        // An inviter's proxy and CA path do not travel: the CA goes embedded.
        let mut proxied = Target::for_server("prod", "https://10.0.0.1:6443", b"CA PEM");
        proxied.cluster["proxy-url"] = json!("http://proxy.corp:3128");
        proxied.cluster["certificate-authority"] = json!("/home/admin/ca.crt");
        let rendered = render(&proxied, "s3cr3t", &invitation);
        assert_eq!(only_a_token(&rendered), Ok(()));
        assert!(
            rendered["clusters"][0]["cluster"]
                .get("proxy-url")
                .is_none()
        );
    }
}
