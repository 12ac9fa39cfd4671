//! The kubeconfig (read first; the pipeline's write step adds to it). Read the files kubectl reads,
//! find the cluster of the context in use, and later add the new user and context to the file
//! kubectl would write them to.
//!
//! Every write: kubectl's lock, the files re-read under it (someone may have changed them while
//! we waited for approval), atomic replacement, and on any error every file as it was.

pub mod certificates;
pub mod credential;
pub mod edit;
pub mod file;
pub mod select;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use credential::Field;
use edit::{Document, Merged, Section};
use file::{Mode, Transaction};

/// The kubeconfig files kubectl would read, parsed.
#[derive(Debug)]
pub struct Loaded {
    pub sources: select::Sources,
    pub merged: Merged,
    /// Each document's text as read (same order), to tell under the lock whether its file has
    /// changed since; empty where that is not known.
    pub texts: Vec<String>,
}

/// The cluster the new user is for, as the kubeconfig describes it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The context whose cluster and credentials we use; `None` for a cluster known only from
    /// `--server` (offline), which no connection is opened with.
    pub context: Option<String>,
    pub cluster_name: String,
    /// The cluster entry's body, as written.
    pub cluster: Value,
    pub server: String,
    /// The cluster CA bundle (PEM), from certificate-authority-data or the file it names.
    pub ca_pem: Option<Vec<u8>>,
}

impl Target {
    /// Whether the cluster entry turns off the check of the server's certificate.
    pub fn skips_tls_verify(&self) -> bool {
        self.cluster.get("insecure-skip-tls-verify") == Some(&Value::Bool(true))
    }

    /// The once-said warning for a cluster used without checking whom we talk to.
    pub fn insecure_warning(&self) -> Option<String> {
        self.skips_tls_verify().then(|| format!(
            "cluster \"{}\" is used with insecure-skip-tls-verify: the server's certificate is not checked, so anyone in between can read and change what is sent; add its CA to the kubeconfig (certificate-authority-data)",
            self.cluster_name
        ))
    }

    /// A kubeconfig for someone else copies this cluster only when it checks the server, or
    /// when told (`allow_insecure`): the colleague would otherwise trust anyone in between.
    pub fn check_portable(&self, allow_insecure: bool) -> Result<()> {
        if !self.skips_tls_verify() || allow_insecure {
            return Ok(());
        }
        Err(Error::failed(format!(
            "cluster \"{}\" is set to insecure-skip-tls-verify, and a kubeconfig made for someone else would not check whom it talks to; nothing was sent: add the cluster's CA to your kubeconfig, or pass --allow-insecure-cluster to copy the setting",
            self.cluster_name
        )))
    }

    /// A cluster known only by its name, server and CA (offline: `--server`, the CA,
    /// `--cluster-name`).
    pub fn for_server(cluster_name: &str, server: &str, ca_pem: &[u8]) -> Target {
        Target {
            context: None,
            cluster_name: cluster_name.to_string(),
            cluster: json!({
                "certificate-authority-data": Base64::encode_string(ca_pem),
                "server": server,
            }),
            server: server.to_string(),
            ca_pem: Some(ca_pem.to_vec()),
        }
    }
}

/// What we add: a user with its credentials and a context that joins it to the cluster.
#[derive(Clone, Debug)]
pub struct Entries {
    pub user: String,
    pub user_body: Value,
    pub context: String,
    pub context_body: Value,
}

pub fn load(flag: Option<&Path>) -> Result<Loaded> {
    let env = std::env::var_os("KUBECONFIG");
    let sources = select::sources(
        flag,
        env.as_deref(),
        dirs::home_dir().as_deref(),
        |p: &Path| p.exists(),
    )?;
    // A symlink loop is one, not a missing file (a dangling link as the destination is fine:
    // kubectl writes through it).
    for path in flag.iter().copied().chain([sources.destination.as_path()]) {
        file::resolve_symlinks(path)?;
    }
    if let Some(path) = flag
        && !path.exists()
    {
        return Err(Error::failed(format!(
            "kubeconfig {} does not exist; pass an existing file to --kubeconfig",
            path.display()
        )));
    }
    let mut documents = Vec::with_capacity(sources.read.len());
    let mut texts = Vec::with_capacity(sources.read.len());
    for path in &sources.read {
        // kubectl writes in place under its lock: a file read meanwhile may be half written.
        file::wait_for_writer(path);
        let text = file::read(path)?.unwrap_or_default();
        documents.push(parse_document(path, &text)?);
        texts.push(text);
    }
    Ok(Loaded {
        sources,
        merged: Merged { documents },
        texts,
    })
}

