//! The connection to the cluster: a kube client for the context in use (kube reads the same
//! files kubectl reads and runs exec plugins and the like), and the one place where API errors
//! become sentences.

pub mod access;
pub mod rbac;
pub mod session;
pub mod tls;
pub mod whoami;

use std::error::Error as _;
use std::path::Path;

use base64ct::{Base64, Encoding};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::error::{Error, Kind, Result};
use crate::kubeconfig::credential::{self, Field};
use crate::kubeconfig::edit::Section;
use crate::kubeconfig::{Loaded, Target};

pub struct Connection {
    pub client: Client,
    pub config: Config,
    pub server: String,
}

impl Connection {
    pub async fn open(loaded: &Loaded, target: &Target) -> Result<Connection> {
        let config = Self::config(loaded, target).await?;
        Self::with_config(config, &target.server)
    }

    /// As [`Connection::open`], every answer of the API server awaited at most `limit` (connect,
    /// TLS handshake, and each read): for the commands that make a few calls and must end when
    /// the server stops answering. Not for watches, which wait for events by design.
    pub async fn open_bounded(
        loaded: &Loaded,
        target: &Target,
        limit: std::time::Duration,
    ) -> Result<Connection> {
        let mut config = Self::config(loaded, target).await?;
        config.connect_timeout = Some(limit);
        config.read_timeout = Some(limit);
        config.write_timeout = Some(limit);
        Self::with_config(config, &target.server)
    }

    /// As [`Connection::open`], for a shell's completion, which must never wait on a person: an
    /// exec plugin gets no terminal (it may not prompt: `interactiveMode: Never`), and an
    /// auth-provider's command is not run (its user goes unauthenticated).
    pub async fn open_non_interactive(loaded: &Loaded, target: &Target) -> Result<Connection> {
        let mut config = Self::config(loaded, target).await?;
        if let Some(exec) = config.auth_info.exec.as_mut() {
            exec.interactive_mode = Some(kube::config::ExecInteractiveMode::Never);
        }
        config.auth_info.auth_provider = None;
        Self::with_config(config, &target.server)
    }

    /// The cluster of `target` without credentials: to prove new ones with
    /// [`Connection::as_certificate`] when the context's user holds no key yet (import).
    pub async fn open_unauthenticated(loaded: &Loaded, target: &Target) -> Result<Connection> {
        let mut config = Self::config(loaded, target).await?;
        config.auth_info = AuthInfo::default();
        Self::with_config(config, &target.server)
    }

