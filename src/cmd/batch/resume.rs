//! Resuming a batch: a user whose file is already there, for this cluster, with a valid
//! certificate for the right subject and the key that goes with it, is done. Anything else in
//! its place is not ours to overwrite without `--force`.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;
use x509_cert::Certificate;
use x509_cert::der::Decode;

use crate::flags::roster::Member;
use crate::kubeconfig::credential::{self, Field};
use crate::kubeconfig::edit::{Document, Section};
use crate::kubeconfig::{self, yaml};
use crate::pki::verify::{self, rfc3339};

/// `Ok(None)`: no file yet. `Ok(Some(not_after))`: done. `Err(why)`: something else is there.
/// Long because it reads a kubeconfig as a checklist, in the order a person would check it
/// (a kubeconfig, its context, cluster, server, user, certificate, key, CA), each step with
/// the words for what is wrong.
pub fn already_done(
    path: &Path,
    entry: &Member,
    server: &str,
    ca_pem: Option<&[u8]>,
    now: SystemTime,
) -> Result<Option<SystemTime>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot be read ({})",
                crate::kubeconfig::file::io_reason(&e)
            ));
        }
    };
    let not_a_kubeconfig = || "is not a kubeconfig written for this user".to_string();
    let doc = Document {
        path: path.to_path_buf(),
        value: yaml::parse(path, &text).map_err(|_| not_a_kubeconfig())?,
    };
    let current = doc.current_context().ok_or_else(not_a_kubeconfig)?;
    let context = doc
        .entry(Section::Contexts, current)
        .ok_or_else(not_a_kubeconfig)?;
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    if field(context, "user").as_deref() != Some(&entry.name) {
        return Err(not_a_kubeconfig());
    }
    let cluster = field(context, "cluster")
        .and_then(|name| doc.entry(Section::Clusters, &name))
        .ok_or_else(not_a_kubeconfig)?;
    let file_server = field(cluster, "server").unwrap_or_default();
    if file_server != server {
        return Err(format!("is for the server {file_server}, not {server}"));
    }
    let user = doc
        .entry(Section::Users, &entry.name)
        .ok_or_else(not_a_kubeconfig)?;
    let read = |field| match credential::read(user, path, field) {
        Ok(Some(credential)) => Ok(credential.bytes),
        Ok(None) => Err(not_a_kubeconfig()),
        Err(e) => Err(e.to_string()),
    };
    let cert_pem = read(Field::ClientCertificate)?;
    let key_pem = read(Field::ClientKey)?;
    let der = verify::first_certificate_der(&cert_pem)
        .map_err(|_| "holds no readable certificate".to_string())?;
    let cert = Certificate::from_der(&der).map_err(|_| "holds no readable certificate")?;
    let info = verify::inspect(&cert).map_err(|e| e.to_string())?;
    if info.common_name.as_deref() != Some(&entry.name) {
        return Err(format!(
            "holds a certificate for CN={}",
            info.common_name.unwrap_or_default()
        ));
    }
    let (mut got, mut want) = (info.organizations.clone(), entry.groups.clone());
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "holds a certificate for groups [{}], not [{}]",
            got.join(", "),
            want.join(", ")
        ));
    }
    if info.not_after <= now {
        return Err(format!(
            "holds a certificate that expired at {}",
            rfc3339(info.not_after)
        ));
    }
    let key =
        crate::pki::key::parse_pem(&key_pem).map_err(|_| "holds an unreadable key".to_string())?;
    if key.public_key_der() != info.public_key_der {
        return Err("holds a key that does not match its certificate".into());
    }
    // The same cluster: the CA this run would write. Whether the client certificate chains to
    // it is not asked again: the first run only warned about that (k3s and RKE2 sign client
    // certificates with another CA than the one that serves the API), and proved the pair.
    let file_ca = credential::read(cluster, path, Field::CertificateAuthority)
        .ok()
        .flatten()
        .map(|ca| ca.bytes.to_vec());
    if let Some(ca_pem) = ca_pem
        && !file_ca.is_some_and(|file_ca| kubeconfig::same_certificates(&file_ca, ca_pem))
    {
        return Err("trusts another CA for the server than the cluster's".into());
    }
    Ok(Some(info.not_after))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::kubeconfig::Target;
    use crate::pipeline::{Credentials, new_user_entries};
    use crate::pki::authority::Authority;
    use crate::pki::key::{KeyAlgorithm, KeySource, PrivateKey};
    use crate::testing::{Scratch, ca};

    #[test]
    fn a_user_is_done_as_the_first_run_judged_it_even_when_a_client_ca_signed_it() {
        let scratch = Scratch::new("resume");
        let dir = scratch.path();
        // k3s and RKE2: a client CA signs user certificates, the server CA is in the kubeconfig.
        let (client_ca, client_key) = ca(dir, "client-ca");
        let (server_ca, _) = ca(dir, "server-ca");
        let now = SystemTime::now();
        let authority = Authority::from_pem(client_ca, &client_key, now).unwrap();
        let key = PrivateKey::obtain(&KeySource::Generate(KeyAlgorithm::EcdsaP256)).unwrap();
        let groups = vec!["dev".to_string()];
        let day = Duration::from_secs(86_400);
        let signed = authority
            .sign("jane", &groups, &key.public_key_der(), day, now)
            .unwrap();
        let server = "https://10.0.0.1:6443";
        let target = Target::for_server("k3s", server, &server_ca);
        let key_pem = key.to_pem();
        let credentials = Credentials::Embedded {
            cert_pem: &signed.pem,
            key_pem: Some(&key_pem),
        };
        let entries = new_user_entries("jane", "k3s", "jane@k3s", credentials, None);
        let path = dir.join("jane.kubeconfig");
        let config = kubeconfig::standalone(&target, &entries).unwrap();
        std::fs::write(&path, yaml::emit(&config).unwrap()).unwrap();
        let member = Member {
            line: 1,
            name: "jane".into(),
            groups,
            duration: None,
            grants: vec![],
        };

        let done = already_done(&path, &member, server, Some(&server_ca), now).unwrap();
        assert!(done.is_some());
        // Another cluster's CA for the same server is not this run's file.
        let (other_ca, _) = ca(dir, "other-ca");
        let err = already_done(&path, &member, server, Some(&other_ca), now).unwrap_err();
        assert_eq!(err, "trusts another CA for the server than the cluster's");
    }
}
