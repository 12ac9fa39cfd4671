//! Which kubeconfig files are read, and which one a new entry is written to: client-go's
//! clientcmd rules (loader.go `GetLoadingPrecedence`, config.go `GetDefaultFilename`).
//! Pure: the caller says which files exist.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, PartialEq, Eq)]
pub struct Sources {
    /// Files to read, in precedence order (the first one to define a name wins).
    pub read: Vec<PathBuf>,
    /// Where kubectl would write a new entry.
    pub destination: PathBuf,
}

/// `--kubeconfig` → that file alone. KUBECONFIG → its existing entries; a new entry goes to its
/// only entry, else its first existing file, else its last entry. Otherwise `~/.kube/config`.
pub fn sources(
    flag: Option<&Path>,
    kubeconfig_env: Option<&OsStr>,
    home: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Sources> {
    if let Some(path) = flag {
        return Ok(Sources {
            read: vec![path.to_path_buf()],
            destination: path.to_path_buf(),
        });
    }
    let mut entries: Vec<PathBuf> = Vec::new();
    for entry in kubeconfig_env
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
    {
        if !entry.as_os_str().is_empty() && !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    if let Some(last) = entries.last().cloned() {
        let read: Vec<PathBuf> = entries.iter().filter(|p| exists(p)).cloned().collect();
        let destination = match (entries.len(), read.first()) {
            (1, _) => last,
            (_, Some(first)) => first.clone(),
            (_, None) => last,
        };
        return Ok(Sources { read, destination });
    }
    let home = home.ok_or_else(|| {
        Error::failed(
            "cannot find your home directory for ~/.kube/config: set HOME, KUBECONFIG or pass --kubeconfig FILE",
        )
    })?;
    let default = home.join(".kube").join("config");
    Ok(Sources {
        read: if exists(&default) {
            vec![default.clone()]
        } else {
            vec![]
        },
        destination: default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(flag: Option<&str>, env: Option<&str>, existing: &[&str]) -> Sources {
        sources(
            flag.map(Path::new),
            env.map(OsStr::new),
            Some(Path::new("/home/u")),
            |p: &Path| existing.iter().any(|e| Path::new(e) == p),
        )
        .unwrap()
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn flag_wins_over_everything() {
        let s = run(Some("/x"), Some("/a:/b"), &["/a", "/b"]);
        assert_eq!(s.read, paths(&["/x"]));
        assert_eq!(s.destination, PathBuf::from("/x"));
    }

    #[test]
    fn single_kubeconfig_entry_is_the_destination_even_when_missing() {
        let s = run(None, Some("/a"), &[]);
        assert_eq!(s.read, paths(&[]));
        assert_eq!(s.destination, PathBuf::from("/a"));
    }

    #[test]
    fn first_existing_entry_of_a_list() {
        let s = run(None, Some("/a:/b:/c"), &["/b", "/c"]);
        assert_eq!(s.read, paths(&["/b", "/c"]));
        assert_eq!(s.destination, PathBuf::from("/b"));
    }

    #[test]
    fn last_entry_when_none_exists() {
        let s = run(None, Some("/a:/b"), &[]);
        assert_eq!(s.destination, PathBuf::from("/b"));
    }

    #[test]
    fn empty_and_duplicate_entries_are_skipped() {
        let s = run(None, Some(":/a::/a:"), &["/a"]);
        assert_eq!(s.read, paths(&["/a"]));
        assert_eq!(s.destination, PathBuf::from("/a"));
    }

    #[test]
    fn default_is_home_kube_config() {
        let s = run(None, None, &[]);
        assert_eq!(s.destination, PathBuf::from("/home/u/.kube/config"));
        assert!(s.read.is_empty());
        let s = run(None, Some(""), &["/home/u/.kube/config"]);
        assert_eq!(s.read, paths(&["/home/u/.kube/config"]));
    }

    #[test]
    fn no_home_is_an_error_that_names_the_ways_out() {
        let err = sources(None, None, None, |_: &Path| false).unwrap_err();
        assert!(err.to_string().contains("--kubeconfig"));
    }
}