/// A kubeconfig's text as a document, checked to be one.
pub fn parse_document(path: &Path, text: &str) -> Result<Document> {
    let value = yaml::parse(path, text)?;
    edit::check_shape(&value).map_err(|why| {
        Error::failed(format!(
            "kubeconfig {} cannot be used: {why}; check that it is a kubeconfig",
            path.display()
        ))
    })?;
    Ok(Document {
        path: path.to_path_buf(),
        value,
    })
}

impl Loaded {
    /// Where the files were looked for, for messages.
    fn looked_at(&self) -> String {
        if self.sources.read.is_empty() {
            return self.sources.destination.display().to_string();
        }
        let names: Vec<String> = self
            .sources
            .read
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        names.join(", ")
    }

    /// The cluster of `--context`, or of the current context, with its CA read (from the
    /// kubeconfig, or the file it names).
    pub fn read_target(&self, context: Option<&str>) -> Result<Target> {
        if self.merged.documents.is_empty() {
            return Err(Error::failed(format!(
                "no kubeconfig found at {}: set up access to the cluster first, or pass --kubeconfig FILE",
                self.looked_at()
            )));
        }
        let context = match context {
            Some(c) => c.to_string(),
            None => self.merged.current_context().map(|(_, c)| c.to_string()).ok_or_else(|| {
                Error::failed(format!(
                    "no current context in {}: pass --context NAME (kubectl config get-contexts lists them)",
                    self.looked_at()
                ))
            })?,
        };
        let (_, body) = self.merged.find(Section::Contexts, &context).ok_or_else(|| {
            Error::failed(format!(
                "context \"{context}\" is not in {}: kubectl config get-contexts lists the ones there are",
                self.looked_at()
            ))
        })?;
        let cluster_name = body
            .get("cluster")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::failed(format!("context \"{context}\" names no cluster; fix it with kubectl config set-context {context} --cluster NAME")))?
            .to_string();
        let (index, cluster) = self.merged.find(Section::Clusters, &cluster_name).ok_or_else(|| {
            Error::failed(format!(
                "context \"{context}\" points at cluster \"{cluster_name}\", which is not in {}; fix the context or add the cluster",
                self.looked_at()
            ))
        })?;
        let server = cluster
            .get("server")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::failed(format!(
                    "cluster \"{cluster_name}\" has no server URL; set one with kubectl config set-cluster {cluster_name} --server URL"
                ))
            })?
            .to_string();
        let origin = &self.merged.documents[index].path;
        Ok(Target {
            ca_pem: cluster_ca(cluster, origin, &cluster_name)?,
            context: Some(context),
            cluster_name,
            cluster: cluster.clone(),
            server,
        })
    }

    /// File `path` as it is now (read under its lock), parsed; `None` if it does not exist.
    /// When its text is what was read at first (the common case) the document parsed then is
    /// used again: parsing is most of the cost of writing a large kubeconfig.
    fn reread(&self, path: &Path) -> Result<Option<Value>> {
        let Some(text) = file::read(path)? else {
            return Ok(None);
        };
        let unchanged = self
            .merged
            .documents
            .iter()
            .zip(&self.texts)
            .find(|(d, read)| d.path == path && **read == text);
        Ok(Some(match unchanged {
            Some((d, _)) => d.value.clone(),
            None => parse_document(path, &text)?.value,
        }))
    }

    /// Refuses, before anything is sent to the cluster, names that are taken.
    pub fn check_free(&self, entries: &Entries) -> Result<()> {
        for (section, name) in [
            (Section::Users, &entries.user),
            (Section::Contexts, &entries.context),
        ] {
            if let Some((i, _)) = self.merged.find(section, name) {
                return Err(clash(section, name, &self.merged.documents[i].path));
            }
        }
        Ok(())
    }

    /// Adds (or with `force` replaces) the user and context; optionally switches to it.
    /// Writes through `tx`, so that the caller can undo it with anything else it wrote.
    /// Returns the files written.
    pub fn merge(
        &self,
        entries: &Entries,
        force: bool,
        use_context: bool,
        tx: &mut Transaction,
    ) -> Result<Vec<PathBuf>> {
        self.merge_with_cluster(entries, None, force, use_context, tx)
    }

    /// Whether cluster `name` is already there, and whether it is this one (same server and
    /// CA): offline mode adds the cluster itself.
    pub fn cluster_entry(&self, name: &str, server: &str, ca_pem: &[u8]) -> Result<ClusterEntry> {
        let Some((i, body)) = self.merged.find(Section::Clusters, name) else {
            return Ok(ClusterEntry::Absent);
        };
        let origin = &self.merged.documents[i].path;
        let same_server = body.get("server").and_then(Value::as_str) == Some(server);
        let same_ca =
            cluster_ca(body, origin, name)?.is_some_and(|ca| same_certificates(&ca, ca_pem));
        Ok(if same_server && same_ca {
            ClusterEntry::Same
        } else {
            ClusterEntry::Different(origin.clone())
        })
    }

    /// `merge`, and with `cluster` (name, body) that cluster entry too (replaced with `force`).
    pub fn merge_with_cluster(
        &self,
        entries: &Entries,
        cluster: Option<(&str, &Value)>,
        force: bool,
        use_context: bool,
        tx: &mut Transaction,
    ) -> Result<Vec<PathBuf>> {
        // An existing entry goes back to the file it came from; a new one to kubectl's choice.
        let home_of = |section, name: &str| match self.merged.find(section, name) {
            Some((i, _)) if force => self.merged.documents[i].path.clone(),
            _ => self.sources.destination.clone(),
        };
        let user_file = home_of(Section::Users, &entries.user);
        let context_file = home_of(Section::Contexts, &entries.context);
        let cluster_file = cluster.map(|(name, _)| home_of(Section::Clusters, name));
        let current_file = use_context.then(|| match self.merged.current_context() {
            Some((i, _)) => self.merged.documents[i].path.clone(),
            None => self.sources.destination.clone(),
        });
        let files: BTreeSet<&PathBuf> = [
            Some(&user_file),
            Some(&context_file),
            cluster_file.as_ref(),
            current_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect();

        // Lock all, in a stable order, before reading any.
        let _locks = files
            .iter()
            .map(|f| file::lock(f))
            .collect::<Result<Vec<_>>>()?;
        let mut updated = Vec::new();
        for path in &files {
            let mut doc = self.reread(path)?.unwrap_or_else(edit::empty);
            let mut put = |section, name: &str, body: &Value, home: Option<&PathBuf>| {
                if home != Some(*path) {
                    return Ok(());
                }
                edit::upsert(&mut doc, section, name, body.clone(), force)
                    .map(|_| ())
                    .map_err(|_| clash(section, name, path))
            };
            put(
                Section::Users,
                &entries.user,
                &entries.user_body,
                Some(&user_file),
            )?;
            let context = (&entries.context, &entries.context_body);
            put(Section::Contexts, context.0, context.1, Some(&context_file))?;
            if let Some((name, body)) = cluster {
                put(Section::Clusters, name, body, cluster_file.as_ref())?;
            }
            if current_file.as_ref() == Some(*path) {
                edit::set_current_context(&mut doc, &entries.context);
            }
            edit::check_shape(&doc).map_err(|why| {
                Error::failed(format!(
                    "cannot update kubeconfig {}: {why}; nothing was changed",
                    path.display()
                ))
            })?;
            updated.push(((*path).clone(), yaml::emit(&doc)?));
        }
        for (path, text) in &updated {
            tx.write(path, text.as_bytes(), Mode::Keep)?;
        }
        Ok(updated.into_iter().map(|(p, _)| p).collect())
    }
}

