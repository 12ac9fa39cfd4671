//! `kubectl onboard accept FILE`: the invited user's half. Shows which cluster and CA the
//! invitation trusts and the identity it asks for, then onboards as `kubectl onboard USER` does
//! for a self-service user (local key, request, wait, verify, prove, merge), with the
//! invitation's token as the only credential. The token is never written into the kubeconfig;
//! once the new entries are, the invitation deletes its own credential.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

use argh::{ArgsInfo, FromArgs};

use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan::{self, Plan};
use crate::invitation::file::{self, Opened};
use crate::pki::verify::{parse_rfc3339, rfc3339};
use crate::records::inventory;
use crate::ui::progress::Progress;

flags! {
    /// Redeem an invitation from kubectl onboard invite: get your own certificate and kubeconfig entries.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Accept the invitation your administrator sent you:\n  $ {command_name} jane.invite",
        note = "The private key is made here and never leaves this machine. The invitation serves once; its token is never written into your kubeconfig.",
        error_code(1, "The invitation is not valid (expired, used, withdrawn), or a write failed."),
        error_code(3, "The request was denied."),
        error_code(4, "--timeout: no certificate in time; nothing was written."),
        error_code(130, "Interrupted (Ctrl-C); the request was withdrawn, nothing was written, and the invitation can be accepted again.")
    )]
    pub struct Args {
        /// the invitation file
        #[argh(positional)]
        pub file: PathBuf,

        /// how long to wait for approval (default 5m)
        #[argh(option)]
        pub timeout: Option<String>,

        /// write a standalone kubeconfig here instead of merging into yours
        #[argh(option)]
        pub output_kubeconfig: Option<PathBuf>,

        /// make the new context the current one
        #[argh(switch)]
        pub use_context: bool,

        /// the cluster's name in your kubeconfig (default: the name in the invitation)
        #[argh(option)]
        pub cluster_name: Option<String>,

        /// replace a user, context or cluster of the same name
        #[argh(switch)]
        pub force: bool,
    }
    with kubeconfig, output, key, timings
}

pub async fn run(args: Args) -> Result<()> {
    let mut opened = file::open(&args.file)?;
    if let Some(name) = &args.cluster_name {
        plan::validate_cluster_name(name)?;
        opened.target.cluster_name = name.clone();
    }
    let plan = plan_of(&args, &opened)?;
    let mut progress = Progress::new(plan.quiet, plan.verbose, plan.timings);
    if let Some(expired) = expired(&opened.invited.expires, SystemTime::now()) {
        return Err(expired);
    }
    if let Ok(meta) = std::fs::metadata(&args.file)
        && meta.permissions().mode() & 0o077 != 0
    {
        progress.warn(&format!(
            "{} can be read by others on this machine, and it holds a credential: chmod 600 it, or delete it once you are onboarded",
            args.file.display()
        ));
    }
    progress.step(&introduction(&opened));
    super::onboard::accept(plan, opened).await
}

/// What `kubectl onboard USER` would be asked for: the invited identity, the flags given here.
fn plan_of(args: &Args, opened: &Opened) -> Result<Plan> {
    let invited = &opened.invited;
    plan::validate_user(&invited.user)?;
    let format = args.output.as_deref().map(str::parse).transpose()?;
    if let Some(path) = &args.output_kubeconfig {
        crate::kubeconfig::check_output_free(path, args.force)?;
    }
    Ok(Plan {
        user: invited.user.clone(),
        groups: plan::validate_groups(invited.groups.clone(), false)?,
        key: plan::key_source(args.key.clone(), args.key_algorithm.clone())?,
        duration: invited.duration,
        timeout: plan::timeout_flag(args.timeout.as_deref())?,
        approve: false,
        keep_csr: false,
        record: false,
        embed: true,
        force: args.force,
        // Also when there is no current context: `Source::destination` in onboard.rs.
        use_context: args.use_context,
        output_kubeconfig: args.output_kubeconfig.clone(),
        namespace: None,
        grants: Vec::new(),
        prove_identity: true,
        allow_insecure_cluster: false,
        offline: None,
        output: format,
        kubeconfig: args.kubeconfig.clone(),
        context: None,
        quiet: args.quiet,
        verbose: args.verbose,
        timings: args.timings,
    })
}

/// An invitation past its expiry is refused here: its token no longer works.
fn expired(expires: &str, now: SystemTime) -> Option<Error> {
    let end = parse_rfc3339(expires)?;
    (end <= now).then(|| {
        Error::failed(format!(
            "this invitation expired at {expires} (it is now {}); ask your administrator for a new one",
            rfc3339(now)
        ))
    })
}

/// `Cluster "prod" at https://10.0.0.1:6443 (CA sha256 3f:a2:…) invites you as jane (groups: dev).`
fn introduction(opened: &Opened) -> String {
    let target = &opened.target;
    let ca = target
        .ca_pem
        .as_deref()
        .and_then(|pem| crate::pki::pem::certificates(pem).ok())
        .and_then(|chain| {
            use x509_cert::der::Encode;
            chain.first()?.to_der().ok()
        })
        .map(|der| {
            let hex = inventory::fingerprint(&der);
            let pairs: Vec<&str> = (0..8).map(|i| &hex[2 * i..2 * i + 2]).collect();
            format!("CA sha256 {}:…", pairs.join(":"))
        })
        .unwrap_or_else(|| "no CA: the server's certificate is taken on trust".into());
    let invited = &opened.invited;
    let groups = match invited.groups.is_empty() {
        true => String::new(),
        false => format!(" (groups: {})", invited.groups.join(", ")),
    };
    // The file's words: quoted and escaped, so that a name cannot fake the rest of the line.
    format!(
        "Cluster {:?} at {} ({ca}) invites you as {}{groups}.",
        target.cluster_name,
        crate::terminal::printable(&target.server),
        crate::terminal::printable(&invited.user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_invitation_is_refused_before_anything_is_sent() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        assert!(expired(&rfc3339(now + std::time::Duration::from_secs(60)), now).is_none());
        let err = expired(&rfc3339(now), now).unwrap().to_string();
        assert!(err.contains("this invitation expired at"), "{err}");
    }
}
