//! A real, throw-away Kubernetes control plane for the integration tests: etcd, kube-apiserver
//! and kube-controller-manager (CSR controllers only) on free 127.0.0.1 ports, in a temp dir,
//! with a PKI made by the `openssl` CLI.
//!
//! Teardown, in every case:
//! * `Drop` kills the components and removes the dir (also while a test panics);
//! * the `shared()` cluster lives in a static that is never dropped: an `atexit` hook tears it
//!   down when the test process exits normally;
//! * a watchdog (`sh` polling the test process with `kill -0`) kills the components and removes
//!   the dir when the test process is gone for any reason (SIGKILL, Ctrl-C, ...).
//!
//! The components run in their own process groups, so a Ctrl-C in the terminal reaches only the
//! test process (or `cargo run --example cluster`, which handles it and tears down).

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long each component may take to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of each component's log quoted when start-up fails.
const LOG_TAIL_LINES: usize = 40;
/// The bootstrap user of the static token file and its group.
pub const BOOTSTRAP_USER: &str = "onboarder";
pub const BOOTSTRAP_GROUP: &str = "onboarding";
/// The ClusterRole bound to `BOOTSTRAP_GROUP`.
pub const CSR_REQUESTER_ROLE: &str = "onboarding-csr-requester";

#[derive(Clone, Debug)]
pub struct Options {
    /// Give kube-controller-manager the cluster CA as CSR signer (`--cluster-signing-*-file`).
    /// Without it, approved CSRs for kubernetes.io/kube-apiserver-client are never signed.
    pub signer: bool,
    /// `--cluster-signing-duration`, e.g. `Some("1h")`: the longest certificate the signer issues.
    pub signing_duration: Option<&'static str>,
    /// kube-controller-manager's `--kube-api-qps` (burst twice that); `None` keeps its default
    /// of 20 a second, which bounds how fast the signer can issue certificates.
    pub controller_manager_qps: Option<u32>,
    /// Sign client certificates with a CA of their own, valid this many days, which the
    /// apiserver trusts beside the cluster CA but which is not in the kubeconfigs: the shape of
    /// k3s and RKE2 (a client CA apart), and with few days, of OpenShift (a signer that ends
    /// soon). Its certificate is `pki/client-signer.crt`.
    pub client_signer_days: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            signer: true,
            signing_duration: None,
            controller_manager_qps: None,
            client_signer_days: None,
        }
    }
}

/// Where the start-up time went (also printed to stderr, visible with `--nocapture`).
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub pki: Duration,
    pub etcd: Duration,
    pub apiserver: Duration,
    pub controller_manager: Duration,
    pub total: Duration,
}

pub struct Cluster {
    /// Temp dir with PKI, kubeconfigs, logs and etcd data; removed on drop.
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    /// The cluster's name in the kubeconfigs: `local`.
    pub name: String,
    /// User `admin` (client certificate, CN=admin, O=system:masters), context `admin@local`.
    pub admin_kubeconfig: PathBuf,
    /// User `onboarder` with the static bootstrap token, context `onboarder@local`.
    pub bootstrap_kubeconfig: PathBuf,
    pub bootstrap_token: String,
    /// The cluster CA: client CA of the apiserver and CSR signer of the controller-manager.
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// kube-controller-manager's secure port (`/healthz`), `https://127.0.0.1:PORT`.
    pub controller_manager_url: String,
    /// etcd's client URL, `http://127.0.0.1:PORT`.
    pub etcd_url: String,
    pub options: Options,
    pub timings: Timings,
    bin: PathBuf,
    apiserver_args: Vec<String>,
    procs: Mutex<Procs>,
}

#[derive(Default)]
struct Procs {
    components: Vec<Component>,
    watchdog: Option<Child>,
    torn_down: bool,
}

struct Component {
    name: &'static str,
    child: Child,
}

/// The shared cluster, or why it failed to start (reported to every test that asks for it,
/// instead of each one trying again).
static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

