//! Reading and writing kubeconfig files the way kubectl does, but safely: kubectl's lock
//! (`<file>.lock`, O_CREAT|O_EXCL), then a temporary file in the target's directory, fsync,
//! rename over the target (through symlinks), fsync the directory. The target's mode and owner
//! are kept; a new file is 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long to wait for another writer's lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(3);
const NEW_FILE_MODE: u32 = 0o600;
const NEW_DIR_MODE: u32 = 0o755;

/// kubectl's lock on one kubeconfig; removed when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The lock kubectl takes: the path as configured (not the symlink's target) plus `.lock`.
pub fn lock_path(config: &Path) -> PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes and releases the lock, and checks that an existing file may be written: a stale lock,
/// or a directory or file we may not write, is found before the flow asks the cluster for
/// anything. A missing directory is left to the write, which creates it.
pub fn probe(config: &Path) -> Result<()> {
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Ok(()),
        _ => {
            lock(config)?;
            let target = resolve_symlinks(config)?;
            match fs::metadata(&target) {
                Ok(meta) => writable(&target, &meta),
                Err(_) => Ok(()),
            }
        }
    }
}

/// The mode of `path` when group or others may read it: a private key written into it would be
/// theirs to read (kubectl keeps a file's mode when it writes).
pub fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

fn locked(config: &Path, lock: &Path) -> Error {
    Error::failed(format!(
        "kubeconfig {} is locked: {} exists, so another kubectl is writing it or one was killed; if none is running, delete {} and try again",
        config.display(),
        lock.display(),
        lock.display()
    ))
}

pub fn lock(config: &Path) -> Result<Lock> {
    let path = lock_path(config);
    // As client-go's lockFile: a missing directory is made first (a first kubeconfig).
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        create_dir(dir)?;
    }
    let started = Instant::now();
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&path)
        {
            Ok(_) => return Ok(Lock { path }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(locked(config, &path)),
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot lock kubeconfig {}: creating {} failed: {}; check that its directory is writable",
                    config.display(),
                    path.display(),
                    io_reason(&e)
                )));
            }
        }
    }
}

/// Waits (as long as for a lock, at most) while another writer holds kubectl's lock on
/// `config`: kubectl truncates and rewrites the file in place, so a read during its write can
/// see half a file. A lock still there after that is left to the write to report.
pub fn wait_for_writer(config: &Path) {
    let lock = lock_path(config);
    let started = Instant::now();
    while lock.exists() && started.elapsed() < LOCK_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The most a kubeconfig may hold: far beyond any real one, far below what exhausts memory.
const MAX_KUBECONFIG: u64 = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of `path`; a larger file (or an endless one, such as a device)
/// is an error of kind `FileTooLarge`, read no further.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            ErrorKind::FileTooLarge,
            format!("it is larger than {} KiB", limit / 1024),
        ));
    }
    Ok(bytes)
}

/// The file's text, or `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<String>> {
    match read_capped(path, MAX_KUBECONFIG) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::failed(format!(
                "kubeconfig {} is not UTF-8 text; check that it is a kubeconfig",
                path.display()
            ))
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::failed(format!(
            "cannot read kubeconfig {}: {}; check its permissions",
            path.display(),
            io_reason(&e)
        ))),
    }
}

/// Follows a chain of symlinks to the file that is really written, even when it does not exist
/// yet (a dangling link is written through, as kubectl does).
pub fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    fs::read_link(&current).map_err(|e| io_error(&current, "read the link", &e))?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::failed(format!(
        "{} is a symlink loop; point it at a real file",
        path.display()
    )))
}

/// How a written file's mode is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An existing file keeps its mode; a new one is 0600.
    Keep,
    /// Always 0600: the file holds a private key.
    Secret,
}

/// Writes several files so that either all of them change or, on an error, each is put back
/// as it was (a file that did not exist is removed again). A transaction that is dropped
/// without [`Transaction::commit`] rolls back by itself: an early `?` (or a panic) can never
/// leave half of a change behind.
#[derive(Default)]
pub struct Transaction {
    done: Vec<(PathBuf, Option<Vec<u8>>, Mode)>,
}

