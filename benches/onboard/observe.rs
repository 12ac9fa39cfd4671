//! Independent observers for the moments the benchmark times, each on its own thread so that
//! nothing the benchmark does meanwhile delays the reading of a clock:
//!
//! * [`Csrs`]: a watch on all CertificateSigningRequests (administrator's credentials, its own
//!   connection and runtime) that notes when each object appears and when its
//!   `status.certificate` is first set;
//! * [`Renames`]: inotify on directories, noting when a file is renamed into one
//!   (`IN_MOVED_TO`: the atomic replacement of a kubeconfig).
//!
//! Both read `Instant` (CLOCK_MONOTONIC) the moment the kernel hands them the event.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

#[derive(Clone, Debug)]
pub enum Seen {
    /// The object exists (first event for it).
    Added,
    /// Its certificate, the first time an event carried one.
    Issued(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub at: Instant,
    pub seen: Seen,
}

/// A log that one thread appends to and others wait on.
struct Log<T> {
    events: Mutex<Vec<T>>,
    added: Condvar,
}

impl<T: Clone> Log<T> {
    fn new() -> Arc<Self> {
        Arc::new(Log {
            events: Mutex::new(Vec::new()),
            added: Condvar::new(),
        })
    }

    fn push(&self, event: T) {
        self.events.lock().unwrap().push(event);
        self.added.notify_all();
    }

    /// The first logged event that matches, waiting up to `timeout` for one.
    fn wait(&self, timeout: Duration, matches: impl Fn(&T) -> bool) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut events = self.events.lock().unwrap();
        loop {
            if let Some(e) = events.iter().find(|e| matches(e)) {
                return Some(e.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            events = self.added.wait_timeout(events, left).unwrap().0;
        }
    }
}

pub struct Csrs {
    log: Arc<Log<Event>>,
}

impl Csrs {
    /// Starts watching with the credentials of `kubeconfig`; returns once the watch is open.
    pub fn start(kubeconfig: &Path) -> Csrs {
        let log = Log::new();
        let ready = Arc::new((Mutex::new(false), Condvar::new()));
        let (thread_log, thread_ready, path) = (log.clone(), ready.clone(), kubeconfig.to_owned());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("observer runtime");
            rt.block_on(watch_csrs(path, thread_log, thread_ready));
        });
        let (lock, cv) = &*ready;
        let ok = cv
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(30), |r| !*r)
            .unwrap();
        assert!(*ok.0, "the CSR observer did not start within 30 s");
        Csrs { log }
    }

    /// The first event that `matches`, waiting up to `timeout` for one.
    pub fn wait(&self, timeout: Duration, matches: impl Fn(&Event) -> bool) -> Option<Event> {
        self.log.wait(timeout, matches)
    }

    /// The first request kubectl-onboard made for `user` (named `<user>-<suffix>`) to appear.
    pub fn request_of(&self, user: &str, timeout: Duration) -> Option<Event> {
        let prefix = format!("{user}-");
        self.wait(timeout, |e| {
            matches!(e.seen, Seen::Added) && e.name.starts_with(&prefix)
        })
    }

    pub fn issued(&self, name: &str, timeout: Duration) -> Option<(Instant, Vec<u8>)> {
        self.wait(timeout, |e| {
            e.name == name && matches!(e.seen, Seen::Issued(_))
        })
        .map(|e| match e.seen {
            Seen::Issued(pem) => (e.at, pem),
            Seen::Added => unreachable!(),
        })
    }
}

async fn watch_csrs(kubeconfig: PathBuf, log: Arc<Log<Event>>, ready: Arc<(Mutex<bool>, Condvar)>) {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).expect("read the admin kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("admin kubeconfig");
    let api: Api<CertificateSigningRequest> =
        Api::all(Client::try_from(config).expect("admin client"));
    let mut known = HashSet::new();
    let mut issued = HashSet::new();
    let mut resource_version = String::new();
    loop {
        // Once the benchmark runs, an error means the cluster is going away: stop quietly.
        let started = *ready.0.lock().unwrap();
        if resource_version.is_empty() {
            let list = match api.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(_) if started => return,
                Err(e) => panic!("list CSRs: {e}"),
            };
            for csr in &list.items {
                known.insert(csr.name_any());
            }
            resource_version = list.metadata.resource_version.unwrap_or_default();
        }
        let params = WatchParams::default().timeout(290);
        let mut stream = match api.watch(&params, &resource_version).await {
            Ok(stream) => stream.boxed(),
            Err(_) if started => return,
            Err(e) => panic!("watch CSRs: {e}"),
        };
        {
            let (lock, cv) = &*ready;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        while let Ok(Some(event)) = stream.try_next().await {
            let at = Instant::now();
            match event {
                WatchEvent::Added(csr) | WatchEvent::Modified(csr) => {
                    let name = csr.name_any();
                    if known.insert(name.clone()) {
                        log.push(Event {
                            name: name.clone(),
                            at,
                            seen: Seen::Added,
                        });
                    }
                    let cert = csr
                        .status
                        .as_ref()
                        .and_then(|s| s.certificate.as_ref())
                        .filter(|c| !c.0.is_empty());
                    if let Some(cert) = cert
                        && issued.insert(name.clone())
                    {
                        log.push(Event {
                            name,
                            at,
                            seen: Seen::Issued(cert.0.clone()),
                        });
                    }
                    if let Some(rv) = csr.resource_version() {
                        resource_version = rv;
                    }
                }
                WatchEvent::Bookmark(b) => resource_version = b.metadata.resource_version,
                WatchEvent::Deleted(_) => {}
                // 410 Gone and the like: list again.
                WatchEvent::Error(_) => {
                    resource_version.clear();
                    break;
                }
            }
        }
    }
}

/// When a file was renamed into a watched directory.
#[derive(Clone, Debug)]
struct Renamed {
    wd: i32,
    name: Vec<u8>,
    at: Instant,
}

pub struct Renames {
    fd: i32,
    log: Arc<Log<Renamed>>,
}

impl Renames {
    pub fn start() -> Renames {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let log = Log::new();
        let thread_log = log.clone();
        std::thread::spawn(move || read_events(fd, &thread_log));
        Renames { fd, log }
    }

    /// Watches `dir` for renames into it; returns the watch descriptor.
    pub fn watch(&self, dir: &Path) -> i32 {
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string; fd is ours.
        let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), libc::IN_MOVED_TO) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        wd
    }

    /// When `name` was renamed into the directory of `wd`.
    pub fn wait(&self, wd: i32, name: &str, timeout: Duration) -> Option<Instant> {
        self.log
            .wait(timeout, |r| r.wd == wd && r.name == name.as_bytes())
            .map(|r| r.at)
    }
}

fn read_events(fd: i32, log: &Log<Renamed>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: reads into our buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let at = Instant::now();
        if n <= 0 {
            return;
        }
        let mut rest = &buf[..n as usize];
        // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
        while rest.len() >= 16 {
            let word = |i: usize| u32::from_ne_bytes(rest[i..i + 4].try_into().unwrap());
            let (wd, len) = (word(0) as i32, word(12) as usize);
            let name = &rest[16..16 + len];
            let name = name.split(|b| *b == 0).next().unwrap_or_default().to_vec();
            log.push(Renamed { wd, name, at });
            rest = &rest[16 + len..];
        }
    }
}
