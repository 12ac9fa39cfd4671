//! Invitations: self-service onboarding that starts from a credential the tool makes and
//! limits. An invitation is, on the server ([`server`]):
//!
//! - a record, the ConfigMap `<name>` in [`NAMESPACE`]: the invited user, groups, grants,
//!   lifetime, expiry, and what became of it (open, used by request R, withdrawn);
//! - a credential, the ServiceAccount `<name>` there, whose short-lived token (TokenRequest)
//!   is handed over in the invitation file ([`file`]). One ClusterRoleBinding lets the
//!   namespace's ServiceAccounts create and read CertificateSigningRequests, nothing else; a
//!   Role and RoleBinding `<name>` let the ServiceAccount delete itself, which `accept` does once
//!   it holds its certificate: deleting a ServiceAccount makes its tokens fail (401).
//!
//! Whoever holds the token may ask for any name; what makes the invitation safe is `approve`,
//! which approves a request made with it only when it asks for exactly what was invited
//! ([`differences`]), and marks the invitation used first, so that it serves once.

pub mod approval;
pub mod file;
pub mod server;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::cluster::rbac::Grant;
use crate::duration::format_duration;
use crate::pki::verify::{parse_rfc3339, rfc3339};

/// Where invitations live: apart from the inventory, so that their ServiceAccounts (a group
/// of their own, `system:serviceaccounts:<namespace>`) can be granted CSRs and nothing else.
pub const NAMESPACE: &str = "kubectl-onboard-invitations";
/// The ClusterRole and ClusterRoleBinding that let invitations request certificates.
pub const CLUSTER_ROLE: &str = "kubectl-onboard:invitation";
/// The label on every object of an invitation.
pub const LABEL: (&str, &str) = ("kubectl-onboard/invitation", "true");
/// Shortest and default lifetime of an invitation (`--expires`): TokenRequest's minimum is 10m.
pub const MIN_EXPIRY: Duration = Duration::from_secs(600);
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// The longest `--expires`: an invitation is for someone about to start, and its token is a
/// bearer credential until it is used.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 86_400);
/// How long the credential of a used invitation is kept for `accept` to read its certificate,
/// in case it did not delete it itself (interrupted): then any invitation command does.
pub const USED_GRACE: Duration = Duration::from_secs(15 * 60);
/// How long the record of a finished invitation is kept after it expired.
pub const RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// What was decided about an invitation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    Open,
    /// Approved through request `request`, the object with uid `uid` (a request made again
    /// under the same name is another object), at `at` (RFC 3339).
    Used {
        request: String,
        uid: String,
        at: String,
    },
    Withdrawn,
}

/// One invitation, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub name: String,
    pub user: String,
    pub groups: Vec<String>,
    pub grants: Vec<Grant>,
    /// The longest certificate lifetime it allows (`None`: the signer's default).
    pub duration: Option<Duration>,
    pub created: String,
    pub expires: String,
    pub invited_by: Option<String>,
    pub stored: Stored,
}

/// What an invitation is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    /// A request made with it waits for a decision.
    Requested,
    Used,
    Expired,
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Requested => "requested",
            State::Used => "used",
            State::Expired => "expired",
            State::Withdrawn => "withdrawn",
        }
    }
}

