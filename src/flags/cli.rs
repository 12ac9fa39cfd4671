//! Command-line arguments: the main command's flags, and the kubectl habits argh lacks
//! (`--flag=value`, `--switch=true|false`) for every command. Which command runs is decided
//! in `cmd/mod.rs`; validation lives in `plan.rs` and in each command's options.

use argh::{ArgsInfo, FromArgs};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The subcommand that prints or installs completion.
pub const COMPLETION_COMMAND: &str = "completion";
/// The hidden subcommand the shell scripts call to complete a word.
pub const HIDDEN_COMMAND: &str = "__complete";
/// The name kubectl looks for on PATH to complete `kubectl onboard …`.
pub const KUBECTL_HELPER: &str = "kubectl_complete-onboard";

/// An argh struct with the flag families it shares with other commands appended to its own
/// fields, declared (and documented) once here: argh cannot flatten one struct into another
/// (google/argh#15). Families: `connection` (--kubeconfig, --context), `kubeconfig`
/// (--kubeconfig alone), `limit` (--request-timeout), `output` (-o, -q, -v), `request` (--approve, --timeout, --keep-csr, --no-record),
/// `key` (--key-algorithm, --key), `grants` (-n, --clusterrole, --role), `offline` (--ca-cert,
/// --ca-key, --server, --cluster-name), `timings` (--timings). The struct's own fields must end with a comma.
macro_rules! flags {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* } with $($family:ident),+ $(,)?) => {
        $crate::flags::cli::flags!(@add [$(#[$meta])*] $name [$($fields)*] [$($family)+]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [connection $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// path to the kubeconfig to use, as for kubectl
            #[argh(option)]
            pub kubeconfig: Option<std::path::PathBuf>,

            /// the kubeconfig context whose cluster and credentials to use
            #[argh(option)]
            pub context: Option<String>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [limit $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// how long to wait for each answer of the API server before giving up (default 30s)
            #[argh(option)]
            pub request_timeout: Option<String>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [kubeconfig $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// path to the kubeconfig to use, as for kubectl
            #[argh(option)]
            pub kubeconfig: Option<std::path::PathBuf>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [output $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// print the result as json or yaml
            #[argh(option, short = 'o')]
            pub output: Option<String>,

            /// print only errors and the result
            #[argh(switch, short = 'q')]
            pub quiet: bool,

            /// print what it looks at and decides (never key material)
            #[argh(switch, short = 'v')]
            pub verbose: bool,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [request $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// approve the request yourself (needs approve on signers/kubernetes.io/kube-apiserver-client)
            #[argh(switch)]
            pub approve: bool,

            /// how long to wait for the certificate (default 5m)
            #[argh(option)]
            pub timeout: Option<String>,

            /// leave the CertificateSigningRequest in the cluster (default: delete it when done)
            #[argh(switch)]
            pub keep_csr: bool,
            /// do not record the certificate in the cluster's inventory (kubectl onboard certificates)
            #[argh(switch)]
            pub no_record: bool,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [offline $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// offline: sign locally with this cluster CA certificate (with --ca-key and --server), no API call
            #[argh(option)]
            pub ca_cert: Option<std::path::PathBuf>,

            /// offline: the cluster CA's private key (PEM) to sign with
            #[argh(option)]
            pub ca_key: Option<std::path::PathBuf>,

            /// offline: the API server URL for the new kubeconfig entries, e.g. https://10.0.0.1:6443
            #[argh(option)]
            pub server: Option<String>,

            /// offline: the cluster's name in the kubeconfig (default: the server's host)
            #[argh(option)]
            pub cluster_name: Option<String>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [grants $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// namespace of the new context, and of the RoleBindings --role makes
            #[argh(option, short = 'n')]
            pub namespace: Option<String>,

            /// bind this ClusterRole to the user (a ClusterRoleBinding); repeat for several
            #[argh(option)]
            pub clusterrole: Vec<String>,

            /// bind this Role in --namespace to the user (a RoleBinding); repeat for several
            #[argh(option)]
            pub role: Vec<String>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [key $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// key to generate: rsa-2048 (default), rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384
            #[argh(option)]
            pub key_algorithm: Option<String>,

            /// use this existing PEM private key (PKCS#8, PKCS#1 or SEC1) instead of generating one
            #[argh(option)]
            pub key: Option<std::path::PathBuf>,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] [timings $($rest:ident)*]) => {
        $crate::flags::cli::flags!(@add [$($meta)*] $name [$($fields)*
            /// print how long each phase took, on stderr
            #[argh(switch)]
            pub timings: bool,
        ] [$($rest)*]);
    };
    (@add [$($meta:tt)*] $name:ident [$($fields:tt)*] []) => {
        $($meta)*
        pub struct $name { $($fields)* }
    };
}
pub(crate) use flags;

/// The name users type; kubectl runs us as `kubectl-onboard`.
pub const COMMAND: &str = "kubectl onboard";

flags! {
    /// Onboard a Kubernetes user with a client certificate: generate a key, submit a
    /// CertificateSigningRequest, wait for approval (or approve), verify the certificate and add
    /// user and context to your kubeconfig.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Onboard jane into group dev, approving the request yourself:\n  $ {command_name} jane --group dev --approve",
        example = "Ask for a certificate with bootstrap credentials and wait for an administrator:\n  $ {command_name} jane --group dev --duration 90d",
        example = "Write a standalone kubeconfig to hand to a colleague:\n  $ {command_name} jane --group dev --approve --output-kubeconfig jane.kubeconfig",
        example = "Sign locally with the cluster CA (offline, no API call):\n  $ {command_name} jane --group dev --ca-cert ca.crt --ca-key ca.key --server https://10.0.0.1:6443",
        note = "The private key is generated locally and never leaves this machine.",
        error_code(1, "An error: kubeconfig, network, permissions or files."),
        error_code(2, "Usage error: nothing was sent to the cluster."),
        error_code(3, "The request was denied by an approver or failed by the signer."),
        error_code(4, "No certificate within --timeout."),
        error_code(130, "Interrupted (Ctrl-C); the request was withdrawn."),
        error_code(143, "Terminated (SIGTERM); the request was withdrawn.")
    )]
    pub struct Args {
        /// the user to onboard: the certificate's common name (CN) and the kubeconfig user name
        #[argh(positional)]
        pub user: String,

        /// a group for the user: the certificate's organization (O); repeat for several
        #[argh(option, short = 'g')]
        pub group: Vec<String>,

        /// requested certificate lifetime, at least 10m: 10m, 36h, 90d, 1y (default: the cluster's)
        #[argh(option)]
        pub duration: Option<String>,

        /// embed certificate and key in the kubeconfig (default true); false writes 0600 files under ~/.kube
        #[argh(option)]
        pub embed: Option<bool>,

        /// replace a user or context of the same name
        #[argh(switch)]
        pub force: bool,

        /// switch the current context to the new one
        #[argh(switch)]
        pub use_context: bool,

        /// write a standalone kubeconfig to this file instead of merging into yours
        #[argh(option)]
        pub output_kubeconfig: Option<PathBuf>,

        /// skip proving the new credentials with a SelfSubjectReview
        #[argh(switch)]
        pub no_verify: bool,

        /// offline: allow group system:masters, a cluster-admin credential that cannot be revoked
        #[argh(switch)]
        pub allow_masters: bool,

        /// print the version
        #[argh(switch)]
        pub version: bool,

        /// copy the cluster's insecure-skip-tls-verify into a kubeconfig made for someone else
        #[argh(switch)]
        pub allow_insecure_cluster: bool,
    }
    with request, output, connection, timings, key, grants, offline
}

/// Parses `raw` as `T` with kubectl's habits. `Ok(Err(text))`: `--help` asked for `text`.
pub fn parse_as<T: FromArgs + ArgsInfo>(
    command: &str,
    raw: &[String],
) -> Result<Result<T, String>> {
    let args = normalize::<T>(raw)?;
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match T::from_args(&[command], &strs) {
        Ok(parsed) => Ok(Ok(parsed)),
        Err(early) => match early.status {
            Ok(()) => Ok(Err(early.output)),
            Err(()) => Err(Error::usage(format!(
                "{}; see '{command} --help'",
                early.output.trim_end()
            ))),
        },
    }
}

/// Rewrites kubectl-style arguments into the form argh accepts:
/// `--opt=value` → `--opt value`; `--switch=true` → `--switch`; `--switch=false` → nothing;
/// a bare `--embed` → `--embed true`. Everything after `--` is left alone.
pub fn normalize<T: ArgsInfo>(raw: &[String]) -> Result<Vec<String>> {
    let info = T::get_args_info();
    let is_switch = |long: &str| {
        info.flags
            .iter()
            .any(|f| f.long == long && f.kind == argh::FlagInfoKind::Switch)
    };
    let mut out = Vec::with_capacity(raw.len() + 2);
    let mut rest = raw.iter().peekable();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                if is_switch(flag) {
                    match value {
                        "true" => out.push(flag.to_string()),
                        "false" => {}
                        _ => {
                            return Err(Error::usage(format!(
                                "{flag} takes no value, or =true/=false; got '{value}'"
                            )));
                        }
                    }
                } else {
                    out.push(flag.to_string());
                    out.push(value.to_string());
                }
            }
            _ if arg == "--embed" && info.flags.iter().any(|f| f.long == "--embed") => {
                out.push(arg.clone());
                let explicit = rest.peek().is_some_and(|v| *v == "true" || *v == "false");
                if !explicit {
                    out.push("true".into());
                }
            }
            _ => out.push(arg.clone()),
        }
    }
    Ok(out)
}
