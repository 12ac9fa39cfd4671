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
        "clusters": [{"name": target.cluster_name, "cluster": kubeconfig::portable_cluster(target)}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": target.cluster_name, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
        "extensions": [{"name": EXTENSION, "extension": extension}],
    })
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
    let loaded = kubeconfig::load(Some(path))?;
    let not_one = |why: &str| {
        Error::failed(format!(
            "{} is not a kubectl onboard invitation ({why}); ask your administrator for the file kubectl onboard invite writes",
            path.display()
        ))
    };
    let document = loaded
        .merged
        .documents
        .first()
        .ok_or_else(|| not_one("it is empty"))?;
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
    use crate::rbac::Grant;

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
}