impl Transaction {
    /// Runs `writes` in a new transaction: committed when it returns `Ok`, rolled back when it
    /// returns an error.
    pub fn all<T>(writes: impl FnOnce(&mut Transaction) -> Result<T>) -> Result<T> {
        let mut tx = Transaction::default();
        let value = writes(&mut tx)?;
        tx.commit();
        Ok(value)
    }

    pub fn write(&mut self, path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
        let original = match fs::read(resolve_symlinks(path)?) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(path, "read", &e)),
        };
        write_atomic(path, contents, mode)?;
        self.done.push((path.to_path_buf(), original, mode));
        Ok(())
    }

    /// Keeps every write.
    pub fn commit(mut self) {
        self.done.clear();
    }

    /// Undoes every write, newest first; best effort, as the error that got us here is the
    /// one to report.
    fn roll_back(&mut self) {
        for (path, original, mode) in self.done.drain(..).rev() {
            let _ = match original {
                Some(bytes) => write_atomic(&path, &bytes, mode),
                None => fs::remove_file(resolve_symlinks(&path).unwrap_or(path))
                    .map_err(|_| Error::failed("")),
            };
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.roll_back();
    }
}

/// Replaces `path` with `contents`, atomically. A kubeconfig (`Mode::Keep`) is written through
/// its symlinks, as kubectl does, keeping its mode and owner; one we may not write, or whose
/// owner we could not keep, is refused rather than replaced behind its owner's back. A file
/// that holds a secret (`Mode::Secret`) is never written through a symlink and always belongs
/// to the caller, 0600.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    let target = match mode {
        Mode::Keep => resolve_symlinks(path)?,
        Mode::Secret => not_a_symlink(path)?,
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = match fs::metadata(&target) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&target, "inspect", &e)),
    };
    if existing.is_none() {
        create_dir(&dir)?;
    }
    if let (Mode::Keep, Some(meta)) = (mode, &existing) {
        writable(&target, meta)?;
    }
    let file_mode = match (mode, &existing) {
        (Mode::Keep, Some(meta)) => meta.permissions().mode() & 0o7777,
        _ => NEW_FILE_MODE,
    };
    let tmp = temp_path(&dir, &target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, "create", &e))?;
        file.write_all(contents)
            .map_err(|e| io_error(&tmp, "write", &e))?;
        // Exact mode, whatever the umask.
        file.set_permissions(fs::Permissions::from_mode(file_mode))
            .map_err(|e| io_error(&tmp, "set the mode of", &e))?;
        // A kubeconfig keeps its owner (root editing a user's file); one whose owner we cannot
        // keep is not replaced. A secret's file is the caller's, whoever owned the old one.
        if let (Mode::Keep, Some(meta)) = (mode, &existing)
            && meta.uid() != tmp_owner(&file)
            && std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid())).is_err()
        {
            return Err(Error::failed(format!(
                "{} belongs to another user (uid {}), and replacing it would make it yours; nothing was changed: ask its owner, or use a kubeconfig of your own (--kubeconfig)",
                target.display(),
                meta.uid()
            )));
        }
        file.sync_all().map_err(|e| io_error(&tmp, "flush", &e))?;
        fs::rename(&tmp, &target).map_err(|e| io_error(&target, "replace", &e))?;
        // The rename is durable once the directory is.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `path` itself when it is no symlink (a secret is never written through one: a link planted
/// in a shared directory would send it wherever it points).
fn not_a_symlink(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::failed(format!(
            "{} is a symlink, and a file that holds a private key is never written through one; nothing was changed: remove the link or choose another path",
            path.display()
        ))),
        _ => Ok(path.to_path_buf()),
    }
}

/// Refuses an existing kubeconfig the caller may not write (a 0400 file, another user's file):
/// kubectl could not write it either, and a rename would replace it all the same.
fn writable(target: &Path, meta: &fs::Metadata) -> Result<()> {
    match OpenOptions::new().write(true).open(target) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(Error::failed(format!(
            "kubeconfig {} is not writable for you (mode {:04o}, owner uid {}), so kubectl could not write it either; nothing was changed: fix its permissions or use another --kubeconfig",
            target.display(),
            meta.permissions().mode() & 0o7777,
            meta.uid()
        ))),
        Err(e) => Err(io_error(target, "open", &e)),
    }
}

