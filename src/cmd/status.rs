//! `kubectl onboard status`: every user in the loaded kubeconfig(s) that has a client
//! certificate, with its subject, issuer and expiry — what people do today with
//! `openssl x509 -in … -text -noout`. `--warn 30d` makes it a check for cron and monitoring.
//! A certificate on the revocation list of the context's cluster (`kubectl onboard revoke`) is
//! marked revoked; when that list cannot be read within a few seconds, status says so with
//! `-v` and shows the rest, so that it keeps working offline.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use argh::{ArgsInfo, FromArgs};
use serde_json::{Value, json};

use crate::cluster::session::display_paths;
use crate::cluster::{self, Connection};
use crate::duration::{days_left, warn_window};
use crate::error::Result;
use crate::error::check_due;
use crate::flags::cli::flags;
use crate::kubeconfig;
use crate::kubeconfig::certificates::{Cert, held};
use crate::pki::verify::rfc3339;
use crate::records::revocation;
use crate::ui::progress::Progress;
use crate::ui::report::Output;

flags! {
    /// Show the client certificates of the users in your kubeconfig: subject, issuer, expiry.
    #[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq)]
    #[argh(
        example = "Which certificates expire within a month? (exit 5 if any)\n  $ {command_name} --warn 30d",
        error_code(5, "--warn: a certificate expires within the window or has expired.")
    )]
    pub struct Args {
        /// mark certificates that expire within this long, e.g. 30d, and exit 5 if there are any
        #[argh(option)]
        pub warn: Option<String>,
    }
    with connection, output
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub user: String,
    pub source: PathBuf,
    pub certificate: std::result::Result<Cert, String>,
    /// The message of its entry on the cluster's revocation list, when it is on it.
    pub revoked: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Ok,
    Expiring,
    Expired,
    Revoked,
    Unreadable,
}

impl Expiry {
    fn as_str(self) -> &'static str {
        match self {
            Expiry::Ok => "ok",
            Expiry::Expiring => "expiring",
            Expiry::Expired => "expired",
            Expiry::Revoked => "revoked",
            Expiry::Unreadable => "unreadable",
        }
    }
}

