//! The integration tests, one crate: every module shares one control plane per run
//! (`support::Cluster::shared`), started on first use and torn down at exit. Tests that need a
//! control plane of their own (other flags, a restart, a policy taken apart) start one.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod batch;
mod cli;
mod completion;
mod controlplane;
mod inventory;
mod invitations;
mod krew;
mod lifecycle;
mod onboard;
mod output;
mod review;
mod revoke;
mod secrets;
mod twoparty;
