//! Step 7: the kubeconfig. Read the files kubectl reads, find the cluster of the context in
//! use, and later add the new user and context to the file kubectl would write them to.
//!
//! Every write: kubectl's lock, the files re-read under it (someone may have changed them while
//! we waited for approval), atomic replacement, and on any error every file as it was.

pub mod edit;
pub mod file;
pub mod select;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use edit::{Document, Merged, Section};
use file::{Mode, Transaction};

/// The kubeconfig files kubectl would read, parsed.
#[derive(Debug)]
pub struct Loaded {
    pub sources: select::Sources,
    pub merged: Merged,
}

/// The cluster the new user is for, as the kubeconfig describes it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The context whose cluster and credentials we use.
    pub context: String,
    pub cluster_name: String,
    /// The cluster entry's body, as written.
    pub cluster: Value,
    pub server: String,
    /// The cluster CA bundle (PEM), from certificate-authority-data or the file it names.
    pub ca_pem: Option<Vec<u8>>,
}

/// What we add: a user with its credentials and a context that joins it to the cluster.
#[derive(Clone, Debug)]
pub struct Entries {
    pub user: String,
    pub user_body: Value,
    pub context: String,
    pub context_body: Value,
}

/// A cluster to add along with a user and context.
#[derive(Clone, Debug)]
pub struct ClusterEntry {
    pub name: String,
    pub body: Value,
}

pub fn load(flag: Option<&Path>) -> Result<Loaded> {
    let env = std::env::var_os("KUBECONFIG");
    let sources = select::sources(
        flag,
        env.as_deref(),
        dirs::home_dir().as_deref(),
        |p: &Path| p.exists(),
    )?;
    if let Some(path) = flag
        && !path.exists()
    {
        return Err(Error::failed(format!(
            "kubeconfig {} does not exist; pass an existing file to --kubeconfig",
            path.display()
        )));
    }
    let mut documents = Vec::with_capacity(sources.read.len());
    for path in &sources.read {
        let text = file::read(path)?.unwrap_or_default();
        documents.push(parse_document(path, &text)?);
    }
    Ok(Loaded {
        sources,
        merged: Merged { documents },
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

    /// The cluster of `--context`, or of the current context.
    pub fn target(&self, context: Option<&str>) -> Result<Target> {
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
            context,
            cluster_name,
            cluster: cluster.clone(),
            server,
        })
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

    /// [`Loaded::merge`], and a cluster entry too (`kubectl onboard import`), by the same
    /// rules: a new one goes to kubectl's file, one replaced with `force` to its own.
    pub fn merge_with_cluster(
        &self,
        entries: &Entries,
        cluster: Option<&ClusterEntry>,
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
        let current_file = use_context.then(|| match self.merged.current_context() {
            Some((i, _)) => self.merged.documents[i].path.clone(),
            None => self.sources.destination.clone(),
        });
        let cluster_file = cluster.map(|c| home_of(Section::Clusters, &c.name));
        let files: BTreeSet<&PathBuf> = [
            Some(&user_file),
            Some(&context_file),
            current_file.as_ref(),
            cluster_file.as_ref(),
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
            let mut doc = match file::read(path)? {
                Some(text) => parse_document(path, &text)?.value,
                None => edit::empty(),
            };
            let edit_error = |why: String| {
                Error::failed(format!(
                    "cannot update kubeconfig {}: {why}; nothing was changed",
                    path.display()
                ))
            };
            if let Some(c) = cluster
                && cluster_file.as_ref() == Some(*path)
            {
                edit::upsert(&mut doc, Section::Clusters, &c.name, c.body.clone(), force)
                    .map_err(|_| clash(Section::Clusters, &c.name, path))?;
            }
            if **path == user_file {
                edit::upsert(
                    &mut doc,
                    Section::Users,
                    &entries.user,
                    entries.user_body.clone(),
                    force,
                )
                .map_err(|_| clash(Section::Users, &entries.user, path))?;
            }
            if **path == context_file {
                edit::upsert(
                    &mut doc,
                    Section::Contexts,
                    &entries.context,
                    entries.context_body.clone(),
                    force,
                )
                .map_err(|_| clash(Section::Contexts, &entries.context, path))?;
            }
            if current_file.as_ref() == Some(*path) {
                edit::set_current_context(&mut doc, &entries.context);
            }
            edit::check_shape(&doc).map_err(edit_error)?;
            updated.push(((*path).clone(), yaml::emit(&doc)?));
        }
        for (path, text) in &updated {
            tx.write(path, text.as_bytes(), Mode::Keep)?;
        }
        Ok(updated.into_iter().map(|(p, _)| p).collect())
    }
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

/// Writes a standalone kubeconfig (it holds a private key: 0600), under kubectl's lock.
pub fn write_standalone(path: &Path, config: &Value, force: bool) -> Result<()> {
    let _lock = file::lock(path)?;
    if !force && file::resolve_symlinks(path)?.exists() {
        return Err(Error::failed(format!(
            "{} already exists; pass --force to overwrite it, or choose another --output-kubeconfig",
            path.display()
        )));
    }
    file::write_atomic(path, yaml::emit(config)?.as_bytes(), Mode::Secret)
}

fn clash(section: Section, name: &str, path: &Path) -> Error {
    Error::failed(format!(
        "{} \"{name}\" already exists in {}; pass --force to replace it, or choose another name",
        section.singular(),
        path.display()
    ))
}

/// The CA bundle of a cluster entry; a relative `certificate-authority` path is relative to
/// the kubeconfig that names it.
fn cluster_ca(cluster: &Value, origin: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    if let Some(data) = cluster
        .get("certificate-authority-data")
        .and_then(Value::as_str)
    {
        let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        return Base64::decode_vec(&cleaned).map(Some).map_err(|_| {
            Error::failed(format!(
                "cluster \"{name}\" has a certificate-authority-data that is not base64; fix it in {}",
                origin.display()
            ))
        });
    }
    let Some(path) = cluster.get("certificate-authority").and_then(Value::as_str) else {
        return Ok(None);
    };
    let path = match origin.parent() {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    };
    std::fs::read(&path).map(Some).map_err(|e| {
        Error::failed(format!(
            "cannot read the CA file {} of cluster \"{name}\": {}; fix certificate-authority in {}",
            path.display(),
            file::describe(&e),
            origin.display()
        ))
    })
}
