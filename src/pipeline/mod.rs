//! The one hallway every command that issues a certificate walks:
//!
//! ```text
//! key → request → certify → verify → prove → bind → write → report
//! ```
//!
//! What differs between `kubectl onboard <user>`, offline signing, `renew`, `sign`, `batch`
//! and `import` is data, not code: where the key comes from ([`crate::key`]), who certifies
//! ([`Certifier`]: the cluster's CSR API or a local CA), whether the result can be proven
//! ([`Proof`]), and where it is written ([`Destination`], or in place for `renew`). Each
//! step is the file named after it; the commands only say what differs and report.

use std::time::Duration;

use crate::duration::format_duration;
use crate::error::{Error, Kind, Result};

pub mod bind;
pub mod certify;
pub mod key;
pub mod prove;
pub mod write;

pub use bind::bind;
pub use certify::{Certified, Certifier, Subject};
pub use key::key;
pub use prove::{Proof, prove};
pub use write::{CredentialFiles, Credentials, Destination, Replaced, new_user_entries};

/// How long one call after the certificate (the proof, a binding) may take: the server
/// answered moments ago, so a longer silence is a stall, not a slow approval.
const SERVER_WAIT: Duration = Duration::from_secs(30);

/// `call`, or a Timeout error naming what the server did not answer.
async fn answered<T>(doing: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(SERVER_WAIT, call).await.unwrap_or_else(|_| {
        Err(Error::new(
            Kind::Timeout,
            format!(
                "the API server did not answer within {} while {doing}: it stalled, or the network between is down; no file was changed",
                format_duration(SERVER_WAIT)
            ),
        ))
    })
}
