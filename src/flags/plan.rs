//! Flags → a validated plan. Everything the cluster would refuse is refused here, before any
//! request, so that a mistake costs nothing and says exactly what to change.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::rbac::Grant;
pub use crate::duration::{format_duration, parse_duration};
use crate::error::{Error, Result};
use crate::flags::cli::Args;
use crate::pki::key::{KeyAlgorithm, KeySource};
use crate::policy::{self, Refused};
use crate::terminal;
use crate::ui::report::OutputFormat;

/// X.520 upper bound for CommonName and OrganizationName (RFC 5280 ub-common-name).
const MAX_NAME_LEN: usize = 64;
/// The apiserver rejects `spec.expirationSeconds` below 600.
const MIN_DURATION: Duration = Duration::from_secs(600);
/// `spec.expirationSeconds` is an int32.
const MAX_DURATION: Duration = Duration::from_secs(i32::MAX as u64);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub use crate::policy::MASTERS;

#[derive(Debug, PartialEq)]
pub struct Plan {
    pub user: String,
    pub groups: Vec<String>,
    pub key: KeySource,
    /// `None`: leave the lifetime to the cluster's signer.
    pub duration: Option<Duration>,
    pub timeout: Duration,
    pub approve: bool,
    pub keep_csr: bool,
    /// Record the certificate in the cluster's inventory (not --no-record).
    pub record: bool,
    pub embed: bool,
    pub force: bool,
    pub use_context: bool,
    pub output_kubeconfig: Option<PathBuf>,
    pub namespace: Option<String>,
    /// RBAC bindings to make for the user.
    pub grants: Vec<Grant>,
    pub prove_identity: bool,
    /// `--allow-insecure-cluster`: copy insecure-skip-tls-verify into `--output-kubeconfig`.
    pub allow_insecure_cluster: bool,
    /// `--ca-cert --ca-key --server`: sign here with the cluster CA, no API call.
    pub offline: Option<Offline>,
    pub output: Option<OutputFormat>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub quiet: bool,
    pub verbose: bool,
    pub timings: bool,
}

/// Offline mode: what to sign with and which cluster the kubeconfig entry names.
#[derive(Clone, Debug, PartialEq)]
pub struct Offline {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server: String,
    pub cluster_name: String,
}

impl TryFrom<Args> for Plan {
    type Error = Error;

    fn try_from(args: Args) -> Result<Plan> {
        validate_user(&args.user)?;
        let offline = offline(args.ca_cert, args.ca_key, args.server, args.cluster_name)?;
        if offline.is_some() {
            let pointless = [
                (args.approve, "--approve"),
                (args.timeout.is_some(), "--timeout"),
                (args.keep_csr, "--keep-csr"),
                (args.context.is_some(), "--context"),
            ];
            if let Some((_, flag)) = pointless.iter().find(|(set, _)| *set) {
                return Err(Error::usage(format!(
                    "{flag} has no meaning offline: with --ca-key the certificate is signed here and no request goes to the cluster; drop {flag}"
                )));
            }
            if args.group.iter().any(|g| g == MASTERS) && !args.allow_masters {
                return Err(Error::usage(
                    "group system:masters makes a cluster-admin credential that cannot be revoked: it stays valid until it expires, whatever RBAC says; if you mean it, add --allow-masters (and a short --duration), else bind a ClusterRole such as cluster-admin",
                ));
            }
            if !args.clusterrole.is_empty() || !args.role.is_empty() {
                return Err(Error::usage(
                    "--clusterrole and --role bind roles through the API, which offline mode does not call: bind them afterwards with kubectl create clusterrolebinding/rolebinding, or drop --ca-key to go through the cluster",
                ));
            }
        } else if args.allow_masters {
            return Err(Error::usage(
                "--allow-masters works only offline (--ca-cert, --ca-key, --server): the API server refuses system:masters in requests",
            ));
        }
        let key = key_source(args.key, args.key_algorithm)?;
        let duration = duration_flag(args.duration.as_deref())?;
        let timeout = timeout_flag(args.timeout.as_deref())?;
        let output = args.output.as_deref().map(str::parse).transpose()?;
        let embed = args.embed.unwrap_or(true);
        if args.output_kubeconfig.is_some() && !embed {
            return Err(Error::usage(
                "--output-kubeconfig writes a standalone file, which needs the certificate and key embedded: drop --embed=false",
            ));
        }
        if let Some(ns) = &args.namespace {
            validate_namespace(ns)?;
        }
        let grants = grants(&args.clusterrole, &args.role, args.namespace.as_deref())?;
        Ok(Plan {
            groups: validate_groups(args.group, args.allow_masters)?,
            user: args.user,
            key,
            duration,
            timeout,
            approve: args.approve,
            keep_csr: args.keep_csr,
            record: !args.no_record,
            embed,
            force: args.force,
            use_context: args.use_context,
            output_kubeconfig: args.output_kubeconfig,
            namespace: args.namespace,
            grants,
            prove_identity: !args.no_verify,
            allow_insecure_cluster: args.allow_insecure_cluster,
            offline,
            output,
            kubeconfig: args.kubeconfig,
            context: args.context,
            quiet: args.quiet,
            verbose: args.verbose,
            timings: args.timings,
        })
    }
}

