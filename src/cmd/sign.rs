//! `kubectl onboard sign`: the administrator's half of two-party onboarding. It takes a
//! certificate request someone made on their own machine (`kubectl onboard request`, or
//! `openssl req`), checks it as the cluster would (signature, CN, O), gets it issued through
//! the same steps as `kubectl onboard <user>`, and writes a kubeconfig without a private key
//! to send back: cluster (CA embedded), user with `client-certificate-data`, context.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cluster::rbac::Grant;
use crate::cluster::session::Local;
use crate::csr;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan;
use crate::kubeconfig;
use crate::pipeline::certify::Requester;
use crate::pipeline::{
    self, Certified, Certifier, Credentials, Destination, Subject, new_user_entries,
};
use crate::pki::keystore;
use crate::pki::verify::rfc3339;
use crate::records::inventory::How;
use crate::signals::Signals;
use crate::ui::progress::Progress;
use crate::ui::report::{Output, Summary};
use argh::{ArgsInfo, FromArgs};

use crate::terminal::shell_quote;

flags! {
    /// Sign a colleague's certificate request and write the kubeconfig to send back (it holds no
    /// private key).
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Approve jane's request and write her kubeconfig:\n  $ {command_name} jane.csr --approve --output-kubeconfig jane.kubeconfig",
        note = "The user is the request's CN and the groups its O attributes, checked like kubectl onboard <user> checks them.",
        error_code(
            2,
            "The request is unreadable, tampered with, or asks for what the cluster refuses."
        ),
        error_code(3, "The request was denied by an approver or failed by the signer."),
        error_code(4, "No certificate within --timeout.")
    )]
    pub struct Args {
        /// the PEM certificate request (openssl req -out, kubectl onboard request --csr-out); - for stdin
        #[argh(positional)]
        pub csr: PathBuf,

        /// where to write the kubeconfig for the requester (required; 0600)
        #[argh(option)]
        pub output_kubeconfig: Option<PathBuf>,

        /// requested certificate lifetime, at least 10m: 10m, 36h, 90d, 1y (default: the cluster's)
        #[argh(option)]
        pub duration: Option<String>,

        /// overwrite an existing --output-kubeconfig
        #[argh(switch)]
        pub force: bool,

        /// copy the cluster's insecure-skip-tls-verify into a kubeconfig made for someone else
        #[argh(switch)]
        pub allow_insecure_cluster: bool,
    }
    with request, connection, output, timings, grants
}

/// The flags, checked before the request is read.
struct Options {
    output: PathBuf,
    duration: Option<std::time::Duration>,
    timeout: std::time::Duration,
    grants: Vec<Grant>,
    out: Output,
}

impl TryFrom<&Args> for Options {
    type Error = Error;

    fn try_from(args: &Args) -> Result<Options> {
        let output = args.output_kubeconfig.clone().ok_or_else(|| {
            Error::usage(
                "--output-kubeconfig FILE is required: where to write the kubeconfig to send back to the requester",
            )
        })?;
        let duration = plan::duration_flag(args.duration.as_deref())?;
        let timeout = plan::timeout_flag(args.timeout.as_deref())?;
        if let Some(ns) = &args.namespace {
            plan::validate_namespace(ns)?;
        }
        Ok(Options {
            output,
            duration,
            timeout,
            grants: plan::grants(&args.clusterrole, &args.role, args.namespace.as_deref())?,
            out: Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?,
        })
    }
}

