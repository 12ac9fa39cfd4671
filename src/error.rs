//! The one error type. Every failure is one line that says what happened, why, and what to do
//! next; its kind picks the exit code documented in the README.

use std::fmt;

/// Exit codes, as documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Rejected = 3,
    Timeout = 4,
    Expiring = 5,
    Interrupted = 130,
    Terminated = 143,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags or arguments: nothing was sent to the cluster.
    Usage,
    /// Anything that went wrong on the way (kubeconfig, network, permissions, files).
    Failed,
    /// The CSR was denied by an approver or failed by the signer.
    Rejected,
    /// No certificate within --timeout.
    Timeout,
    /// `status --warn`: a certificate expires within the window (or has expired).
    Expiring,
    /// SIGINT (Ctrl-C).
    Interrupted,
    /// SIGTERM.
    Terminated,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    /// The same error with `more` said after it: what became of things, what to do next.
    pub fn context(self, more: impl std::fmt::Display) -> Self {
        Error::new(self.kind, format!("{}; {more}", self.message))
    }

    /// SIGINT or SIGTERM: the user stopped us.
    pub fn is_interruption(&self) -> bool {
        matches!(self.kind, Kind::Interrupted | Kind::Terminated)
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Usage => ExitCode::Usage,
            Kind::Failed => ExitCode::Error,
            Kind::Rejected => ExitCode::Rejected,
            Kind::Timeout => ExitCode::Timeout,
            Kind::Expiring => ExitCode::Expiring,
            Kind::Interrupted => ExitCode::Interrupted,
            Kind::Terminated => ExitCode::Terminated,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the sources said, and nothing a terminal would act on.
        let line = self.message.replace(['\n', '\r'], " ");
        f.write_str(&crate::terminal::printable(&line))
    }
}

impl std::error::Error for Error {}

impl From<ExitCode> for i32 {
    fn from(code: ExitCode) -> i32 {
        code as i32
    }
}

/// `--warn`'s verdict: exit 5 naming the users whose certificates are `due`, of `total` shown.
pub fn check_due(due: &[&str], total: usize, warn: &str) -> Result<()> {
    if due.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Kind::Expiring,
        format!(
            "{} of {total} certificates expire within {warn}: {}; renew them (kubectl onboard renew USER)",
            due.len(),
            due.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let code = |kind| i32::from(Error::new(kind, "x").exit_code());
        assert_eq!(code(Kind::Failed), 1);
        assert_eq!(code(Kind::Usage), 2);
        assert_eq!(code(Kind::Rejected), 3);
        assert_eq!(code(Kind::Timeout), 4);
        assert_eq!(code(Kind::Expiring), 5);
        assert_eq!(code(Kind::Interrupted), 130);
        assert_eq!(code(Kind::Terminated), 143);
    }

    #[test]
    fn display_is_one_line() {
        let e = Error::failed("first\nsecond\r\nthird");
        assert!(!e.to_string().contains('\n'));
        assert!(!e.to_string().contains('\r'));
    }

    #[test]
    fn display_escapes_what_a_terminal_would_act_on() {
        let e = Error::failed("denied: \x1b[2Jgone \u{202E}txet");
        assert_eq!(e.to_string(), "denied: \\u{1b}[2Jgone \\u{202e}txet");
    }
}