/// What the kubeconfig holds under a cluster name we are about to add.
#[derive(Debug, PartialEq)]
pub enum ClusterEntry {
    Absent,
    /// The same server and CA: nothing to add.
    Same,
    /// Another cluster by that name, in this file.
    Different(PathBuf),
}

/// Whether two PEM bundles hold the same certificates (whatever the line breaks).
pub fn same_certificates(a: &[u8], b: &[u8]) -> bool {
    match (
        crate::pki::pem::certificates(a),
        crate::pki::pem::certificates(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What `forget_user` took out of one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Forgotten {
    pub path: PathBuf,
    /// The user entry's body, if this file had one.
    pub user: Option<Value>,
    pub contexts: Vec<String>,
    /// The current-context this file set, now unset because its context is gone.
    pub unset_current_context: Option<String>,
}

impl Loaded {
    /// The files that define user `user` or a context of theirs, or whose current-context
    /// names such a context: what `forget_user` would change.
    pub fn files_of_user(&self, user: &str) -> Vec<PathBuf> {
        let docs: Vec<(&Path, &Value)> = self
            .merged
            .documents
            .iter()
            .map(|d| (d.path.as_path(), &d.value))
            .collect();
        let gone = forgotten_contexts(&docs, user);
        self.merged
            .documents
            .iter()
            .filter(|d| {
                d.entry(Section::Users, user).is_some()
                    || !edit::contexts_of(&d.value, user).is_empty()
                    || d.current_context()
                        .is_some_and(|c| gone.iter().any(|g| g == c))
            })
            .map(|d| d.path.clone())
            .collect()
    }

    /// Removes user `user` and every context that uses it, from every file that has them, and
    /// unsets a current-context that named one of those contexts (unless another file still
    /// defines a context of that name). Under kubectl's lock, on the files as re-read under it;
    /// written through `tx`, so that the caller can undo it. Only the files that change are
    /// written.
    pub fn forget_user(&self, user: &str, tx: &mut Transaction) -> Result<Vec<Forgotten>> {
        let mut files = self.files_of_user(user);
        files.sort();
        files.dedup();
        let _locks = files
            .iter()
            .map(|f| file::lock(f))
            .collect::<Result<Vec<_>>>()?;
        let mut fresh = Vec::with_capacity(files.len());
        for path in &files {
            if let Some(doc) = self.reread(path)? {
                fresh.push((path.clone(), doc));
            }
        }
        // Context names still defined after the removal, in any file kubectl reads.
        let after = |docs: &[(PathBuf, Value)]| -> BTreeSet<String> {
            let mut names = BTreeSet::new();
            for d in &self.merged.documents {
                let doc = docs
                    .iter()
                    .find(|(p, _)| *p == d.path)
                    .map(|(_, v)| v)
                    .unwrap_or(&d.value);
                names.extend(edit::names(doc, Section::Contexts));
            }
            names
        };
        let mut changed = Vec::new();
        let mut edited = fresh.clone();
        for (path, doc) in &mut edited {
            let user_body = doc
                .get(Section::Users.key())
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .find(|e| e.get("name").and_then(Value::as_str) == Some(user))
                })
                .map(|e| e.get("user").cloned().unwrap_or(Value::Null));
            edit::remove(doc, Section::Users, user);
            let contexts = edit::contexts_of(doc, user);
            for c in &contexts {
                edit::remove(doc, Section::Contexts, c);
            }
            changed.push(Forgotten {
                path: path.clone(),
                user: user_body,
                contexts,
                unset_current_context: None,
            });
        }
        let gone: BTreeSet<String> = changed.iter().flat_map(|f| f.contexts.clone()).collect();
        let remaining = after(&edited);
        for ((_, doc), forgotten) in edited.iter_mut().zip(&mut changed) {
            let current = doc
                .get("current-context")
                .and_then(Value::as_str)
                .map(String::from);
            if let Some(current) = current.filter(|c| gone.contains(c) && !remaining.contains(c)) {
                edit::set_current_context(doc, "");
                forgotten.unset_current_context = Some(current);
            }
        }
        let mut written = Vec::new();
        for (((path, doc), (_, original)), forgotten) in edited.iter().zip(&fresh).zip(changed) {
            if doc == original {
                continue;
            }
            edit::check_shape(doc).map_err(|why| {
                Error::failed(format!(
                    "cannot update kubeconfig {}: {why}; nothing was changed",
                    path.display()
                ))
            })?;
            tx.write(path, yaml::emit(doc)?.as_bytes(), Mode::Keep)?;
            written.push(forgotten);
        }
        Ok(written)
    }
}

/// The contexts `forget_user` removes, by name, over all files.
fn forgotten_contexts(docs: &[(&Path, &Value)], user: &str) -> BTreeSet<String> {
    docs.iter()
        .flat_map(|(_, v)| edit::contexts_of(v, user))
        .collect()
}

/// A kubeconfig that stands on its own: the cluster (CA embedded), the user, the context.
pub fn standalone(target: &Target, entries: &Entries) -> Result<Value> {
    let cluster = portable_cluster(target);
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": target.cluster_name, "cluster": cluster}],
        "contexts": [{"name": entries.context, "context": entries.context_body}],
        "current-context": entries.context,
        "preferences": {},
        "users": [{"name": entries.user, "user": entries.user_body}],
    }))
}

