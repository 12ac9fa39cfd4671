//! The batch file: a YAML list of users.
//!
//! ```yaml
//! - name: jane
//!   groups: [dev]
//!   duration: 90d
//!   clusterRoles: [view]
//!   roles: [{name: deployer, namespace: team-a}]
//! ```
//!
//! Every entry is checked before anything is done, and every problem is reported with its line:
//! unknown keys, wrong types, names, groups, durations and roles the cluster would refuse, and
//! users listed twice. Pure: text in, entries or errors out.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::cluster::rbac::Grant;
use crate::flags::plan;

/// One user to onboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Where the entry starts in the file.
    pub line: u64,
    pub name: String,
    pub groups: Vec<String>,
    /// `None`: the command's `--duration`, else the signer's default.
    pub duration: Option<Duration>,
    pub grants: Vec<Grant>,
}

/// A problem with the file, at a line (0: the file as a whole).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
}

const KEYS: &str = "name, groups, duration, clusterRoles, roles";

/// A batch file is a few kilobytes per hundred users: one larger than this is not one.
const MAX_ROSTER: u64 = 4 * 1024 * 1024;

/// The text of the batch file at `path`, read no further than [`MAX_ROSTER`].
pub fn read(path: &std::path::Path) -> crate::error::Result<String> {
    let cannot =
        |why: String| crate::error::Error::usage(format!("cannot read {}: {why}", path.display()));
    let bytes = crate::kubeconfig::file::read_capped(path, MAX_ROSTER)
        .map_err(|e| cannot(crate::kubeconfig::file::io_reason(&e)))?;
    String::from_utf8(bytes).map_err(|_| cannot("it is not UTF-8 text".into()))
}

/// The entries of `text`, or every problem found in it.
pub fn parse(text: &str) -> Result<Vec<Member>, Vec<Problem>> {
    // YAML 1.2 booleans: a user called `y` or `no` stays a name.
    let options = serde_saphyr::options! { strict_booleans: true };
    let root: Spanned<Node> = match serde_saphyr::from_str_with_options(text, options) {
        Ok(root) => root,
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            return Err(vec![Problem {
                line,
                message: "this is not valid YAML".into(),
            }]);
        }
    };
    let items = match root.value {
        Node::List(items) if !items.is_empty() => items,
        Node::List(_) | Node::Null => {
            return Err(vec![Problem {
                line: 0,
                message: "the file lists no users; write a YAML list, e.g. '- name: jane'".into(),
            }]);
        }
        _ => {
            return Err(vec![Problem {
                line: root.referenced.line(),
                message: "the file must be a YAML list of users ('- name: jane' …)".into(),
            }]);
        }
    };
    let mut problems = Vec::new();
    let mut entries: Vec<Member> = Vec::new();
    let mut seen: Vec<(String, u64)> = Vec::new();
    let source = Source(text);
    for item in items {
        let line = item.referenced.line();
        let (name, entry) = entry(item, &source, &mut problems);
        if let Some(name) = name {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                problems.push(Problem {
                    line,
                    message: format!("user {name} is listed twice (first on line {first})"),
                });
                continue;
            }
            seen.push((name, line));
        }
        // An entry with problems has reported them; with any problem nothing runs.
        entries.extend(entry);
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// One list item: its name, if it has one, and the entry if it has no problem (its problems
/// go to `problems`). Long because it is the parser of an entry: one arm per key, each with
/// the message for its own mistakes, reads better in one place than spread over helpers.
fn entry(
    item: Spanned<Node>,
    source: &Source,
    problems: &mut Vec<Problem>,
) -> (Option<String>, Option<Member>) {
    let line = item.referenced.line();
    let Node::Map(fields) = item.value else {
        problems.push(Problem {
            line,
            message: format!("each user is a map with keys {KEYS}"),
        });
        return (None, None);
    };
    let before = problems.len();
    let mut report = |line: u64, message: String| problems.push(Problem { line, message });
    let mut name: Option<String> = None;
    let mut groups = Vec::new();
    let mut duration = None;
    let mut cluster_roles = Vec::new();
    let mut roles = Vec::new();
    for (key, value) in fields {
        let at = key.referenced.line();
        match key.value.as_str() {
            "name" => name = source.text(&value, "name").map_err(|m| report(at, m)).ok(),
            "groups" => {
                groups = source.texts(value, "groups").unwrap_or_else(|m| {
                    report(at, m);
                    Vec::new()
                })
            }
            "duration" => {
                duration = source
                    .text(&value, "duration")
                    .and_then(|d| plan::lifetime("duration", &d).map_err(|e| e.to_string()))
                    .map_err(|m| report(at, m))
                    .ok()
            }
            "clusterRoles" => {
                cluster_roles = source.texts(value, "clusterRoles").unwrap_or_else(|m| {
                    report(at, m);
                    Vec::new()
                })
            }
            "roles" => match value.value {
                Node::List(items) => {
                    for item in items {
                        match role(item, source) {
                            Ok(grant) => roles.push(grant),
                            Err((line, m)) => report(line, m),
                        }
                    }
                }
                _ => report(at, "roles is a list of {name: ROLE, namespace: NS}".into()),
            },
            other => report(
                at,
                format!(
                    "unknown key '{}': the keys are {KEYS}",
                    other.escape_default()
                ),
            ),
        }
    }
    let Some(name) = name else {
        if problems.len() == before {
            problems.push(Problem {
                line,
                message: "this user has no name: add 'name: USER'".into(),
            });
        }
        return (None, None);
    };
    let mut report = |message: String| problems.push(Problem { line, message });
    let prefix = |e: crate::error::Error| format!("user {name}: {e}");
    if let Err(e) = plan::validate_user(&name) {
        report(e.to_string());
    }
    let groups = plan::validate_groups(groups, false)
        .map_err(|e| report(prefix(e)))
        .unwrap_or_default();
    let mut grants = plan::grants(&cluster_roles, &[], None)
        .map_err(|e| report(prefix(e)))
        .unwrap_or_default();
    grants.extend(roles);
    grants.dedup();
    let entry = (problems.len() == before).then(|| Member {
        line,
        name: name.clone(),
        groups,
        duration,
        grants,
    });
    (Some(name), entry)
}

