//! kubectl-onboard: a new Kubernetes user with a client certificate, in one command.
//!
//! The binary (`main.rs`) parses the command line and runs [`cmd::onboard::run`]; the modules are
//! public so that fuzz targets and benchmarks can reach the pure pieces.

pub mod access;
pub mod authority;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod csr;
pub mod duration;
pub mod error;
pub mod hint;
pub mod inventory;
pub mod invitation;
pub mod issue;
pub mod key;
pub mod keystore;
pub mod kubeconfig;
pub mod pipeline;
pub mod pki;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod rbac;
pub mod report;
pub mod review;
pub mod revocation;
pub mod session;
pub mod signals;
pub mod submit;
pub mod terminal;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;
pub mod verify;
pub mod wait;
pub mod whoami;
