//! kubectl-onboard: a new Kubernetes user with a client certificate, in one command.
//!
//! The binary (`main.rs`) parses the command line and runs [`cmd::onboard::run`]; the modules are
//! public so that fuzz targets and benchmarks can reach the pure pieces.

pub mod cluster;
pub mod cmd;
pub mod csr;
pub mod duration;
pub mod error;
pub mod flags;
pub mod invitation;
pub mod kubeconfig;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod records;
pub mod signals;
pub mod terminal;
#[cfg(test)]
pub(crate) mod testing;
pub mod ui;