pub async fn run(args: Args) -> Result<()> {
    let warn = warn_window(args.warn.as_deref())?;
    let output = Output::from_flags(args.output.as_deref(), args.quiet, args.verbose)?;
    let mut progress = output.progress(false);
    let loaded = kubeconfig::load(args.kubeconfig.as_deref())?;
    progress.detail(&format!(
        "kubeconfig: read {}",
        display_paths(&loaded.sources.read)
    ));
    let mut rows = read_rows(&loaded.merged);
    if rows.iter().any(|r| r.certificate.is_ok()) {
        mark_revoked(&mut rows, &loaded, args.context.as_deref(), &mut progress).await;
    }
    let now = SystemTime::now();
    output.print(|| to_value(&rows, now, warn), &table(&rows, now, warn))?;
    if let Some(window) = warn {
        let due: Vec<&str> = rows
            .iter()
            .filter(|r| {
                matches!(
                    expiry(r, now, Some(window)),
                    Expiry::Expiring | Expiry::Expired
                )
            })
            .map(|r| r.user.as_str())
            .collect();
        check_due(&due, rows.len(), args.warn.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// How long status waits for the revocation list: it is a check that must work offline.
const REVOCATION_WAIT: Duration = Duration::from_secs(3);

/// Marks the rows whose certificate is on the revocation list of the context's cluster. A
/// list that cannot be read (no cluster, no permission, no answer) marks nothing, said with -v.
async fn mark_revoked(
    rows: &mut [Row],
    loaded: &kubeconfig::Loaded,
    context: Option<&str>,
    progress: &mut Progress,
) {
    let reading = async {
        let target = loaded.read_target(context)?;
        let conn = Connection::open(loaded, &target).await?;
        let list = revocation::list(&conn).await?;
        let problems = match list.is_empty() {
            true => Ok(Vec::new()),
            false => revocation::enforcement::problems(&conn).await,
        };
        Ok((list, problems))
    };
    let deadline = tokio::time::Instant::now() + REVOCATION_WAIT;
    let doing = "reading the revocation list";
    match cluster::within(deadline, "3s", doing, reading).await {
        Ok((list, problems)) => {
            for row in rows.iter_mut() {
                if let Ok(cert) = &row.certificate {
                    row.revoked = list.get(&cert.fingerprint).cloned();
                }
            }
            let marked = rows.iter().filter(|r| r.revoked.is_some()).count();
            match problems {
                Ok(found) if marked > 0 && !found.is_empty() => progress.warn(&format!(
                    "a certificate shown as revoked may not be refused: {}; an administrator can run kubectl onboard revoke --repair",
                    found.join("; ")
                )),
                Ok(_) => {}
                Err(why) => progress.detail(&format!("revocation policy not checked: {why}")),
            }
        }
        Err(e) => progress.detail(&format!("revocations not checked: {e}")),
    }
}

/// Every user with a client certificate in the kubeconfig, not yet marked revoked.
pub fn read_rows(merged: &kubeconfig::edit::Merged) -> Vec<Row> {
    held(merged)
        .into_iter()
        .map(|h| Row {
            user: h.user,
            source: h.source,
            certificate: h.certificate,
            revoked: None,
        })
        .collect()
}

/// What the table and JSON show: revoked before anything but expired (an expired certificate
/// no longer works at all, and leaves the revocation list).
pub fn state(row: &Row, now: SystemTime, warn: Option<Duration>) -> Expiry {
    match expiry(row, now, warn) {
        Expiry::Expired | Expiry::Unreadable => expiry(row, now, warn),
        _ if row.revoked.is_some() => Expiry::Revoked,
        other => other,
    }
}

fn expiry(row: &Row, now: SystemTime, warn: Option<Duration>) -> Expiry {
    match &row.certificate {
        Err(_) => Expiry::Unreadable,
        Ok(c) if c.not_after <= now => Expiry::Expired,
        Ok(c) if warn.is_some_and(|w| c.not_after <= now + w) => Expiry::Expiring,
        Ok(_) => Expiry::Ok,
    }
}

fn to_value(rows: &[Row], now: SystemTime, warn: Option<Duration>) -> Value {
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({
                "user": r.user,
                "source": r.source.display().to_string(),
                "state": state(r, now, warn).as_str(),
            });
            match &r.certificate {
                Ok(c) => {
                    v["commonName"] = json!(c.common_name);
                    v["groups"] = json!(c.groups);
                    v["issuer"] = json!(c.issuer);
                    v["notAfter"] = json!(rfc3339(c.not_after));
                    v["daysLeft"] = json!(days_left(c.not_after, now));
                }
                Err(why) => v["error"] = json!(why),
            }
            if let Some(message) = &r.revoked {
                v["revoked"] = json!(message);
            }
            v
        })
        .collect();
    json!({ "users": items })
}

fn table(rows: &[Row], now: SystemTime, warn: Option<Duration>) -> String {
    if rows.is_empty() {
        return "No user in the kubeconfig has a client certificate.\n".into();
    }
    let header = [
        "USER",
        "CN",
        "GROUPS",
        "ISSUER",
        "NOT AFTER",
        "DAYS LEFT",
        "STATE",
        "SOURCE",
    ]
    .map(String::from);
    let mut lines = vec![header.to_vec()];
    for r in rows {
        let source = r.source.display().to_string();
        let state = state(r, now, warn).as_str().to_string();
        lines.push(match &r.certificate {
            Ok(c) => vec![
                r.user.clone(),
                c.common_name.clone(),
                if c.groups.is_empty() {
                    "-".into()
                } else {
                    c.groups.join(",")
                },
                c.issuer.clone(),
                rfc3339(c.not_after),
                days_left(c.not_after, now).to_string(),
                state,
                source,
            ],
            Err(why) => vec![
                r.user.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("{state}: {why}"),
                source,
            ],
        });
    }
    crate::ui::report::table(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(not_after: Option<SystemTime>) -> Row {
        Row {
            user: "u".into(),
            source: "/k".into(),
            certificate: not_after
                .map(|t| Cert {
                    common_name: "u".into(),
                    groups: vec![],
                    issuer: "CN=ca".into(),
                    not_after: t,
                    fingerprint: "ab".into(),
                })
                .ok_or_else(|| "gone".to_string()),
            revoked: None,
        }
    }

    #[test]
    fn states_and_days_left() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = Duration::from_secs(86_400);
        let month = Some(30 * day);
        assert_eq!(state(&row(Some(now + 40 * day)), now, month), Expiry::Ok);
        assert_eq!(
            state(&row(Some(now + 10 * day)), now, month),
            Expiry::Expiring
        );
        assert_eq!(state(&row(Some(now + 10 * day)), now, None), Expiry::Ok);
        assert_eq!(state(&row(Some(now - day)), now, None), Expiry::Expired);
        assert_eq!(state(&row(None), now, month), Expiry::Unreadable);
        let revoked = |not_after| Row {
            revoked: Some("left".into()),
            ..row(Some(not_after))
        };
        assert_eq!(state(&revoked(now + 10 * day), now, month), Expiry::Revoked);
        assert_eq!(
            expiry(&revoked(now + 10 * day), now, month),
            Expiry::Expiring
        );
        assert_eq!(state(&revoked(now - day), now, month), Expiry::Expired);
        assert_eq!(days_left(now + 10 * day + Duration::from_secs(5), now), 10);
        assert_eq!(days_left(now - Duration::from_secs(5), now), -1);
    }

    #[test]
    fn users_without_certificates_are_left_out_and_the_first_file_wins() {
        let doc = |path: &str, users: Value| kubeconfig::edit::Document {
            path: path.into(),
            value: json!({ "users": users }),
        };
        let merged = kubeconfig::edit::Merged {
            documents: vec![
                doc(
                    "/a",
                    json!([{"name": "tok", "user": {"token": "t"}}, {"name": "dup", "user": {"client-certificate-data": "!!"}}]),
                ),
                doc(
                    "/b/config",
                    json!([{"name": "dup", "user": {"client-certificate": "c.crt"}}, {"name": "file", "user": {"client-certificate": "missing.crt"}}]),
                ),
            ],
        };
        let rows = read_rows(&merged);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].user.as_str(), rows[0].source.as_path()),
            ("dup", std::path::Path::new("/a"))
        );
        assert_eq!(
            rows[0].certificate,
            Err("client-certificate-data in /a is not base64".into())
        );
        assert!(
            rows[1]
                .certificate
                .as_ref()
                .unwrap_err()
                .contains("/b/missing.crt"),
            "{:?}",
            rows[1]
        );
    }
}
