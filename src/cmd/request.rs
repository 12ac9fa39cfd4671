//! `kubectl onboard request`: the new user's half of two-party onboarding, where the private
//! key never leaves the user's machine. It makes the key and the PKCS#10 request
//! (`openssl genrsa` + `openssl req -new -subj "/CN=jane/O=dev"`), keeps the key in
//! `~/.kube/onboard/keys` (see `pki/keystore.rs`) and writes the request for an administrator, who
//! runs `kubectl onboard sign`. Nothing is sent anywhere.

use std::io::Write;
use std::path::{Path, PathBuf};

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use crate::csr;
use crate::error::{Error, Result};
use crate::flags::cli::flags;
use crate::flags::plan;
use crate::kubeconfig::file::{Mode, Transaction};
use crate::pipeline;
use crate::pki::keystore;
use crate::terminal::shell_quote;
use crate::ui::report::Output;

flags! {
    /// Make a private key and a certificate request to send to a cluster administrator; the key
    /// stays on this machine.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Ask for access as jane in group dev:\n  $ {command_name} jane --group dev --csr-out jane.csr",
        note = "The key is kept 0600 in ~/.kube/onboard/keys, named after its public key, where kubectl onboard import finds it again."
    )]
    pub struct Args {
        /// your user name: the certificate's common name (CN)
        #[argh(positional)]
        pub user: String,

        /// a group to ask for: the certificate's organization (O); repeat for several
        #[argh(option, short = 'g')]
        pub group: Vec<String>,

        /// where to write the PEM certificate request (default: <user>.csr; - for stdout)
        #[argh(option)]
        pub csr_out: Option<PathBuf>,

        /// overwrite an existing --csr-out file
        #[argh(switch)]
        pub force: bool,
    }
    with output, key
}

pub async fn run(args: Args) -> Result<()> {
    plan::validate_user(&args.user)?;
    let groups = plan::validate_groups(args.group, false)?;
    let source = plan::key_source(args.key, args.key_algorithm)?;
    let out = args
        .csr_out
        .unwrap_or_else(|| PathBuf::from(format!("{}.csr", args.user)));
    let to_stdout = out == Path::new("-");
    if !to_stdout && !args.force && out.exists() {
        return Err(Error::failed(format!(
            "{} already exists; pass --force to overwrite it, or choose another --csr-out",
            out.display()
        )));
    }
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);

    let key = pipeline::key(&source, None, &mut progress)?;
    let request = csr::build(&args.user, &groups, &key)?;

    let kept = Transaction::all(|tx| {
        let kept = keystore::store(&key, tx)?;
        if !to_stdout {
            tx.write(&out, request.as_bytes(), Mode::Keep)?;
        }
        Ok(kept)
    })?;

    progress.detail(&format!("kept the key in {}", kept.display()));
    let made = Made {
        user: &args.user,
        groups: &groups,
        csr: (!to_stdout).then_some(out.as_path()),
        request: &request,
        kept: &kept,
        key_algorithm: key.algorithm(),
        fingerprint: keystore::fingerprint(&key.public_key_der()),
    };
    if output.format.is_some() {
        return output.print(|| made.to_value(), "");
    }
    match made.csr {
        Some(_) => print!("{}", made.text()),
        None => {
            // The request is the result; the instructions go with the progress.
            print!("{request}");
            std::io::stdout().flush().ok();
            if !args.quiet {
                eprint!("{}", made.text());
            }
        }
    }
    Ok(())
}

/// What `request` made, for the instructions and `-o json|yaml`.
struct Made<'a> {
    user: &'a str,
    groups: &'a [String],
    /// Where the request was written; `None`: to stdout.
    csr: Option<&'a Path>,
    request: &'a str,
    kept: &'a Path,
    key_algorithm: String,
    fingerprint: String,
}

impl Made<'_> {
    /// What was written, and the two commands that follow, ready to paste.
    fn text(&self) -> String {
        let kubeconfig_name = format!("{}.kubeconfig", self.user);
        let (mut text, csr_name, send) = match self.csr {
            Some(path) => {
                let groups = match self.groups.is_empty() {
                    true => "no groups".to_string(),
                    false => format!("groups: {}", self.groups.join(", ")),
                };
                let name = path
                    .file_name()
                    .map_or(path.display().to_string(), |n| n.to_string_lossy().into());
                let wrote = format!(
                    "Wrote the certificate request for \"{}\" ({groups}) to {}.\n",
                    self.user,
                    path.display()
                );
                (wrote, name.clone(), format!("Send {name} to"))
            }
            None => {
                let name = format!("{}.csr", self.user);
                let send = format!("Send the request (written to stdout) as {name} to");
                (String::new(), name, send)
            }
        };
        text += &format!(
            "The private key stays on this machine, in {} (0600).\n\
             Public key fingerprint: {} (sign shows it too: compare them by phone or chat)\n\
             {send} a cluster administrator, who runs:\n  \
             kubectl onboard sign {} --approve --output-kubeconfig {}\n\
             and sends back {kubeconfig_name} (it holds no secret). Then run:\n  \
             kubectl onboard import {}\n",
            self.kept.display(),
            self.fingerprint,
            shell_quote(&csr_name),
            shell_quote(&kubeconfig_name),
            shell_quote(&kubeconfig_name),
        );
        text
    }

    fn to_value(&self) -> serde_json::Value {
        json!({
            "user": self.user,
            "groups": self.groups,
            "csr": self.csr.map(|p| p.display().to_string()),
            "request": self.request,
            "keyFile": self.kept.display().to_string(),
            "keyAlgorithm": self.key_algorithm,
            "fingerprint": self.fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_quote("jane.csr"), "jane.csr");
        assert_eq!(shell_quote("a b.csr"), "'a b.csr'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
