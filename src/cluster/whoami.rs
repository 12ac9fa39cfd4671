//! The SelfSubjectReview behind the pipeline's prove step (`pipeline/prove.rs`). With only the new
//! certificate and key, ask the cluster who we are (SelfSubjectReview, what `kubectl auth whoami`
//! uses).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Connection;
use crate::error::{Error, Result};
use crate::pki::key::PrivateKey;
use crate::ui::progress::Progress;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub groups: Vec<String>,
}

/// `None` when the cluster has no SelfSubjectReview API (before Kubernetes 1.28).
pub async fn prove(conn: &Connection, user: &str) -> Result<Option<Identity>> {
    let api: Api<SelfSubjectReview> = Api::all(conn.client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => {
            let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
            let identity = Identity {
                username: info.username.unwrap_or_default(),
                groups: info.groups.unwrap_or_default(),
            };
            if identity.username != user {
                return Err(Error::failed(format!(
                    "the cluster sees the new certificate as \"{}\", not \"{user}\" (an authenticating proxy or webhook maps it); nothing was written",
                    identity.username
                )));
            }
            Ok(Some(identity))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(kube::Error::Api(s)) if s.code == 401 => Err(Error::failed(
            "the API server does not accept the new certificate (401): its --client-ca-file does not trust the signer of kube-apiserver-client certificates; nothing was written (--no-verify writes it anyway)",
        )),
        Err(e) => Err(conn.api_error("proving the new credentials", e)),
    }
}

/// Proves `cert_pem` with `key` on the cluster of `conn`; warns when the cluster cannot tell.
pub async fn prove_certificate(
    conn: &Connection,
    cert_pem: &str,
    key: &PrivateKey,
    user: &str,
    progress: &mut Progress,
) -> Result<Option<Identity>> {
    let as_new_user = conn.as_certificate(cert_pem, &key.to_pem())?;
    let identity = prove(&as_new_user, user).await?;
    if identity.is_none() {
        progress.warn("the cluster has no SelfSubjectReview API (Kubernetes < 1.28); the new credentials were not proven");
    }
    Ok(identity)
}
