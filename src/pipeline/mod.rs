//! The one hallway every command that issues a certificate walks:
//!
//! ```text
//! key → request → certify → verify → prove → bind → write → report
//! ```
//!
//! What differs between `kubectl onboard <user>`, offline signing, `renew`, `sign`, `batch`
//! and `import` is data, not code: where the key comes from ([`crate::pki::key`]), who certifies
//! ([`Certifier`]: the cluster's CSR API or a local CA), whether the result can be proven
//! ([`Proof`]), and where it is written ([`Destination`], or in place for `renew`). Each
//! step is the file named after it; the commands only say what differs and report.

use std::time::Duration;

use crate::cluster;
use crate::duration::format_duration;
use crate::error::{Kind, Result};

pub mod bind;
pub mod certify;
pub mod key;
pub mod prove;
pub mod record;
pub mod write;

pub use bind::bind;
pub use certify::{Certified, Certifier, Subject};
pub use key::key;
pub use prove::{Proof, prove};
pub use write::{CredentialFiles, Credentials, Destination, Replaced, new_user_entries};

/// How long one call after the certificate (the proof, a binding) may take: the server
/// answered moments ago, so a longer silence is a stall, not a slow approval.
const SERVER_WAIT: Duration = Duration::from_secs(30);

/// `call` within `SERVER_WAIT`; a stall there changed no file.
async fn answered<T>(doing: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    let limit = format_duration(SERVER_WAIT);
    cluster::within(deadline, &limit, doing, call)
        .await
        .map_err(|e| match e.kind {
            Kind::Timeout => e.context("no file was changed"),
            _ => e,
        })
}