impl Invitation {
    /// The user name its ServiceAccount authenticates as: the requester of its requests.
    pub fn requester(&self) -> String {
        requester(&self.name)
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.expires)
    }

    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at().is_none_or(|t| t <= now)
    }

    /// Its state at `now`; `requested`: a request made with it waits.
    pub fn state(&self, now: SystemTime, requested: bool) -> State {
        match &self.stored {
            Stored::Used { .. } => State::Used,
            Stored::Withdrawn => State::Withdrawn,
            Stored::Open if self.expired(now) => State::Expired,
            Stored::Open if requested => State::Requested,
            Stored::Open => State::Open,
        }
    }

    /// Whether its credential (the ServiceAccount) must go at `now`: used (after
    /// [`USED_GRACE`]), withdrawn or expired.
    pub fn credential_done(&self, now: SystemTime) -> bool {
        match &self.stored {
            Stored::Used { at, .. } => parse_rfc3339(at).is_none_or(|at| at + USED_GRACE <= now),
            Stored::Withdrawn => true,
            Stored::Open => self.expired(now),
        }
    }

    /// Whether its record has been kept long enough at `now`.
    pub fn stale(&self, now: SystemTime) -> bool {
        self.expires_at().is_none_or(|t| t + RETENTION <= now)
    }

    /// The record's data (ConfigMap `data`).
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::from([
            ("user".to_string(), self.user.clone()),
            (
                "groups".to_string(),
                serde_json::to_string(&self.groups).unwrap_or_default(),
            ),
            ("grants".to_string(), grants_to_json(&self.grants)),
            ("created".to_string(), self.created.clone()),
            ("expires".to_string(), self.expires.clone()),
        ]);
        if let Some(d) = self.duration {
            data.insert("duration".into(), d.as_secs().to_string());
        }
        if let Some(who) = &self.invited_by {
            data.insert("invitedBy".into(), who.clone());
        }
        let state = match &self.stored {
            Stored::Open => "open",
            Stored::Used { request, uid, at } => {
                data.insert("request".into(), request.clone());
                data.insert("requestUID".into(), uid.clone());
                data.insert("usedAt".into(), at.clone());
                "used"
            }
            Stored::Withdrawn => "withdrawn",
        };
        data.insert("state".into(), state.into());
        data
    }

    /// The invitation recorded as `data` under `name`; `None` when it is not one of ours.
    pub fn from_data(name: &str, data: &BTreeMap<String, String>) -> Option<Invitation> {
        let get = |key: &str| data.get(key).cloned();
        let stored = match data.get("state").map(String::as_str) {
            Some("open") => Stored::Open,
            Some("used") => Stored::Used {
                request: get("request").unwrap_or_default(),
                uid: get("requestUID").unwrap_or_default(),
                at: get("usedAt").unwrap_or_default(),
            },
            Some("withdrawn") => Stored::Withdrawn,
            _ => return None,
        };
        Some(Invitation {
            name: name.to_string(),
            user: get("user")?,
            groups: serde_json::from_str(data.get("groups")?).ok()?,
            grants: grants_from_json(data.get("grants")?)?,
            duration: match data.get("duration") {
                Some(s) => Some(Duration::from_secs(s.parse().ok()?)),
                None => None,
            },
            created: get("created").unwrap_or_default(),
            expires: get("expires")?,
            invited_by: get("invitedBy"),
            stored,
        })
    }

    /// `jane (groups: dev)`.
    pub fn identity(&self) -> String {
        match self.groups.is_empty() {
            true => self.user.clone(),
            false => format!("{} (groups: {})", self.user, self.groups.join(", ")),
        }
    }

    /// `ClusterRole view, Role edit in team` or `-`.
    pub fn grants_text(&self) -> String {
        if self.grants.is_empty() {
            return "-".into();
        }
        let each: Vec<String> = self.grants.iter().map(grant_text).collect();
        each.join(", ")
    }
}

/// `ClusterRole view`, `Role edit in team`.
pub fn grant_text(grant: &Grant) -> String {
    match grant {
        Grant::ClusterRole(role) => format!("ClusterRole {role}"),
        Grant::Role { role, namespace } => format!("Role {role} in {namespace}"),
    }
}

/// `system:serviceaccount:<NAMESPACE>:<name>`.
pub fn requester(name: &str) -> String {
    format!("system:serviceaccount:{NAMESPACE}:{name}")
}

/// The invitation a request was made with, from its requester; `None` for any other.
pub fn of_requester(requester: &str) -> Option<&str> {
    requester
        .strip_prefix("system:serviceaccount:")?
        .strip_prefix(NAMESPACE)?
        .strip_prefix(':')
        .filter(|name| !name.is_empty())
}

fn grants_to_json(grants: &[Grant]) -> String {
    grants_value(grants).to_string()
}

/// The grants as the record and `-o json` hold them: `{clusterRole}` or `{role, namespace}`.
pub fn grants_value(grants: &[Grant]) -> serde_json::Value {
    let each: Vec<serde_json::Value> = grants
        .iter()
        .map(|g| match g {
            Grant::ClusterRole(role) => serde_json::json!({"clusterRole": role}),
            Grant::Role { role, namespace } => {
                serde_json::json!({"role": role, "namespace": namespace})
            }
        })
        .collect();
    serde_json::Value::Array(each)
}

fn grants_from_json(text: &str) -> Option<Vec<Grant>> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    list.iter()
        .map(|g| {
            let field = |k: &str| g.get(k).and_then(|v| v.as_str()).map(String::from);
            match (field("clusterRole"), field("role"), field("namespace")) {
                (Some(role), None, None) => Some(Grant::ClusterRole(role)),
                (None, Some(role), Some(namespace)) => Some(Grant::Role { role, namespace }),
                _ => None,
            }
        })
        .collect()
}

