//! Key: the private key, generated here or read from `--key`. It never leaves this process
//! except into the files the user asked for (0600).

use std::time::Instant;

use crate::error::Result;
use crate::pki::key::{KeySource, PrivateKey};
use crate::ui::progress::Progress;

/// The key read early from `--key`, or one generated now; says which.
pub fn key(
    source: &KeySource,
    supplied: Option<PrivateKey>,
    progress: &mut Progress,
) -> Result<PrivateKey> {
    let started = Instant::now();
    let key = match supplied {
        Some(key) => key,
        None => PrivateKey::obtain(source)?,
    };
    progress.phase("key", started);
    progress.step(&match source {
        KeySource::Generate(_) => format!("Generated a private key ({})", key.algorithm()),
        KeySource::File(path) => format!(
            "Using the private key in {} ({})",
            path.display(),
            key.algorithm()
        ),
    });
    Ok(key)
}