    async fn config(loaded: &Loaded, target: &Target) -> Result<Config> {
        let context = target.context.as_deref().ok_or_else(|| {
            Error::failed(format!(
                "cluster \"{}\" is known only from --server, not from a kubeconfig context: there are no credentials to connect with",
                target.cluster_name
            ))
        })?;
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig_for(loaded, context)?, &options)
                .await
                .map_err(|e| {
                    Error::failed(format!(
                        "cannot use context \"{context}\": {e}; check it with kubectl --context {context} cluster-info"
                    ))
                })?;
        let user = loaded
            .merged
            .find(Section::Contexts, context)
            .and_then(|(_, body)| body.get("user").and_then(Value::as_str))
            .unwrap_or(context);
        bearer_token_as_kubectl_sends_it(&mut config, user)?;
        client_key_belongs_to_certificate(loaded, user)?;
        Ok(config)
    }

    fn with_config(config: Config, server: &str) -> Result<Connection> {
        let client = client_without_panics(config.clone())?.map_err(|e| match e {
            kube::Error::Auth(e) => Error::failed(format!(
                "cannot get the credentials of the kubeconfig's user for {server}: {}; check the user entry (exec plugin, token file)",
                credential_failure(&e, &config)
            )),
            kube::Error::ProxyProtocolUnsupported { proxy_url }
            | kube::Error::ProxyProtocolDisabled { proxy_url, .. } => Error::failed(format!(
                "the cluster's proxy-url {} uses a scheme kubectl onboard cannot use: give an http://, https:// or socks5:// proxy",
                proxy_url.scheme_str().map_or("(no scheme)".to_string(), |s| format!("{s}://…"))
            )),
            e => Error::failed(format!(
                "cannot set up a connection to {server}: {}; check the kubeconfig's certificates and keys",
                top_message(&e)
            )),
        })?;
        Ok(Connection {
            client,
            config,
            server: server.to_string(),
        })
    }

    /// The same cluster, authenticated only by the new certificate and key.
    pub fn as_certificate(&self, cert_pem: &str, key_pem: &str) -> Result<Connection> {
        let mut config = self.config.clone();
        config.auth_info = AuthInfo {
            client_certificate_data: Some(Base64::encode_string(cert_pem.as_bytes())),
            client_key_data: Some(Base64::encode_string(key_pem.as_bytes()).into()),
            ..Default::default()
        };
        Self::with_config(config, &self.server)
    }

    /// `doing` completes "… while {doing}"; e.g. "creating the CertificateSigningRequest".
    pub fn api_error(&self, doing: &str, e: kube::Error) -> Error {
        let server = &self.server;
        match e {
            kube::Error::Api(status) => match status.code {
                401 => Error::failed(format!(
                    "the API server at {server} rejected your credentials (401 Unauthorized) while {doing}; log in again: a token or certificate may have expired"
                )),
                // Refused by admission, not by RBAC: no permission would help. (A revoked
                // certificate's refusal says so in its message.)
                403 if status.message.contains("ValidatingAdmissionPolicy")
                    || status.message.contains("admission webhook") =>
                {
                    Error::failed(format!(
                        "refused by an admission policy of the cluster while {doing}: {}; a revoked certificate needs a new one from an administrator, any other refusal is for the cluster's administrators to explain",
                        crate::terminal::printable(&status.message)
                    ))
                }
                403 => Error::failed(format!(
                    "forbidden while {doing}: {}; ask an administrator for the permission",
                    status.message
                )),
                // A proxy in front may answer with a page of HTML: not worth quoting.
                code if status.message.contains('<') || status.message.len() > 300 => {
                    Error::failed(format!(
                        "the API server at {server} answered {code} while {doing}, without a Kubernetes status; check the server URL and any proxy in between"
                    ))
                }
                code => Error::failed(format!(
                    "the API server answered {code} {} while {doing}: {}",
                    status.reason, status.message
                )),
            },
            kube::Error::Auth(e) => Error::failed(format!(
                "cannot get credentials for the context while {doing}: {}; check the kubeconfig's user (exec plugin, token file)",
                credential_failure(&e, &self.config)
            )),
            other if timed_out(&other) => Error::new(
                Kind::Timeout,
                format!(
                    "the API server at {server} did not answer within {} while {doing}: it stalled, or the network between is down; check the cluster, or allow more with --request-timeout",
                    self.config
                        .read_timeout
                        .map_or("its limit".to_string(), crate::duration::format_duration)
                ),
            ),
            other => Error::failed(format!(
                "cannot reach the API server at {server} while {doing}: {}; check that the cluster is up and the kubeconfig's server URL and CA",
                chain(&other)
            )),
        }
    }
}

/// `call`, unless `deadline` passes first: then a Timeout error saying the server stopped
/// answering while `doing` (`limit`: what it was given, for the message). Every call that a
/// stalled server could hold forever goes through here.
pub async fn within<T>(
    deadline: tokio::time::Instant,
    limit: &str,
    doing: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                Kind::Timeout,
                format!(
                    "the API server did not answer within {limit} while {doing}: it stalled, or the network between is down"
                ),
            ))
        })
}

/// The user's bearer token as kubectl sends it. A `tokenFile` is read and trimmed, as
/// client-go does (kube would send the file's final newline, which no header may hold). A token
/// that cannot be an HTTP header value (a line break, another control character) is an error
/// that names the user entry, never the token: kubectl refuses it too, and kube would panic
/// building the client.
fn bearer_token_as_kubectl_sends_it(config: &mut Config, user: &str) -> Result<()> {
    let auth = &mut config.auth_info;
    let basic = auth.username.is_some() && auth.password.is_some();
    if auth.auth_provider.is_some() || basic {
        return Ok(()); // kube uses these before any token
    }
    if auth.token.is_none()
        && let Some(file) = auth.token_file.take()
    {
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Error::failed(format!(
                "cannot read the tokenFile {file} of user \"{user}\": {}",
                crate::kubeconfig::file::io_reason(&e)
            ))
        })?;
        auth.token = Some(text.trim().to_string().into());
    }
    if let Some(token) = &auth.token
        && !header_value(token.expose_secret())
    {
        return Err(Error::failed(format!(
            "the token of user \"{user}\" cannot be sent in an HTTP header: it holds a line break or another control character (a YAML 'token: |' keeps its final newline); fix it in the kubeconfig"
        )));
    }
    Ok(())
}