/// What a request asks for, as `approve` compares it with its invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked<'a> {
    /// The request's name and uid: the very object that used the invitation may be approved
    /// again (an approval that failed after marking it used resumes); another object made under
    /// its name may not.
    pub request: &'a str,
    pub uid: &'a str,
    pub common_name: Option<&'a str>,
    pub groups: &'a [String],
    /// `spec.expirationSeconds`.
    pub expiration_seconds: Option<i32>,
}

/// Everything that keeps a request from being approved through `invitation` at `now`, each
/// in words for the administrator; empty: it asks for exactly what was invited.
pub fn differences(invitation: &Invitation, asked: &Asked<'_>, now: SystemTime) -> Vec<String> {
    let mut found = Vec::new();
    let name = &invitation.name;
    match &invitation.stored {
        Stored::Used { request, uid, .. }
            if request == asked.request && !uid.is_empty() && uid == asked.uid => {}
        Stored::Used { request, uid, .. } if request == asked.request => found.push(format!(
            "invitation {name} was used already, by an earlier request {request} (uid {uid}) that has since been deleted; this one (uid {}) was made again under its name",
            asked.uid
        )),
        Stored::Used { request, .. } => found.push(format!(
            "invitation {name} was used already (request {request})"
        )),
        Stored::Withdrawn => found.push(format!("invitation {name} was withdrawn")),
        Stored::Open if invitation.expired(now) => found.push(format!(
            "invitation {name} expired at {}",
            invitation.expires
        )),
        Stored::Open => {}
    }
    if asked.request != name {
        found.push(format!(
            "it is named {}: only the request kubectl onboard accept makes, {name}, is approved with the invitation",
            asked.request
        ));
    }
    if asked.common_name != Some(invitation.user.as_str()) {
        found.push(format!(
            "it asks for user '{}', the invitation is for '{}'",
            asked.common_name.unwrap_or("<none or several>"),
            invitation.user
        ));
    }
    let mut want: Vec<&String> = invitation.groups.iter().collect();
    let mut got: Vec<&String> = asked.groups.iter().collect();
    want.sort();
    want.dedup();
    got.sort();
    got.dedup();
    if want != got || asked.groups.len() != got.len() {
        found.push(format!(
            "it asks for groups [{}], the invitation grants [{}]",
            asked.groups.join(", "),
            invitation.groups.join(", ")
        ));
    }
    if let Some(most) = invitation.duration {
        let asked_for = asked
            .expiration_seconds
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64));
        match asked_for {
            Some(d) if d <= most => {}
            Some(d) => found.push(format!(
                "it asks for a {} certificate, the invitation allows at most {}",
                format_duration(d),
                format_duration(most)
            )),
            None => found.push(format!(
                "it asks for the signer's default lifetime, the invitation allows at most {}",
                format_duration(most)
            )),
        }
    }
    found
}

/// A new invitation's record, open, expiring `expires` after `now`.
pub fn new(
    name: String,
    user: &str,
    groups: &[String],
    grants: &[Grant],
    duration: Option<Duration>,
    expires: Duration,
    now: SystemTime,
) -> Invitation {
    Invitation {
        name,
        user: user.to_string(),
        groups: groups.to_vec(),
        grants: grants.to_vec(),
        duration,
        created: rfc3339(now),
        expires: rfc3339(now + expires),
        invited_by: None,
        stored: Stored::Open,
    }
}