/// The cluster entry's body with its CA embedded: a path would not travel with the file.
pub fn portable_cluster(target: &Target) -> Value {
    let mut cluster = target.cluster.clone();
    if let Some(obj) = cluster.as_object_mut() {
        obj.remove("certificate-authority");
        if let Some(ca) = &target.ca_pem {
            obj.insert(
                "certificate-authority-data".into(),
                Value::String(Base64::encode_string(ca)),
            );
        }
    }
    cluster
}

/// Refuses to overwrite an existing `--output-kubeconfig` unless `force`.
pub fn check_output_free(path: &Path, force: bool) -> Result<()> {
    if force || !path.exists() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "{} already exists; pass --force to overwrite it, or choose another --output-kubeconfig",
        path.display()
    )))
}

/// Writes a standalone kubeconfig (it holds a private key: 0600), under kubectl's lock.
pub fn write_standalone(path: &Path, config: &Value, force: bool) -> Result<()> {
    let _lock = file::lock(path)?;
    check_output_free(path, force)?;
    file::write_atomic(path, yaml::emit(config)?.as_bytes(), Mode::Secret)
}

fn clash(section: Section, name: &str, path: &Path) -> Error {
    Error::failed(format!(
        "{} \"{name}\" already exists in {}; pass --force to replace it, or choose another name",
        section.singular(),
        path.display()
    ))
}