/// kubectl's "tls: private key does not match public key", made here because rustls no longer
/// makes it (tls.rs). Credentials that cannot be read are left for kube to report.
fn client_key_belongs_to_certificate(loaded: &Loaded, user: &str) -> Result<()> {
    let Some((i, body)) = loaded.merged.find(Section::Users, user) else {
        return Ok(());
    };
    let origin = &loaded.merged.documents[i].path;
    let read = |field| credential::read(body, origin, field).ok().flatten();
    if let (Some(certificate), Some(key)) = (read(Field::ClientCertificate), read(Field::ClientKey))
    {
        crate::cluster::tls::check_pair(&certificate.bytes, &key.bytes).map_err(|what| {
            Error::failed(format!(
                "{what} of user \"{user}\" in {}: they are from different pairs; fix the user entry (kubectl fails on it too)",
                origin.display()
            ))
        })?;
    }
    Ok(())
}

/// Whether `Bearer <token>` is a valid HTTP header value (the `http` crate's rule: visible
/// ASCII, space, tab and bytes from 0x80 on).
fn header_value(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// `Client::try_from`, where kube runs an exec plugin: a token from the plugin that is no valid
/// header value makes tower-http panic ("token is not valid header"). That panic becomes this
/// error, naming neither the token nor the plugin's output.
fn client_without_panics(config: Config) -> Result<std::result::Result<Client, kube::Error>> {
    crate::cluster::tls::install();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Client::try_from(config)));
    std::panic::set_hook(previous);
    made.map_err(|_| {
        Error::failed(
            "the credentials of the kubeconfig's user cannot be sent in an HTTP header (a token with a line break or another control character, from the kubeconfig or its exec plugin); fix the user entry or the plugin",
        )
    })
}

/// A kube `Kubeconfig` of just `context`, its cluster and its user, from the documents already
/// parsed: each entry from the first file that defines it (client-go's first-wins), with relative
/// file paths resolved against that file's directory, as `Kubeconfig::read_from` does. Parsing
/// every file again into kube's types would cost as much as reading it did (a kubeconfig of
/// 5,000 users: about 150 ms), for entries the connection never uses.
fn kubeconfig_for(loaded: &Loaded, context: &str) -> Result<Kubeconfig> {
    let merged = &loaded.merged;
    let mut config = json!({"apiVersion": "v1", "kind": "Config", "current-context": context});
    let mut add = |section: Section, name: &str| {
        if let Some((i, body)) = merged.find(section, name) {
            let mut body = body.clone();
            if let Some(dir) = merged.documents[i].path.parent() {
                absolute_paths(&mut body, section, dir);
            }
            config[section.key()] = json!([{"name": name, section.singular(): body}]);
        }
    };
    add(Section::Contexts, context);
    let body = merged.find(Section::Contexts, context).map(|(_, b)| b);
    let named = |field: &str| body.and_then(|b| b.get(field)).and_then(Value::as_str);
    if let Some(cluster) = named("cluster") {
        add(Section::Clusters, cluster);
    }
    if let Some(user) = named("user") {
        add(Section::Users, user);
    }
    // serde's message could quote a value, and a kubeconfig holds secrets: name the entries.
    serde_json::from_value(config).map_err(|_| {
        Error::failed(format!(
            "the entries of context \"{context}\" (the context, its cluster or its user) have a field of the wrong type; check them with kubectl config view"
        ))
    })
}

/// The file fields client-go resolves against the kubeconfig's directory; an exec command only
/// when it holds a path separator (a bare name is looked up on PATH).
fn absolute_paths(body: &mut Value, section: Section, dir: &Path) {
    let fields: &[&str] = match section {
        Section::Clusters => &["certificate-authority"],
        Section::Users => &["client-certificate", "client-key", "tokenFile"],
        Section::Contexts => &[],
    };
    let resolve = |value: &mut Value| {
        if let Some(path) = value.as_str().filter(|p| Path::new(p).is_relative())
            && let Some(absolute) = dir.join(path).to_str()
        {
            *value = Value::String(absolute.to_string());
        }
    };
    for field in fields {
        if let Some(value) = body.get_mut(*field) {
            resolve(value);
        }
    }
    if section == Section::Users
        && let Some(command) = body.pointer_mut("/exec/command")
        && command
            .as_str()
            .is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR))
    {
        resolve(command);
    }
}