/// `--ca-cert --ca-key --server [--cluster-name]`: all three or none of them.
pub fn offline(
    ca_cert: Option<PathBuf>,
    ca_key: Option<PathBuf>,
    server: Option<String>,
    cluster_name: Option<String>,
) -> Result<Option<Offline>> {
    match (ca_cert, ca_key, server) {
        (None, None, None) => match cluster_name {
            Some(_) => Err(Error::usage(
                "--cluster-name names the cluster of offline mode: use it with --ca-cert, --ca-key and --server",
            )),
            None => Ok(None),
        },
        (Some(ca_cert), Some(ca_key), Some(server)) => {
            let host = server_host(&server)?;
            let cluster_name = cluster_name.unwrap_or(host);
            validate_cluster_name(&cluster_name)?;
            Ok(Some(Offline {
                ca_cert,
                ca_key,
                server,
                cluster_name,
            }))
        }
        (ca_cert, ca_key, server) => {
            let missing: Vec<&str> = [
                (ca_cert.is_none(), "--ca-cert"),
                (ca_key.is_none(), "--ca-key"),
                (server.is_none(), "--server"),
            ]
            .into_iter()
            .filter_map(|(missing, flag)| missing.then_some(flag))
            .collect();
            Err(Error::usage(format!(
                "offline mode needs --ca-cert, --ca-key and --server together; add {}",
                missing.join(" and ")
            )))
        }
    }
}

/// The host of an `https://host[:port][/path]` URL: the default cluster name offline.
pub fn server_host(url: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::usage(format!(
            "--server '{url}' {why}: give the API server's URL, e.g. https://10.0.0.1:6443"
        ))
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| bad("is not an https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@')
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("is not a plain URL"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok(host.to_string())
}

/// `--key FILE` or `--key-algorithm A` (default RSA-2048); they exclude each other.
pub fn key_source(key: Option<PathBuf>, algorithm: Option<String>) -> Result<KeySource> {
    Ok(match (key, algorithm) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "--key and --key-algorithm exclude each other: --key uses an existing key, --key-algorithm generates one",
            ));
        }
        (Some(path), None) => KeySource::File(path),
        (None, Some(name)) => KeySource::Generate(name.parse()?),
        (None, None) => KeySource::Generate(KeyAlgorithm::Rsa2048),
    })
}

/// `--duration`: a lifetime the API server accepts (see [`lifetime`]).
pub fn duration_flag(text: Option<&str>) -> Result<Option<Duration>> {
    text.map(|t| lifetime("--duration", t)).transpose()
}

/// `--timeout`: more than zero; 5m by default.
pub fn timeout_flag(text: Option<&str>) -> Result<Duration> {
    let timeout = match text {
        Some(t) => parse_duration("--timeout", t)?,
        None => DEFAULT_TIMEOUT,
    };
    if timeout.is_zero() {
        return Err(Error::usage(
            "--timeout must be more than 0s, e.g. 30s or 5m",
        ));
    }
    Ok(timeout)
}

/// A user name must fit a certificate's CN, a kubeconfig entry and a CSR object name.
pub fn validate_user(user: &str) -> Result<()> {
    let hint =
        "use 1-64 characters from letters, digits and . - _ @ +, starting with a letter or digit";
    if user.is_empty() {
        return Err(Error::usage(format!("the user name is empty: {hint}")));
    }
    if let Err(refused) = policy::user(user) {
        return Err(Error::usage(format!("{refused}: choose another name")));
    }
    if user.chars().count() > MAX_NAME_LEN {
        return Err(Error::usage(format!(
            "user name of {} characters is too long: a certificate's common name holds at most 64; {hint}",
            user.chars().count()
        )));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+');
    if let Some(bad) = user.chars().find(|c| !allowed(*c)) {
        return Err(Error::usage(format!(
            "user name '{}' contains {bad:?}, which cannot form a CSR object name: {hint}",
            user.escape_default()
        )));
    }
    if !user.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Error::usage(format!(
            "user name '{user}' must start with a letter or digit: {hint}"
        )));
    }
    Ok(())
}

