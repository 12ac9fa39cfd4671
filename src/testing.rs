//! Helpers for unit tests that need real certificates: openssl makes them, as an
//! administrator would.

use std::path::{Path, PathBuf};

/// A directory of its own under the temp dir, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "onboard-unit-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `openssl args` in `dir`; what it printed. A failure fails the test, with openssl's words.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A P-256 CA named `name`, made by openssl in `dir`: (certificate PEM, key PEM).
pub fn ca(dir: &Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let (crt, key, subject) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("/CN={name}"),
    );
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let files = [
        "-keyout",
        key.as_str(),
        "-out",
        crt.as_str(),
        "-subj",
        subject.as_str(),
    ];
    openssl(
        dir,
        &[&["req", "-x509"][..], &curve, &files, &["-days", "3"]].concat(),
    );
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    (read(&crt), read(&key))
}