/// Why credentials could not be had, without anything an exec plugin printed: its output holds
/// a token when it works and may when it fails, and its error stream is its own business. The
/// plugin is named with its exit status; run it by hand to read what it says.
fn credential_failure(e: &kube::client::AuthError, config: &Config) -> String {
    use kube::client::AuthError;
    match e {
        AuthError::AuthExecRun { out, .. } => {
            let exec = config.auth_info.exec.as_ref();
            let program = exec.and_then(|e| e.command.as_deref()).unwrap_or("(unnamed)");
            format!(
                "the exec plugin {program} failed ({}); run it yourself to read its messages",
                out.status
            )
        }
        AuthError::AuthExecParse(_) | AuthError::ParseTokenKey(_) => {
            "the exec plugin printed something that is not an ExecCredential".to_string()
        }
        AuthError::AuthExec(_) => "the credential plugin failed".to_string(),
        AuthError::InvalidBearerToken(_) | AuthError::InvalidBasicAuth(_) => {
            "the credential cannot be sent in an HTTP header (a line break or another control character)".to_string()
        }
        other => other.to_string(),
    }
}

fn top_message(e: &dyn std::error::Error) -> String {
    e.to_string()
}

/// "a: b: c" for an error and its sources, without repeats (connection errors nest deeply).
/// Whether `e` is an answer that did not come in time (a read or connect timeout).
fn timed_out(e: &kube::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if s.to_string().contains("timed out") {
            return true;
        }
        source = s.source();
    }
    false
}

fn chain(e: &kube::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::kubeconfig::edit::{Document, Merged};
    use crate::kubeconfig::select::Sources;

    fn loaded(files: &[(&str, Value)]) -> Loaded {
        let documents: Vec<Document> = files
            .iter()
            .map(|(path, value)| Document {
                path: PathBuf::from(path),
                value: value.clone(),
            })
            .collect();
        Loaded {
            sources: Sources {
                read: documents.iter().map(|d| d.path.clone()).collect(),
                destination: documents[0].path.clone(),
            },
            merged: Merged { documents },
            texts: vec![],
        }
    }

    #[test]
    fn only_the_context_its_cluster_and_its_user_first_file_wins_paths_made_absolute() {
        let first = json!({
            "current-context": "other",
            "contexts": [
                {"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
                {"name": "other", "context": {"cluster": "x", "user": "y"}},
            ],
            "users": [
                {"name": "u", "user": {"client-certificate": "certs/u.crt", "client-key": "/abs/u.key",
                    "exec": {"command": "./bin/login", "apiVersion": "client.authentication.k8s.io/v1"}}},
                {"name": "y", "user": {"token": "not-for-this-context"}},
            ],
        });
        let second = json!({
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443", "certificate-authority": "ca.crt"}}],
            "users": [{"name": "u", "user": {"token": "shadowed: the first file wins"}}],
        });
        let config = kubeconfig_for(
            &loaded(&[("/home/a/.kube/config", first), ("/etc/kube/more", second)]),
            "dev",
        )
        .unwrap();
        assert_eq!(config.current_context.as_deref(), Some("dev"));
        assert_eq!(config.contexts.len(), 1);
        let context = config.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("team"));
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some("/etc/kube/ca.crt")
        );
        assert_eq!(config.auth_infos.len(), 1);
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.client_certificate.as_deref(),
            Some("/home/a/.kube/certs/u.crt")
        );
        assert_eq!(user.client_key.as_deref(), Some("/abs/u.key"));
        assert!(user.token.is_none());
        let exec = user.exec.as_ref().unwrap();
        assert_eq!(exec.command.as_deref(), Some("/home/a/.kube/./bin/login"));
    }

    #[test]
    fn a_bare_exec_command_stays_a_path_lookup() {
        let doc = json!({
            "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
            "users": [{"name": "u", "user": {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}}}],
        });
        let config = kubeconfig_for(&loaded(&[("/k/config", doc)]), "dev").unwrap();
        let exec = config.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref();
        assert_eq!(exec.unwrap().command.as_deref(), Some("aws"));
    }

    #[test]
    fn a_wrong_type_names_the_context_and_never_quotes_the_value() {
        let doc = json!({
            "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
            "users": [{"name": "u", "user": {"token": ["s3cr3t-t0ken"]}}],
        });
        let err = kubeconfig_for(&loaded(&[("/k/config", doc)]), "dev")
            .unwrap_err()
            .to_string();
        assert!(err.contains("context \"dev\""), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