impl Cluster {
    /// One default cluster per test process, started on first use, torn down at process exit.
    pub fn shared() -> &'static Cluster {
        let shared = SHARED.get_or_init(|| {
            match std::panic::catch_unwind(|| Cluster::start(Options::default())) {
                Ok(cluster) => {
                    // SAFETY: registers a plain `extern "C" fn` that never unwinds.
                    unsafe { atexit(teardown_shared) };
                    Ok(cluster)
                }
                Err(panic) => Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()),
            }
        });
        match shared {
            Ok(cluster) => cluster,
            Err(why) => panic!("the shared test cluster failed to start: {why}"),
        }
    }

    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until each is healthy.
    /// Panics with the tail of every component's log when one fails.
    pub fn start(options: Options) -> Cluster {
        let t0 = Instant::now();
        let bin = binaries_dir();
        let dir = make_temp_dir();
        let ports = free_ports::<4>();
        let [etcd_port, etcd_peer_port, apiserver_port, kcm_port] =
            ports.each_ref().map(|l| l.local_addr().unwrap().port());
        let name = "local".to_string();
        let mut cluster = Cluster {
            server: format!("https://127.0.0.1:{apiserver_port}"),
            controller_manager_url: format!("https://127.0.0.1:{kcm_port}"),
            etcd_url: format!("http://127.0.0.1:{etcd_port}"),
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            bootstrap_kubeconfig: dir.join("bootstrap.kubeconfig"),
            bootstrap_token: random_hex(16),
            ca_cert: dir.join("pki/ca.crt"),
            ca_key: dir.join("pki/ca.key"),
            name,
            options,
            timings: Timings::default(),
            bin,
            apiserver_args: Vec::new(),
            procs: Mutex::new(Procs::default()),
            dir,
        };
        // From here on, a panic drops `cluster`, which kills what was started and removes the dir.
        cluster.spawn_watchdog();
        let [
            etcd_listener,
            etcd_peer_listener,
            apiserver_listener,
            kcm_listener,
        ] = ports;

        // etcd needs no PKI: let it boot while openssl works.
        let t = Instant::now();
        drop((etcd_listener, etcd_peer_listener));
        cluster.spawn_component("etcd", &cluster.etcd_args(etcd_port, etcd_peer_port));
        let pki_start = Instant::now();
        cluster.write_pki_and_kubeconfigs();
        cluster.timings.pki = pki_start.elapsed();
        cluster.wait_until("etcd", || cluster.etcd_healthy());
        cluster.timings.etcd = t.elapsed();

        let t = Instant::now();
        cluster.apiserver_args = cluster.make_apiserver_args(apiserver_port);
        drop(apiserver_listener);
        cluster.spawn_component("kube-apiserver", &cluster.apiserver_args);
        cluster.wait_until("kube-apiserver", || cluster.apiserver_ready());
        cluster.timings.apiserver = t.elapsed();

        // The controller-manager boots while kubectl creates the bootstrap RBAC.
        let t = Instant::now();
        drop(kcm_listener);
        cluster.spawn_component("kube-controller-manager", &cluster.kcm_args(kcm_port));
        cluster.create_bootstrap_rbac();
        cluster.wait_until("kube-controller-manager", || {
            cluster.controller_manager_ready()
        });
        cluster.timings.controller_manager = t.elapsed();
        cluster.timings.total = t0.elapsed();
        eprintln!(
            "cluster: {} ready in {:.1?} (pki {:.1?}, etcd {:.1?}, kube-apiserver {:.1?}, kube-controller-manager {:.1?}; dir {})",
            cluster.server,
            cluster.timings.total,
            cluster.timings.pki,
            cluster.timings.etcd,
            cluster.timings.apiserver,
            cluster.timings.controller_manager,
            cluster.dir.display()
        );
        cluster
    }

    /// Stops kube-apiserver and starts it again with the same flags (same port, same etcd);
    /// returns once `/readyz` is ok.
    pub fn restart_apiserver(&self) {
        let t = Instant::now();
        {
            let mut procs = self.lock();
            let component = procs
                .components
                .iter_mut()
                .find(|c| c.name == "kube-apiserver")
                .expect("kube-apiserver is not running");
            let _ = component.child.kill();
            let _ = component.child.wait();
            component.child = self.spawn("kube-apiserver", &self.apiserver_args);
            self.write_pids(&procs);
        }
        self.wait_until("kube-apiserver", || self.apiserver_ready());
        eprintln!(
            "cluster: {} kube-apiserver restarted in {:.1?}",
            self.server,
            t.elapsed()
        );
    }

    /// Runs the real kubectl with `--kubeconfig <kubeconfig>` (and a discovery cache in `dir`).
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.kubectl_command(kubeconfig)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"))
    }

    /// A kubectl `Command` with `--kubeconfig`, ready for more args, stdin, ...
    pub fn kubectl_command(&self, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(kubectl());
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kubecache"));
        cmd
    }

    /// kubectl as admin; panics with stderr unless it succeeds; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.kubectl(&self.admin_kubeconfig, args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl as admin with a manifest on stdin (`kubectl apply -f -`, ...); returns stdout.
    pub fn admin_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = run_with_stdin(
            self.kubectl_command(&self.admin_kubeconfig).args(args),
            stdin,
        );
        assert!(
            out.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The cluster CA certificate (PEM).
    pub fn ca_pem(&self) -> String {
        fs::read_to_string(&self.ca_cert).expect("read CA certificate")
    }

    /// Writes a kubeconfig for this cluster into `path`, with the given `user:` body (YAML
    /// lines at indentation 4, e.g. `token: ...`), user name and context `<user>@local`.
    pub fn write_kubeconfig(&self, path: &Path, user: &str, user_body: &str) {
        let ca = fs::read(&self.ca_cert).expect("read CA certificate");
        write_kubeconfig_file(path, &self.server, &self.name, &ca, user, user_body);
    }

    /// PIDs of the running components, by name.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.lock()
            .components
            .iter()
            .map(|c| (c.name, c.child.id()))
            .collect()
    }

    /// Kills the components and the watchdog and removes the dir; idempotent.
    pub fn teardown(&self) {
        let mut procs = self.lock();
        if procs.torn_down {
            return;
        }
        procs.torn_down = true;
        for c in procs.components.iter_mut().rev() {
            let _ = c.child.kill();
        }
        for c in procs.components.iter_mut() {
            let _ = c.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(w) = procs.watchdog.as_mut() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    // ----- start-up -----

    fn lock(&self) -> MutexGuard<'_, Procs> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn_watchdog(&self) {
        // Polls the test process; once it is gone, kills the PIDs in `pids` and removes the dir.
        const SCRIPT: &str = r#"
            trap '' HUP INT TERM
            while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
            [ -f "$2/pids" ] && kill -9 $(cat "$2/pids") 2>/dev/null
            sleep 0.1
            rm -rf "$2"
        "#;
        let child = Command::new("sh")
            .args(["-c", SCRIPT, "cluster-watchdog"])
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the watchdog (sh): {e}"));
        self.lock().watchdog = Some(child);
    }

    fn spawn(&self, name: &'static str, args: &[String]) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("open log file");
        Command::new(self.bin.join(name))
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.join(name).display()))
    }

    fn spawn_component(&self, name: &'static str, args: &[String]) {
        let child = self.spawn(name, args);
        let mut procs = self.lock();
        procs.components.push(Component { name, child });
        self.write_pids(&procs);
    }

    /// The PID file the watchdog reads (written atomically).
    fn write_pids(&self, procs: &Procs) {
        let pids: Vec<String> = procs
            .components
            .iter()
            .map(|c| c.child.id().to_string())
            .collect();
        let tmp = self.dir.join("pids.tmp");
        fs::write(&tmp, pids.join(" ") + "\n").expect("write pids");
        fs::rename(&tmp, self.dir.join("pids")).expect("write pids");
    }

    fn etcd_args(&self, port: u16, peer_port: u16) -> Vec<String> {
        let client = format!("http://127.0.0.1:{port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        vec![
            "--name=test".into(),
            format!("--data-dir={}", self.dir.join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=test={peer}"),
            "--initial-cluster-state=new".into(),
            // Throw-away data: no fsync makes every write much faster.
            "--unsafe-no-fsync".into(),
            // A single member elects itself after a random 1-2 election timeouts (default
            // 1 s, minus the ticks etcd fast-forwards): short ones make it ready sooner.
            "--heartbeat-interval=10".into(),
            "--election-timeout=100".into(),
            "--log-level=warn".into(),
        ]
    }

    fn make_apiserver_args(&self, port: u16) -> Vec<String> {
        let pki = self.dir.join("pki");
        let p = |f: &str| pki.join(f).display().to_string();
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_url),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!(
                "--client-ca-file={}",
                p(match self.options.client_signer_days {
                    Some(_) => "client-ca.crt",
                    None => "ca.crt",
                })
            ),
            "--authorization-mode=RBAC".into(),
            format!(
                "--token-auth-file={}",
                self.dir.join("tokens.csv").display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/12".into(),
            "--profiling=false".into(),
        ];
        // The apiserver refuses a loopback advertise address and, when the flag is omitted,
        // derives it from the default route: only pass it when there is no default route.
        if !has_default_route() {
            args.push(format!("--advertise-address={}", non_loopback_address()));
        }
        args
    }

    fn kcm_args(&self, port: u16) -> Vec<String> {
        let pki = self.dir.join("pki");
        let p = |f: &str| pki.join(f).display().to_string();
        let mut args = vec![
            format!(
                "--kubeconfig={}",
                self.dir.join("controller-manager.kubeconfig").display()
            ),
            "--controllers=csrsigning,csrapproving,csrcleaner".into(),
            "--leader-elect=false".into(),
            // Each controller uses its own service account (kube-system/certificate-controller
            // for the CSR controllers), bound to its system:controller:* role by the apiserver.
            "--use-service-account-credentials=true".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", p("controller-manager-serving.crt")),
            format!(
                "--tls-private-key-file={}",
                p("controller-manager-serving.key")
            ),
            // No --authentication-/--authorization-kubeconfig: /healthz is in the default
            // --authorization-always-allow-paths, so it answers anonymous requests.
            "--profiling=false".into(),
        ];
        if self.options.signer {
            let stem = match self.options.client_signer_days {
                Some(_) => "client-signer",
                None => "ca",
            };
            args.push(format!(
                "--cluster-signing-cert-file={}",
                p(&format!("{stem}.crt"))
            ));
            args.push(format!(
                "--cluster-signing-key-file={}",
                p(&format!("{stem}.key"))
            ));
        }
        if let Some(d) = self.options.signing_duration {
            args.push(format!("--cluster-signing-duration={d}"));
        }
        if let Some(qps) = self.options.controller_manager_qps {
            args.push(format!("--kube-api-qps={qps}"));
            args.push(format!("--kube-api-burst={}", 2 * qps));
        }
        args
    }

    /// PKI with the openssl CLI: an RSA 2048 CA (like kubeadm); P-256 keys for the rest (fast).
    fn write_pki_and_kubeconfigs(&self) {
        let pki = self.dir.join("pki");
        fs::create_dir_all(&pki).expect("create pki dir");
        let cnf = pki.join("openssl.cnf");
        fs::write(&cnf, OPENSSL_CNF).expect("write openssl.cnf");
        let cnf = cnf.display().to_string();

        // (file stem, subject, extensions section)
        let leaves: [(&str, &str, &str); 5] = [
            ("apiserver", "/CN=kube-apiserver", "serving"),
            ("admin", "/O=system:masters/CN=admin", "client"),
            (
                "controller-manager",
                "/CN=system:kube-controller-manager",
                "client",
            ),
            (
                "controller-manager-serving",
                "/CN=kube-controller-manager",
                "serving",
            ),
            ("sa", "", ""),
        ];
        let mut jobs = vec![openssl(
            &pki,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3650",
                "-subj",
                "/CN=kubernetes",
                "-config",
                &cnf,
                "-extensions",
                "ca",
            ],
        )];
        for (stem, subj, _) in leaves {
            let key = format!("{stem}.key");
            jobs.push(if subj.is_empty() {
                openssl(
                    &pki,
                    &[
                        "genpkey",
                        "-algorithm",
                        "EC",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-out",
                        &key,
                    ],
                )
            } else {
                let csr = format!("{stem}.csr");
                openssl(
                    &pki,
                    &[
                        "req",
                        "-new",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-nodes",
                        "-keyout",
                        &key,
                        "-out",
                        &csr,
                        "-subj",
                        subj,
                        "-config",
                        &cnf,
                    ],
                )
            });
        }
        let signer_days = self.options.client_signer_days.map(|d| d.to_string());
        if let Some(days) = &signer_days {
            jobs.push(openssl(
                &pki,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "client-signer.key",
                    "-out",
                    "client-signer.crt",
                    "-days",
                    days,
                    "-subj",
                    "/CN=client-signer",
                    "-config",
                    &cnf,
                    "-extensions",
                    "ca",
                ],
            ));
        }
        finish(jobs);
        if signer_days.is_some() {
            let mut bundle = fs::read(pki.join("ca.crt")).unwrap();
            bundle.extend(fs::read(pki.join("client-signer.crt")).unwrap());
            fs::write(pki.join("client-ca.crt"), bundle).unwrap();
        }

        let mut jobs = vec![openssl(
            &pki,
            &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        )];
        for (stem, subj, ext) in leaves {
            if subj.is_empty() {
                continue;
            }
            let (csr, crt, serial) = (
                format!("{stem}.csr"),
                format!("{stem}.crt"),
                format!("0x{}", random_hex(16)),
            );
            jobs.push(openssl(
                &pki,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    &serial,
                    "-days",
                    "365",
                    "-extfile",
                    &cnf,
                    "-extensions",
                    ext,
                    "-out",
                    &crt,
                ],
            ));
        }
        finish(jobs);

        let read = |f: &str| fs::read(pki.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}"));
        let ca = read("ca.crt");
        let cert_user = |crt: &str, key: &str| {
            format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                base64(&read(crt)),
                base64(&read(key))
            )
        };
        write_kubeconfig_file(
            &self.admin_kubeconfig,
            &self.server,
            &self.name,
            &ca,
            "admin",
            &cert_user("admin.crt", "admin.key"),
        );
        write_kubeconfig_file(
            &self.dir.join("controller-manager.kubeconfig"),
            &self.server,
            &self.name,
            &ca,
            "system:kube-controller-manager",
            &cert_user("controller-manager.crt", "controller-manager.key"),
        );
        fs::write(
            self.dir.join("tokens.csv"),
            format!(
                "{},{BOOTSTRAP_USER},{BOOTSTRAP_USER}-uid,\"{BOOTSTRAP_GROUP}\"\n",
                self.bootstrap_token
            ),
        )
        .expect("write tokens.csv");
        write_kubeconfig_file(
            &self.bootstrap_kubeconfig,
            &self.server,
            &self.name,
            &ca,
            BOOTSTRAP_USER,
            &format!("    token: {}\n", self.bootstrap_token),
        );
    }

    fn create_bootstrap_rbac(&self) {
        let manifest = format!(
            "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {CSR_REQUESTER_ROLE}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests]
  verbs: [create, get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {CSR_REQUESTER_ROLE}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {CSR_REQUESTER_ROLE}
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: {BOOTSTRAP_GROUP}
"
        );
        let out = run_with_stdin(
            self.kubectl_command(&self.admin_kubeconfig)
                .args(["apply", "-f", "-"]),
            &manifest,
        );
        if !out.status.success() {
            self.fail(&format!(
                "creating the bootstrap RBAC failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }

    // ----- health -----

    fn etcd_healthy(&self) -> bool {
        http_get(&self.etcd_url, "/health")
            .is_some_and(|(status, body)| status == 200 && body.contains(r#""health":"true""#))
    }

    fn apiserver_ready(&self) -> bool {
        let out = self.kubectl(
            &self.admin_kubeconfig,
            &["get", "--raw", "/readyz", "--request-timeout=5s"],
        );
        out.status.success() && out.stdout.trim_ascii() == b"ok"
    }

    fn controller_manager_ready(&self) -> bool {
        // /healthz is in the controller-manager's default --authorization-always-allow-paths, so
        // it answers anonymously (the admin kubeconfig only supplies the CA: the controller-manager
        // has no client CA and asks for no client certificate). Each controller adds its check
        // to `/healthz?verbose` once it runs.
        let out = self.kubectl(
            &self.admin_kubeconfig,
            &[
                "get",
                "--raw",
                "/healthz?verbose",
                "--server",
                &self.controller_manager_url,
                "--request-timeout=5s",
            ],
        );
        let body = String::from_utf8_lossy(&out.stdout);
        let mut controllers = vec!["approving", "cleaner"];
        if self.options.signer {
            controllers.push("signing");
        }
        out.status.success()
            && controllers
                .iter()
                .all(|c| body.contains(&format!("[+]certificatesigningrequest-{c}-controller ok")))
    }

    /// Polls `ready` until it is true; fails fast when a component exits; 60 s at most.
    fn wait_until(&self, component: &str, ready: impl Fn() -> bool) {
        let start = Instant::now();
        loop {
            if ready() {
                return;
            }
            for c in self.lock().components.iter_mut() {
                if let Ok(Some(status)) = c.child.try_wait() {
                    let name = c.name;
                    self.fail(&format!(
                        "{name} exited ({status}) while waiting for {component}"
                    ));
                }
            }
            if start.elapsed() > READY_TIMEOUT {
                self.fail(&format!(
                    "{component} was not ready after {READY_TIMEOUT:?}"
                ));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Panics with `what` and the tail of every component's log.
    fn fail(&self, what: &str) -> ! {
        let mut msg = format!("test cluster in {}: {what}\n", self.dir.display());
        for name in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            let Ok(log) = fs::read_to_string(self.dir.join(format!("{name}.log"))) else {
                continue;
            };
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            let _ = write!(
                msg,
                "\n----- last {} lines of {name}.log -----\n{}\n",
                tail.len(),
                tail.join("\n")
            );
        }
        panic!("{msg}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

extern "C" fn teardown_shared() {
    if let Some(Ok(cluster)) = SHARED.get() {
        let _ = std::panic::catch_unwind(|| cluster.teardown());
    }
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

// ----- helpers -----

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
";

/// `CONTROLPLANE_BIN`, else `target/controlplane/bin` of this package.
pub fn binaries_dir() -> PathBuf {
    let dir = std::env::var_os("CONTROLPLANE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/controlplane/bin"
            ))
        });
    let missing: Vec<&str> = ["etcd", "kube-apiserver", "kube-controller-manager"]
        .into_iter()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        panic!(
            "control plane binaries not found in {}: run `make controlplane` (missing: {})",
            dir.display(),
            missing.join(", ")
        );
    }
    dir
}

/// `KUBECTL`, else `kubectl` from PATH.
pub fn kubectl() -> std::ffi::OsString {
    std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into())
}

fn make_temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kubectl-onboard-cluster-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        random_hex(4)
    ));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Listeners on distinct free 127.0.0.1 ports, held until the component that uses them starts.
fn free_ports<const N: usize>() -> [TcpListener; N] {
    std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_kubeconfig_file(
    path: &Path,
    server: &str,
    cluster: &str,
    ca_pem: &[u8],
    user: &str,
    user_body: &str,
) {
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: \"{user}\"
  user:
{user_body}contexts:
- name: \"{user}@{cluster}\"
  context:
    cluster: {cluster}
    user: \"{user}\"
current-context: \"{user}@{cluster}\"
",
        ca = base64(ca_pem)
    );
    fs::write(path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn openssl(dir: &Path, args: &[&str]) -> (String, Child) {
    let child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    (format!("openssl {}", args.join(" ")), child)
}

fn finish(jobs: Vec<(String, Child)>) {
    for (what, child) in jobs {
        let out = child.wait_with_output().expect("wait for openssl");
        assert!(
            out.status.success(),
            "{what} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for child")
}

/// Plain HTTP/1.0 GET (etcd's client URL): `(status, body)`.
fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    let addr = base.strip_prefix("http://")?;
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split(' ').nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Whether the kernel has an IPv4 or IPv6 default route (as the apiserver looks for one).
pub fn has_default_route() -> bool {
    let v4 = fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    default_route_in(&v4, &v6)
}

pub fn default_route_in(route: &str, ipv6_route: &str) -> bool {
    let v4 = route.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7
            && f[1] == "00000000"
            && f[7] == "00000000"
            && u32::from_str_radix(f[3], 16).is_ok_and(|flags| flags & 1 != 0)
    });
    let v6 = ipv6_route.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 9 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo"
    });
    v4 || v6
}

/// A global IPv4 address of this machine, for `--advertise-address` when there is no default
/// route; falls back to an unassigned benchmark address (the apiserver only publishes it).
fn non_loopback_address() -> String {
    let from_ip = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let i = f.iter().position(|w| *w == "inet")?;
                Some(f.get(i + 1)?.split('/').next()?.to_string())
            })
        });
    from_ip.unwrap_or_else(|| "198.18.0.1".to_string())
}