/// The CA bundle of a cluster entry (`None`: it names none, the system roots are used).
fn cluster_ca(cluster: &Value, origin: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    credential::read(cluster, origin, Field::CertificateAuthority)
        .map(|ca| ca.map(|ca| ca.bytes.to_vec()))
        .map_err(|e| Error::failed(format!("the CA of cluster \"{name}\": {e}; fix it there")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("onboard-forget-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn loaded(files: &[(&Path, Value)]) -> Loaded {
        let mut documents = Vec::new();
        for (path, value) in files {
            std::fs::write(path, yaml::emit(value).unwrap()).unwrap();
            documents.push(Document {
                path: path.to_path_buf(),
                value: value.clone(),
            });
        }
        Loaded {
            sources: select::Sources {
                read: files.iter().map(|(p, _)| p.to_path_buf()).collect(),
                destination: files[0].0.to_path_buf(),
            },
            merged: Merged { documents },
            texts: vec![],
        }
    }

    fn read(path: &Path) -> Value {
        yaml::parse(path, &std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn jane() -> Entries {
        Entries {
            user: "jane".into(),
            user_body: json!({"token": "t"}),
            context: "jane@c".into(),
            context_body: json!({"cluster": "c", "user": "jane"}),
        }
    }

    #[test]
    fn a_file_changed_after_it_was_read_is_merged_as_it_is_now() {
        let dir = scratch("changed");
        let path = dir.join("config");
        let before = json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://c"}}]});
        std::fs::write(&path, yaml::emit(&before).unwrap()).unwrap();
        let loaded = load(Some(&path)).unwrap();
        // Someone (kubectl) adds a context while we wait for the certificate.
        let mut now = before.clone();
        now["contexts"] = json!([{"name": "theirs", "context": {"cluster": "c", "user": "x"}}]);
        std::fs::write(&path, yaml::emit(&now).unwrap()).unwrap();

        Transaction::all(|tx| loaded.merge(&jane(), false, false, tx)).unwrap();
        let after = read(&path);
        assert_eq!(edit::names(&after, Section::Contexts), ["theirs", "jane@c"]);
        assert_eq!(edit::names(&after, Section::Users), ["jane"]);
    }

    #[test]
    fn a_file_being_written_under_kubectls_lock_is_read_once_the_writer_is_done() {
        let dir = scratch("writer");
        let path = dir.join("config");
        let whole = json!({"apiVersion": "v1", "kind": "Config", "current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]});
        // kubectl holds the lock and has truncated the file; it finishes 300 ms later.
        std::fs::write(file::lock_path(&path), b"").unwrap();
        std::fs::write(&path, b"").unwrap();
        let writer = {
            let (path, text) = (path.clone(), yaml::emit(&whole).unwrap());
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                std::fs::write(&path, text).unwrap();
                std::fs::remove_file(file::lock_path(&path)).unwrap();
            })
        };
        let loaded = load(Some(&path)).unwrap();
        writer.join().unwrap();
        assert_eq!(loaded.merged.current_context().map(|(_, c)| c), Some("c"));
    }

    #[test]
    fn a_symlink_loop_is_called_one() {
        let dir = scratch("loop");
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = load(Some(&a)).unwrap_err().to_string();
        assert!(err.contains("is a symlink loop"), "{err}");
    }

    #[test]
    fn an_unchanged_file_is_merged_from_the_first_read() {
        let dir = scratch("unchanged");
        let path = dir.join("config");
        let before = json!({"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "c", "cluster": {"server": "https://c"}}],
            "users": [{"name": "old", "user": {"token": "o"}}]});
        std::fs::write(&path, yaml::emit(&before).unwrap()).unwrap();
        let loaded = load(Some(&path)).unwrap();
        assert_eq!(loaded.texts.len(), 1);
        Transaction::all(|tx| loaded.merge(&jane(), false, true, tx)).unwrap();
        let mut want = before.clone();
        want["users"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "jane", "user": {"token": "t"}}));
        want["contexts"] = json!([{"name": "jane@c", "context": {"cluster": "c", "user": "jane"}}]);
        want["current-context"] = json!("jane@c");
        assert_eq!(read(&path), want);
    }

    #[test]
    fn forgetting_a_user_edits_each_file_it_is_in_and_nothing_else() {
        let dir = scratch("files");
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        let untouched =
            json!({"contexts": [{"name": "other", "context": {"user": "bob"}}], "x-keep": 1});
        let l = loaded(&[
            // The current context is defined in b; a names it.
            (
                &a,
                json!({"current-context": "jane@local", "users": [{"name": "bob", "user": {}}]}),
            ),
            (
                &b,
                json!({"users": [{"name": "jane", "user": {"token": "t"}}], "contexts": [{"name": "jane@local", "context": {"user": "jane"}}, {"name": "keep", "context": {"user": "bob"}}]}),
            ),
            (&c, untouched.clone()),
        ]);
        assert_eq!(l.files_of_user("jane"), [a.clone(), b.clone()]);
        let mut tx = Transaction::default();
        let done = l.forget_user("jane", &mut tx).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].unset_current_context.as_deref(), Some("jane@local"));
        assert_eq!(done[1].user, Some(json!({"token": "t"})));
        assert_eq!(done[1].contexts, ["jane@local"]);
        assert_eq!(
            read(&a),
            json!({"current-context": "", "users": [{"name": "bob", "user": {}}]})
        );
        assert_eq!(
            read(&b),
            json!({"users": [], "contexts": [{"name": "keep", "context": {"user": "bob"}}]})
        );
        assert_eq!(read(&c), untouched);
        assert!(!dir.join("a.lock").exists() && !dir.join("b.lock").exists());
        // Undo puts both files back.
        drop(tx);
        assert_eq!(read(&b)["users"][0]["name"], "jane");
    }

    #[test]
    fn a_current_context_still_defined_elsewhere_stays() {
        let dir = scratch("shadow");
        let (a, b) = (dir.join("a"), dir.join("b"));
        // a's "work" (bob's) wins over b's "work" (jane's): removing b's leaves "work" current.
        let l = loaded(&[
            (
                &a,
                json!({"current-context": "work", "contexts": [{"name": "work", "context": {"user": "bob"}}]}),
            ),
            (
                &b,
                json!({"contexts": [{"name": "work", "context": {"user": "jane"}}]}),
            ),
        ]);
        let done = Transaction::all(|tx| l.forget_user("jane", tx)).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].path, b);
        assert_eq!(done[0].unset_current_context, None);
        assert_eq!(read(&a)["current-context"], "work");
        assert_eq!(read(&b)["contexts"], json!([]));
    }
}