/// `{name: ROLE, namespace: NS}`.
fn role(item: Spanned<Node>, source: &Source) -> Result<Grant, (u64, String)> {
    let line = item.referenced.line();
    let shape = || (line, "each role is {name: ROLE, namespace: NS}".to_string());
    let Node::Map(fields) = item.value else {
        return Err(shape());
    };
    let (mut role, mut namespace) = (None, None);
    for (key, value) in fields {
        let at = key.referenced.line();
        match key.value.as_str() {
            "name" => role = Some(source.text(&value, "role name").map_err(|m| (at, m))?),
            "namespace" => namespace = Some(source.text(&value, "namespace").map_err(|m| (at, m))?),
            other => {
                return Err((
                    at,
                    format!(
                        "unknown key '{}' in a role: the keys are name, namespace",
                        other.escape_default()
                    ),
                ));
            }
        }
    }
    let (Some(role), Some(namespace)) = (role, namespace) else {
        return Err(shape());
    };
    plan::validate_namespace(&namespace).map_err(|e| (line, e.to_string()))?;
    let mut grants =
        plan::grants(&[], &[role], Some(&namespace)).map_err(|e| (line, e.to_string()))?;
    Ok(grants.remove(0))
}

/// The file's text, to quote a value as written (`007`, not 7).
struct Source<'a>(&'a str);

impl Source<'_> {
    fn text(&self, value: &Spanned<Node>, what: &str) -> Result<String, String> {
        match &value.value {
            Node::Text(s) => Ok(s.clone()),
            Node::Other(parsed) => {
                let span = value.referenced.span();
                let written = span
                    .byte_offset()
                    .zip(span.byte_len())
                    .and_then(|(at, len)| self.0.get(at as usize..(at + len) as usize))
                    .filter(|w| !w.is_empty())
                    .unwrap_or(parsed);
                Err(format!(
                    "{what} {written} is not text in YAML; quote it: \"{written}\""
                ))
            }
            _ => Err(format!("{what} must be text")),
        }
    }

    fn texts(&self, value: Spanned<Node>, what: &str) -> Result<Vec<String>, String> {
        match value.value {
            Node::List(items) => items.iter().map(|i| self.text(i, what)).collect(),
            _ => Err(format!("{what} is a list, e.g. {what}: [a, b]")),
        }
    }
}

/// A YAML node with the position of everything in it.
#[derive(Debug)]
enum Node {
    Null,
    Text(String),
    /// A number or boolean, as written back for messages.
    Other(String),
    List(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Other(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            fields.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(u64, String)> {
        parse(text)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn a_full_entry_and_a_minimal_one() {
        let entries = parse(
            "- name: jane\n  groups: [dev, ops]\n  duration: 90d\n  clusterRoles: [view]\n  roles: [{name: deployer, namespace: team-a}]\n- name: bob\n",
        )
        .unwrap();
        assert_eq!(
            entries,
            vec![
                Member {
                    line: 1,
                    name: "jane".into(),
                    groups: vec!["dev".into(), "ops".into()],
                    duration: Some(Duration::from_secs(90 * 86_400)),
                    grants: vec![
                        Grant::ClusterRole("view".into()),
                        Grant::Role {
                            role: "deployer".into(),
                            namespace: "team-a".into()
                        }
                    ],
                },
                Member {
                    line: 6,
                    name: "bob".into(),
                    groups: vec![],
                    duration: None,
                    grants: vec![],
                }
            ]
        );
    }

    #[test]
    fn every_problem_is_listed_with_its_line() {
        let found = problems(
            "- name: jane\n  group: [dev]\n- name: jane\n- name: 'a b'\n- name: x\n  duration: 5m\n- groups: [dev]\n- name: y\n  roles:\n    - {name: r, namespace: Bad_NS}\n    - {name: r, ns: a}\n- name: z\n  groups: [system:masters]\n- name: 007\n- name: n\n  groups: [true]\n",
        );
        let lines: Vec<u64> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 6, 7, 10, 11, 12, 14, 16], "{found:#?}");
        let says = |line: u64, text: &str| {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(text)),
                "line {line} should say {text:?}: {found:#?}"
            )
        };
        says(2, "unknown key 'group'");
        says(3, "listed twice (first on line 1)");
        says(4, "CSR object name");
        says(6, "too short");
        says(7, "no name");
        says(10, "namespace 'Bad_NS'");
        says(11, "unknown key 'ns'");
        says(12, "CertificateSubjectRestriction");
        says(14, "name 007 is not text in YAML; quote it");
        // YAML 1.2: `y` and `n` are names, `true` is not a group.
        says(16, "groups true is not text");
    }

    #[test]
    fn the_file_must_be_a_list() {
        assert!(problems("")[0].1.contains("no users"));
        assert!(problems("[]")[0].1.contains("no users"));
        assert!(problems("name: jane\n")[0].1.contains("YAML list"));
        assert!(problems("- [a]\n")[0].1.contains("map with keys"));
        let bad = problems("- name: jane\n  groups: [dev\n");
        assert!(
            bad[0].1.contains("not valid YAML") && bad[0].0 > 0,
            "{bad:?}"
        );
    }
}
