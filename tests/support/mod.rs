//! Shared by the integration tests (`tests/integration/main.rs`), the benchmarks and
//! `cargo run --example cluster`.
//! Each of them uses a different part of it.
#![allow(dead_code, unused_imports)]

pub mod cluster;
// Needs the binary's path, which cargo gives to integration tests only.
#[cfg(test)]
pub mod onboard;

pub use cluster::{Cluster, Options};