fn tmp_owner(file: &File) -> u32 {
    file.metadata().map(|m| m.uid()).unwrap_or(0)
}

fn temp_path(dir: &Path, target: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    dir.join(format!(
        ".{name}.onboard-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(NEW_DIR_MODE)
        .create(dir)
        .map_err(|e| io_error(dir, "create the directory", &e))
}

fn io_error(path: &Path, action: &str, e: &std::io::Error) -> Error {
    Error::failed(format!(
        "cannot {action} {}: {}; nothing was changed",
        path.display(),
        io_reason(e)
    ))
}

/// The OS error without Rust's "(os error N)" suffix, plus what usually helps.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    match e.raw_os_error() {
        Some(28) => format!("{text} (free some space)"),
        Some(30) => format!("{text} (the file system is mounted read-only)"),
        _ => text,
    }
}

/// The output directory, created 0700 (it will hold private keys).
/// `--output-dir`, made 0700 if it is not there.
pub fn make_output_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) if dir.is_dir() => Ok(()),
        Ok(()) => Err(Error::failed(format!(
            "--output-dir {} is not a directory",
            dir.display()
        ))),
        Err(e) => Err(Error::failed(format!(
            "cannot create --output-dir {}: {}",
            dir.display(),
            io_reason(&e)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("onboard-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn new_file_is_0600_and_existing_mode_is_kept() {
        let dir = scratch("mode");
        let new = dir.join("new");
        write_atomic(&new, b"a", Mode::Keep).unwrap();
        assert_eq!(
            fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let old = dir.join("old");
        fs::write(&old, b"x").unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&old, b"y", Mode::Keep).unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"y");
        assert_eq!(
            fs::metadata(&old).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn writes_through_symlinks_and_keeps_the_link() {
        let dir = scratch("link");
        let real = dir.join("real");
        fs::write(&real, b"old").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        write_atomic(&link, b"new", Mode::Keep).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn missing_directory_is_created() {
        let dir = scratch("mkdir");
        let deep = dir.join("a/b/config");
        write_atomic(&deep, b"x", Mode::Keep).unwrap();
        assert_eq!(fs::read(&deep).unwrap(), b"x");
    }

    #[test]
    fn secret_files_are_0600_even_when_they_were_not() {
        let dir = scratch("secret");
        let key = dir.join("key");
        fs::write(&key, b"x").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&key, b"k", Mode::Secret).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn an_uncommitted_transaction_restores_old_files_and_removes_new_ones() {
        let dir = scratch("tx");
        let old = dir.join("old");
        fs::write(&old, b"before").unwrap();
        let new = dir.join("new");
        let mut tx = Transaction::default();
        tx.write(&old, b"after", Mode::Keep).unwrap();
        tx.write(&new, b"created", Mode::Keep).unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"after");
        drop(tx);
        assert_eq!(fs::read(&old).unwrap(), b"before");
        assert!(!new.exists());
    }

    #[test]
    fn all_keeps_the_writes_of_success_and_undoes_those_of_an_error() {
        let dir = scratch("all");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"before").unwrap();
        let failed: Result<()> = Transaction::all(|tx| {
            tx.write(&a, b"after", Mode::Keep)?;
            tx.write(&b, b"created", Mode::Keep)?;
            Err(Error::failed("the third step failed"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "the third step failed");
        assert_eq!(fs::read(&a).unwrap(), b"before");
        assert!(!b.exists());
        Transaction::all(|tx| tx.write(&a, b"after", Mode::Keep)).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"after");
    }

    #[test]
    fn a_held_lock_is_reported_by_name() {
        let dir = scratch("lock");
        let config = dir.join("config");
        let first = lock(&config).unwrap();
        assert!(dir.join("config.lock").exists());
        let err = lock(&config).unwrap_err();
        assert!(err.to_string().contains("config.lock"), "{err}");
        drop(first);
        assert!(!dir.join("config.lock").exists());
        lock(&config).unwrap();
    }

    #[test]
    fn os_errors_read_as_sentences() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(io_reason(&e), "No space left on device (free some space)");
    }
}