/// One invitation as `-o json|yaml` shows it (`invite`, `invitations`).
pub fn invitation_value(i: &Invitation, state: State) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": i.name,
        "user": i.user,
        "groups": i.groups,
        "grants": grants_value(&i.grants),
        "durationSeconds": i.duration.map(|d| d.as_secs()),
        "created": i.created,
        "expires": i.expires,
        "invitedBy": i.invited_by,
        "state": state.as_str(),
    });
    if let Stored::Used { request, at, .. } = &i.stored {
        v["request"] = serde_json::json!(request);
        v["usedAt"] = serde_json::json!(at);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane(now: SystemTime) -> Invitation {
        new(
            "jane-x7k2q9".into(),
            "jane",
            &["dev".into(), "ops".into()],
            &[
                Grant::ClusterRole("view".into()),
                Grant::Role {
                    role: "edit".into(),
                    namespace: "team".into(),
                },
            ],
            Some(Duration::from_secs(90 * 86_400)),
            DEFAULT_EXPIRY,
            now,
        )
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn a_record_reads_back_as_written_in_every_state() {
        let mut invitation = jane(now());
        invitation.invited_by = Some("admin".into());
        for stored in [
            Stored::Open,
            Stored::Used {
                request: "jane-abc123".into(),
                uid: "u-1".into(),
                at: rfc3339(now()),
            },
            Stored::Withdrawn,
        ] {
            invitation.stored = stored;
            let data = invitation.to_data();
            assert_eq!(
                Invitation::from_data(&invitation.name, &data),
                Some(invitation.clone())
            );
        }
        let mut data = invitation.to_data();
        data.insert("state".into(), "odd".into());
        assert_eq!(Invitation::from_data("x", &data), None);
    }

    #[test]
    fn states_follow_the_record_and_the_clock() {
        let invitation = jane(now());
        let later = now() + DEFAULT_EXPIRY;
        assert_eq!(invitation.state(now(), false), State::Open);
        assert_eq!(invitation.state(now(), true), State::Requested);
        assert_eq!(invitation.state(later, true), State::Expired);
        assert!(!invitation.credential_done(now()));
        assert!(invitation.credential_done(later));
        let used = Invitation {
            stored: Stored::Used {
                request: "r".into(),
                uid: "u-1".into(),
                at: rfc3339(now()),
            },
            ..invitation.clone()
        };
        assert_eq!(used.state(now(), true), State::Used);
        assert!(!used.credential_done(now() + Duration::from_secs(60)));
        assert!(used.credential_done(now() + USED_GRACE));
        assert!(!invitation.stale(later));
        assert!(invitation.stale(later + RETENTION));
    }

    #[test]
    fn only_the_invited_request_matches() {
        let invitation = jane(now());
        let groups = ["ops".to_string(), "dev".to_string()];
        let exact = Asked {
            request: "jane-x7k2q9",
            uid: "u-1",
            common_name: Some("jane"),
            groups: &groups,
            expiration_seconds: Some(90 * 86_400),
        };
        assert_eq!(
            differences(&invitation, &exact, now()),
            Vec::<String>::new()
        );
        let shorter = Asked {
            expiration_seconds: Some(3600),
            ..exact.clone()
        };
        assert!(differences(&invitation, &shorter, now()).is_empty());

        let alice = Asked {
            common_name: Some("alice"),
            ..exact.clone()
        };
        assert_eq!(
            differences(&invitation, &alice, now()),
            ["it asks for user 'alice', the invitation is for 'jane'"]
        );
        let more = ["dev".to_string(), "ops".to_string(), "admins".to_string()];
        let fewer = ["dev".to_string()];
        let twice = ["dev".to_string(), "ops".to_string(), "dev".to_string()];
        for groups in [&more[..], &fewer[..], &twice[..]] {
            let asked = Asked {
                groups,
                ..exact.clone()
            };
            let found = differences(&invitation, &asked, now());
            assert_eq!(found.len(), 1, "{groups:?}: {found:?}");
            assert!(found[0].starts_with("it asks for groups"), "{found:?}");
        }
        for seconds in [Some(91 * 86_400), None] {
            let asked = Asked {
                expiration_seconds: seconds,
                ..exact.clone()
            };
            let found = differences(&invitation, &asked, now());
            assert!(
                found[0].contains("the invitation allows at most 90d"),
                "{found:?}"
            );
        }
        assert_eq!(
            differences(&invitation, &exact, now() + DEFAULT_EXPIRY),
            [format!(
                "invitation jane-x7k2q9 expired at {}",
                invitation.expires
            )]
        );
        let used = Invitation {
            stored: Stored::Used {
                request: "jane-x7k2q9".into(),
                uid: "u-1".into(),
                at: rfc3339(now()),
            },
            ..invitation
        };
        assert_eq!(
            differences(&used, &exact, now()),
            Vec::<String>::new(),
            "its own"
        );
        let other = Asked {
            request: "jane-def456",
            ..exact.clone()
        };
        assert_eq!(
            differences(&used, &other, now()),
            [
                "invitation jane-x7k2q9 was used already (request jane-x7k2q9)",
                "it is named jane-def456: only the request kubectl onboard accept makes, jane-x7k2q9, is approved with the invitation"
            ]
        );
        // Deleted and made again under the same name: another object, and the invitation is spent.
        let remade = Asked {
            uid: "u-2",
            ..exact.clone()
        };
        let found = differences(&used, &remade, now());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("made again under its name"), "{found:?}");
    }

    #[test]
    fn requests_made_with_an_invitation_are_known_by_their_requester() {
        assert_eq!(of_requester(&requester("jane-x7k2q9")), Some("jane-x7k2q9"));
        assert_eq!(
            of_requester("system:serviceaccount:kubectl-onboard-invitationsx:jane"),
            None
        );
        assert_eq!(of_requester("system:serviceaccount:default:jane"), None);
        assert_eq!(of_requester("jane"), None);
        assert_eq!(of_requester(&requester("")), None);
    }
}
