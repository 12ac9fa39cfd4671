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