/// Groups become O attributes; the API server's CertificateSubjectRestriction admission refuses
/// `system:masters` for the kube-apiserver-client signer (offline, `--allow-masters` permits it).
pub fn validate_groups(groups: Vec<String>, allow_masters: bool) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for group in groups {
        if group.trim().is_empty() {
            return Err(Error::usage(
                "--group is empty: give a group name, e.g. --group dev",
            ));
        }
        match policy::group(&group, allow_masters) {
            Ok(()) => {}
            Err(Refused::Masters) => {
                return Err(Error::usage(
                    "group system:masters cannot be requested: the API server's CertificateSubjectRestriction admission refuses it for kubernetes.io/kube-apiserver-client; bind a ClusterRole such as cluster-admin to the user instead",
                ));
            }
            Err(refused) => {
                return Err(Error::usage(format!(
                    "{refused}: choose another group, and bind a Role or ClusterRole to it"
                )));
            }
        }
        if group.chars().count() > MAX_NAME_LEN {
            return Err(Error::usage(format!(
                "group '{group}' is longer than 64 characters, the limit of a certificate's organization (O)"
            )));
        }
        if group.chars().any(terminal::is_unsafe) {
            return Err(Error::usage(format!(
                "group '{}' contains a control or bidirectional character",
                group.escape_default()
            )));
        }
        if !out.contains(&group) {
            out.push(group);
        }
    }
    Ok(out)
}

/// `--clusterrole` and `--role` (which needs `--namespace`) as bindings to make.
pub fn grants(
    cluster_roles: &[String],
    roles: &[String],
    namespace: Option<&str>,
) -> Result<Vec<Grant>> {
    let mut grants = Vec::new();
    for role in cluster_roles.iter().chain(roles) {
        if role.is_empty()
            || role.contains(['/', '%'])
            || role == "."
            || role == ".."
            || role.len() > MAX_OBJECT_NAME
            || role
                .chars()
                .any(|c| c.is_control() || terminal::is_unsafe(c))
        {
            let shown: String = role.chars().take(60).collect();
            return Err(Error::usage(format!(
                "'{}{}' is not a role name: a Role or ClusterRole name has 1 to {MAX_OBJECT_NAME} characters, none of them '/', '%' or a control character",
                shown.escape_default(),
                if role.chars().count() > 60 { "…" } else { "" }
            )));
        }
    }
    grants.extend(cluster_roles.iter().map(|r| Grant::ClusterRole(r.clone())));
    if !roles.is_empty() {
        let namespace = namespace.ok_or_else(|| {
            Error::usage(
                "--role binds a Role inside a namespace: add --namespace NS (or use --clusterrole)",
            )
        })?;
        grants.extend(roles.iter().map(|r| Grant::Role {
            role: r.clone(),
            namespace: namespace.to_string(),
        }));
    }
    grants.dedup();
    Ok(grants)
}

/// The longest object name the API server stores (a DNS subdomain's limit).
const MAX_OBJECT_NAME: usize = 253;

/// A name given on the command line to look up (a user, a request, an invitation): not empty,
/// at most 253 characters, nothing a terminal would act on. `what` says what it names.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let shown: String = name.chars().take(60).collect();
    let why = if name.trim().is_empty() {
        "is empty"
    } else if name.chars().count() > MAX_OBJECT_NAME {
        "is longer than 253 characters, more than Kubernetes takes"
    } else if name
        .chars()
        .any(|c| c.is_control() || terminal::is_unsafe(c))
    {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "the {what} '{}{}' {why}: give the name as kubectl onboard lists it",
        shown.escape_default(),
        if name.chars().count() > 60 { "…" } else { "" }
    )))
}

/// `--cluster-name`: anything printable.
pub fn validate_cluster_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "--cluster-name '{}' is not a usable name",
            name.escape_default()
        )));
    }
    Ok(())
}

/// A namespace is a DNS label (RFC 1123).
pub fn validate_namespace(ns: &str) -> Result<()> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "namespace '{ns}' is not valid: use lowercase letters, digits and '-', at most 63 characters"
        )))
    }
}