pub async fn run(args: Args) -> Result<()> {
    let Options {
        output,
        duration,
        timeout,
        grants,
        out,
    } = Options::try_from(&args)?;
    let received = read_request(&args.csr)?;
    kubeconfig::check_output_free(&output, args.force)?;
    let mut signals = Signals::install()?;
    let mut progress = out.progress(args.timings);
    announce(&received, &mut progress);

    let local = Local::load(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
        &mut progress,
    )?;
    kubeconfig::file::probe(&output)?;
    local.target.check_portable(args.allow_insecure_cluster)?;
    let session = local
        .connect(
            args.approve,
            &grants,
            None,
            timeout,
            &mut signals,
            &mut progress,
        )
        .await?;

    let record = (!args.no_record).then_some(How::Sign);
    let certifier = Certifier::cluster(&session, args.approve, timeout, args.keep_csr, record);
    let subject = Subject {
        user: &received.user,
        groups: &received.groups,
    };
    let requester = Requester::Received(&received);
    let Certified { verified, csr_name } = certifier
        .certify(subject, requester, duration, &mut signals, &mut progress)
        .await?;
    // Bindings before the file: if one fails, nothing was written.
    let user = &received.user;
    pipeline::bind(&session.conn, user, &grants, &mut signals, &mut progress).await?;

    let target = &session.local.target;
    let context = format!("{}@{}", received.user, target.cluster_name);
    let credentials = Credentials::Embedded {
        cert_pem: &verified.pem,
        key_pem: None,
    };
    let namespace = args.namespace.as_deref();
    let entries = new_user_entries(user, &target.cluster_name, &context, credentials, namespace);
    let started = Instant::now();
    let path = &output;
    Destination::Standalone { path, target }.write(&entries, None, args.force)?;
    progress.phase("kubeconfig write", started);
    progress.print_timings();

    let text = sent_back(&output, &received.user, &context, verified.info.not_after);
    let summary = Summary {
        user: received.user.clone(),
        groups: received.groups.clone(),
        context,
        cluster: target.cluster_name.clone(),
        kubeconfigs: vec![output.clone()],
        standalone: true,
        csr: csr_name,
        certificate: verified.info,
        key_algorithm: received.key_algorithm.clone(),
        identity: None,
        switched: false,
        replaced: Default::default(),
    };
    out.print(|| summary.to_value(), &text)
}

/// What was written, and what the requester does with it.
fn sent_back(output: &Path, user: &str, context: &str, not_after: std::time::SystemTime) -> String {
    let name = output
        .file_name()
        .map_or(output.display().to_string(), |n| n.to_string_lossy().into());
    format!(
        "Wrote kubeconfig {} for user \"{user}\" (context \"{context}\"), valid until {}.\n\
         It holds no private key: send it to {user}, who runs: kubectl onboard import {}\n",
        output.display(),
        rfc3339(not_after),
        shell_quote(&name)
    )
}

/// What the request asks for, and what in it Kubernetes ignores.
fn announce(received: &csr::Received, progress: &mut Progress) {
    let groups = match received.groups.is_empty() {
        true => "no groups".to_string(),
        false => format!("groups: {}", received.groups.join(", ")),
    };
    progress.step(&format!(
        "Request for user \"{}\" ({groups}), {} key {}",
        received.user,
        received.key_algorithm,
        keystore::fingerprint(&received.public_key_der)
    ));
    for oid in &received.ignored_attributes {
        progress.warn(&format!(
            "the request's subject also has attribute {oid}, which Kubernetes ignores (only CN and O count)"
        ));
    }
}

/// The request in `path` (or stdin for `-`), checked: a bad one is a usage error, as nothing
/// was sent yet.
fn read_request(path: &Path) -> Result<csr::Received> {
    let (bytes, name) = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::usage(format!("cannot read the request from stdin: {e}")))?;
        (bytes, "the request on stdin".to_string())
    } else {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the request {}: {}",
                path.display(),
                kubeconfig::file::io_reason(&e)
            ))
        })?;
        (bytes, path.display().to_string())
    };
    let received = csr::read(&bytes).map_err(|why| Error::usage(format!("{name}: {why}")))?;
    // The same rules, and the same words, as `kubectl onboard <user> --group …`.
    let refused = |e: Error| Error::usage(format!("{name} asks for what cannot be granted: {e}"));
    plan::validate_user(&received.user).map_err(refused)?;
    plan::validate_groups(received.groups.clone(), false).map_err(refused)?;
    Ok(received)
}