/// A certificate lifetime (`what` is `--duration` or where the text came from): a duration
/// the API server accepts, 10m to 68 years.
pub fn lifetime(what: &str, text: &str) -> Result<Duration> {
    let d = parse_duration(what, text)?;
    if d < MIN_DURATION {
        return Err(Error::usage(format!(
            "{what} {text} is too short: the API server refuses certificates shorter than 10m; use 10m or more"
        )));
    }
    if d > MAX_DURATION {
        return Err(Error::usage(format!(
            "{what} {text} is too long: a CSR can ask for at most 68 years (and signers cap it far lower, 1y by default); use e.g. 1y"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_to_look_up_are_bounded() {
        assert!(validate_name("user", "jane@example.com").is_ok());
        for bad in ["", "  ", "a\u{7}b", "x\u{202e}y"] {
            assert_eq!(
                validate_name("user", bad).unwrap_err().kind,
                Kind::Usage,
                "{bad:?}"
            );
        }
        let err = validate_name("user", &"n".repeat(100_000))
            .unwrap_err()
            .to_string();
        assert!(err.contains("longer than 253"), "{err}");
        assert!(err.len() < 300, "{}", err.len());
    }

    #[test]
    fn role_names_kubernetes_would_refuse_are_refused() {
        assert!(grants(&["view".into()], &[], None).is_ok());
        let huge = "r".repeat(100_000);
        let err = grants(&[huge], &[], None).unwrap_err().to_string();
        assert!(err.contains("1 to 253 characters"), "{err}");
        assert!(err.len() < 400, "{}", err.len());
        assert!(grants(&["a\nb".into()], &[], None).is_err());
        assert!(grants(&["a/b".into()], &[], None).is_err());
    }
    use crate::error::Kind;

    fn args(user: &str) -> Args {
        Args {
            user: user.into(),
            ..Default::default()
        }
    }

    fn usage_error(args: Args) -> String {
        let err = Plan::try_from(args).unwrap_err();
        assert_eq!(err.kind, Kind::Usage, "{err}");
        err.to_string()
    }

    #[test]
    fn durations_in_the_documented_forms() {
        let d = |s| parse_duration("--duration", s).unwrap().as_secs();
        assert_eq!(d("10m"), 600);
        assert_eq!(d("36h"), 36 * 3600);
        assert_eq!(d("90d"), 90 * 86_400);
        assert_eq!(d("1y"), 365 * 86_400);
        assert_eq!(d("1h30m"), 5400);
        assert_eq!(d("2w"), 14 * 86_400);
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            "abc",
            "-1h",
            "10",
            "h",
            "1.5h",
            "10M",
            "1h-",
            "99999999999999999999y",
        ] {
            let err = parse_duration("--duration", bad).unwrap_err();
            assert!(err.to_string().contains("e.g. 10m"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_below_ten_minutes_or_beyond_int32_are_usage_errors() {
        let mut a = args("jane");
        a.duration = Some("5m".into());
        assert!(usage_error(a).contains("10m or more"));
        let mut a = args("jane");
        a.duration = Some("100y".into());
        assert!(usage_error(a).contains("too long"));
        let mut a = args("jane");
        a.duration = Some("10m".into());
        assert_eq!(
            Plan::try_from(a).unwrap().duration,
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn defaults() {
        let plan = Plan::try_from(args("jane")).unwrap();
        assert_eq!(plan.key, KeySource::Generate(KeyAlgorithm::Rsa2048));
        assert_eq!(plan.duration, None);
        assert_eq!(plan.timeout, DEFAULT_TIMEOUT);
        assert!(plan.embed && plan.prove_identity && !plan.approve);
    }

    #[test]
    fn bad_user_names() {
        for (user, says) in [
            ("", "empty"),
            ("/", "CSR object name"),
            ("..", "start with a letter"),
            ("-dash", "start with a letter"),
            ("jané", "CSR object name"),
            ("a b", "CSR object name"),
            ("system:admin", "reserved"),
        ] {
            assert!(usage_error(args(user)).contains(says), "{user:?}");
        }
        assert!(usage_error(args(&"a".repeat(300))).contains("too long"));
        for good in ["jane", "jane.doe@example.com", "u1", "J_D+ops"] {
            Plan::try_from(args(good)).unwrap();
        }
    }

    #[test]
    fn groups_are_checked_and_deduplicated() {
        let mut a = args("jane");
        a.group = vec!["system:masters".into()];
        assert!(usage_error(a).contains("CertificateSubjectRestriction"));
        let mut a = args("jane");
        a.group = vec!["".into()];
        assert!(usage_error(a).contains("empty"));
        let mut a = args("jane");
        a.group = vec!["dev".into(), "ops, eu".into(), "dev".into()];
        assert_eq!(Plan::try_from(a).unwrap().groups, vec!["dev", "ops, eu"]);
    }

    #[test]
    fn flags_that_exclude_each_other() {
        let mut a = args("jane");
        a.key = Some("k.pem".into());
        a.key_algorithm = Some("rsa-2048".into());
        assert!(usage_error(a).contains("exclude each other"));
        let mut a = args("jane");
        a.output_kubeconfig = Some("out".into());
        a.embed = Some(false);
        assert!(usage_error(a).contains("--embed=false"));
        let mut a = args("jane");
        a.output = Some("table".into());
        assert!(usage_error(a).contains("-o json"));
        let mut a = args("jane");
        a.namespace = Some("Bad_NS".into());
        assert!(usage_error(a).contains("namespace"));
    }

    #[test]
    fn roles_become_grants_and_a_role_needs_a_namespace() {
        let mut a = args("jane");
        a.clusterrole = vec!["view".into()];
        a.role = vec!["deployer".into()];
        a.namespace = Some("team-a".into());
        assert_eq!(
            Plan::try_from(a).unwrap().grants,
            vec![
                Grant::ClusterRole("view".into()),
                Grant::Role {
                    role: "deployer".into(),
                    namespace: "team-a".into()
                }
            ]
        );
        let mut a = args("jane");
        a.role = vec!["deployer".into()];
        assert!(usage_error(a).contains("add --namespace"));
        let mut a = args("jane");
        a.clusterrole = vec!["a/b".into()];
        assert!(usage_error(a).contains("not a role name"));
    }

    fn offline_args(user: &str) -> Args {
        Args {
            ca_cert: Some("ca.crt".into()),
            ca_key: Some("ca.key".into()),
            server: Some("https://api.example.com:6443".into()),
            ..args(user)
        }
    }

    #[test]
    fn offline_needs_all_three_flags_and_refuses_what_needs_the_api() {
        let plan = Plan::try_from(offline_args("jane")).unwrap();
        assert_eq!(
            plan.offline,
            Some(Offline {
                ca_cert: "ca.crt".into(),
                ca_key: "ca.key".into(),
                server: "https://api.example.com:6443".into(),
                cluster_name: "api.example.com".into(),
            })
        );
        let mut a = offline_args("jane");
        a.server = None;
        assert!(usage_error(a).contains("add --server"));
        let mut a = args("jane");
        a.ca_key = Some("k".into());
        assert!(usage_error(a).contains("add --ca-cert and --server"));
        let mut a = args("jane");
        a.cluster_name = Some("c".into());
        assert!(usage_error(a).contains("--cluster-name"));
        for (flag, set) in [
            (
                "--approve",
                (|a: &mut Args| a.approve = true) as fn(&mut Args),
            ),
            ("--timeout", |a| a.timeout = Some("1m".into())),
            ("--keep-csr", |a| a.keep_csr = true),
            ("--context", |a| a.context = Some("c".into())),
        ] {
            let mut a = offline_args("jane");
            set(&mut a);
            assert!(
                usage_error(a).contains(&format!("{flag} has no meaning offline")),
                "{flag}"
            );
        }
        let mut a = offline_args("jane");
        a.clusterrole = vec!["view".into()];
        assert!(usage_error(a).contains("does not call"));
    }

    #[test]
    fn system_masters_only_offline_and_only_when_allowed() {
        let mut a = args("root");
        a.group = vec![MASTERS.into()];
        assert!(usage_error(a).contains("CertificateSubjectRestriction"));
        let mut a = offline_args("root");
        a.group = vec![MASTERS.into()];
        assert!(usage_error(a).contains("add --allow-masters"));
        let mut a = offline_args("root");
        a.group = vec![MASTERS.into()];
        a.allow_masters = true;
        assert_eq!(Plan::try_from(a).unwrap().groups, [MASTERS]);
        let mut a = args("root");
        a.allow_masters = true;
        assert!(usage_error(a).contains("only offline"));
    }

    #[test]
    fn server_hosts() {
        let host = |url| server_host(url).unwrap();
        assert_eq!(host("https://10.0.0.1:6443"), "10.0.0.1");
        assert_eq!(host("https://api.example.com/prefix"), "api.example.com");
        assert_eq!(host("https://[fd00::1]:6443"), "fd00::1");
        for bad in [
            "http://x",
            "x:6443",
            "https://",
            "https://u@x",
            "https://a b",
        ] {
            assert_eq!(server_host(bad).unwrap_err().kind, Kind::Usage, "{bad}");
        }
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(365 * 86_400)), "1y");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(3599)), "3599s");
        assert_eq!(format_duration(Duration::from_secs(86_400 + 3600)), "25h");
    }
}
