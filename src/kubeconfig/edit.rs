//! Kubeconfig documents as plain, order-preserving data, and the edits we make to them.
//!
//! We do not map a kubeconfig onto typed structs: whatever we do not touch (unknown fields,
//! extensions, exec and auth-provider users, preferences, the order of entries) must come back
//! out unchanged, so a document is an ordered `serde_json::Value` and an edit changes exactly
//! the named entries. Pure: no I/O here.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

/// The three named lists of a kubeconfig; each entry is `{name: …, <inner>: {…}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Clusters,
    Users,
    Contexts,
}

impl Section {
    pub fn key(self) -> &'static str {
        match self {
            Section::Clusters => "clusters",
            Section::Users => "users",
            Section::Contexts => "contexts",
        }
    }

    fn inner(self) -> &'static str {
        match self {
            Section::Clusters => "cluster",
            Section::Users => "user",
            Section::Contexts => "context",
        }
    }

    pub fn singular(self) -> &'static str {
        self.inner()
    }
}

/// One kubeconfig file as read: where it lives and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub path: PathBuf,
    pub value: Value,
}

impl Document {
    /// The body of entry `name` in `section`, if this file defines it.
    pub fn entry(&self, section: Section, name: &str) -> Option<&Value> {
        entries(&self.value, section)
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .map(|e| e.get(section.inner()).unwrap_or(&Value::Null))
    }

    pub fn current_context(&self) -> Option<&str> {
        self.value
            .get("current-context")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

fn entries(doc: &Value, section: Section) -> impl Iterator<Item = &Value> {
    doc.get(section.key())
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The files kubectl reads, merged the way it merges them: for each name the first file wins;
/// `current-context` from the first file that sets it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Merged {
    pub documents: Vec<Document>,
}

impl Merged {
    /// The entry and the index of the file it comes from.
    pub fn find(&self, section: Section, name: &str) -> Option<(usize, &Value)> {
        self.documents
            .iter()
            .enumerate()
            .find_map(|(i, d)| d.entry(section, name).map(|e| (i, e)))
    }

    /// The current context and the index of the file that sets it.
    pub fn current_context(&self) -> Option<(usize, &str)> {
        self.documents
            .iter()
            .enumerate()
            .find_map(|(i, d)| d.current_context().map(|c| (i, c)))
    }
}

/// A new, empty kubeconfig, laid out as kubectl writes one.
pub fn empty() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    })
}

/// Adds entry `name` to `section`, or with `replace` swaps the body of an existing one in
/// place (its position and any other keys of the entry stay). Returns whether it replaced.
/// The caller has checked clashes; without `replace` an existing entry is an error.
pub fn upsert(
    doc: &mut Value,
    section: Section,
    name: &str,
    body: Value,
    replace: bool,
) -> Result<bool, String> {
    let Some(root) = doc.as_object_mut() else {
        return Err("the document is not a mapping".into());
    };
    let list = root
        .entry(section.key())
        .or_insert_with(|| Value::Array(vec![]));
    if list.is_null() {
        *list = Value::Array(vec![]);
    }
    let Some(list) = list.as_array_mut() else {
        return Err(format!("its '{}' is not a list", section.key()));
    };
    let existing = list
        .iter_mut()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name));
    match existing {
        Some(_) if !replace => Err(format!("{} '{name}' already exists", section.singular())),
        Some(entry) => {
            match entry.as_object_mut() {
                Some(obj) => {
                    obj.insert(section.inner().into(), body);
                }
                None => *entry = named(section, name, body),
            }
            Ok(true)
        }
        None => {
            list.push(named(section, name, body));
            Ok(false)
        }
    }
}

fn named(section: Section, name: &str, body: Value) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(name.into()));
    entry.insert(section.inner().into(), body);
    Value::Object(entry)
}

pub fn set_current_context(doc: &mut Value, name: &str) {
    if let Some(root) = doc.as_object_mut() {
        root.insert("current-context".into(), Value::String(name.into()));
    }
}

/// Removes every entry named `name` from `section`, keeping the order of the rest; how many
/// there were.
pub fn remove(doc: &mut Value, section: Section, name: &str) -> usize {
    let Some(list) = doc.get_mut(section.key()).and_then(Value::as_array_mut) else {
        return 0;
    };
    let before = list.len();
    list.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
    before - list.len()
}

/// The names of the contexts in `doc` whose user is `user`, in file order.
pub fn contexts_of(doc: &Value, user: &str) -> Vec<String> {
    entries(doc, Section::Contexts)
        .filter(|e| {
            e.get(Section::Contexts.inner())
                .and_then(|c| c.get("user"))
                .and_then(Value::as_str)
                == Some(user)
        })
        .filter_map(|e| e.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

/// The names of every entry of `section` in `doc`.
pub fn names(doc: &Value, section: Section) -> Vec<String> {
    entries(doc, section)
        .filter_map(|e| e.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

/// What a document must look like before we touch it: a mapping, of kind Config if it says.
pub fn check_shape(doc: &Value) -> Result<(), String> {
    let Some(root) = doc.as_object() else {
        return Err("it is not a YAML mapping".into());
    };
    if let Some(kind) = root.get("kind").filter(|k| !k.is_null())
        && kind.as_str() != Some("Config")
    {
        return Err(format!("its kind is {kind}, not Config"));
    }
    for section in [Section::Clusters, Section::Users, Section::Contexts] {
        match root.get(section.key()) {
            None | Some(Value::Null) | Some(Value::Array(_)) => {}
            Some(_) => return Err(format!("its '{}' is not a list", section.key())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Document {
        Document {
            path: "/k".into(),
            value: v,
        }
    }

    fn sample() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {"colors": true},
            "clusters": [{"name": "c1", "cluster": {"server": "https://a", "extensions": [{"name": "x", "extension": {"k": 1}}]}}],
            "users": [
                {"name": "exec", "user": {"exec": {"command": "aws", "args": ["eks", "get-token"]}}},
                {"name": "jane", "user": {"token": "old"}, "x-extra": "keep"}
            ],
            "contexts": [{"name": "ctx", "context": {"cluster": "c1", "user": "exec"}}],
            "current-context": "ctx",
            "x-unknown": {"b": 2, "a": 1}
        })
    }

    #[test]
    fn appending_keeps_everything_else_and_its_order() {
        let mut v = sample();
        let before = v.clone();
        upsert(&mut v, Section::Users, "new", json!({"token": "t"}), false).unwrap();
        let users = v["users"].as_array().unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[2], json!({"name": "new", "user": {"token": "t"}}));
        let mut without = v.clone();
        without["users"].as_array_mut().unwrap().pop();
        assert_eq!(without, before);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let keys_before: Vec<&String> = before.as_object().unwrap().keys().collect();
        assert_eq!(keys, keys_before);
    }

    #[test]
    fn clash_without_replace_is_refused_and_changes_nothing() {
        let mut v = sample();
        let err = upsert(&mut v, Section::Users, "jane", json!({}), false).unwrap_err();
        assert!(err.contains("already exists"));
        assert_eq!(v, sample());
    }

    #[test]
    fn replace_swaps_the_body_in_place() {
        let mut v = sample();
        assert!(
            upsert(
                &mut v,
                Section::Users,
                "jane",
                json!({"token": "new"}),
                true
            )
            .unwrap()
        );
        assert_eq!(
            v["users"][1],
            json!({"name": "jane", "user": {"token": "new"}, "x-extra": "keep"})
        );
        assert_eq!(v["users"][0], sample()["users"][0]);
    }

    #[test]
    fn missing_or_null_lists_are_created() {
        let mut v = json!({"apiVersion": "v1", "users": null});
        upsert(&mut v, Section::Users, "u", json!({}), false).unwrap();
        upsert(&mut v, Section::Contexts, "c", json!({}), false).unwrap();
        assert_eq!(v["users"][0]["name"], "u");
        assert_eq!(v["contexts"][0]["name"], "c");
    }

    #[test]
    fn first_file_wins() {
        let a = doc(json!({"users": [{"name": "u", "user": {"token": "a"}}]}));
        let b = doc(
            json!({"users": [{"name": "u", "user": {"token": "b"}}, {"name": "v", "user": {}}], "current-context": "x"}),
        );
        let m = Merged {
            documents: vec![a, b],
        };
        assert_eq!(
            m.find(Section::Users, "u").unwrap(),
            (0, &json!({"token": "a"}))
        );
        assert_eq!(m.find(Section::Users, "v").unwrap().0, 1);
        assert_eq!(m.current_context(), Some((1, "x")));
        assert!(m.find(Section::Clusters, "u").is_none());
    }

    #[test]
    fn removing_a_user_and_its_contexts_keeps_everything_else() {
        let mut v = sample();
        v["contexts"].as_array_mut().unwrap().extend([
            json!({"name": "j1", "context": {"cluster": "c1", "user": "jane"}}),
            json!({"name": "other", "context": {"cluster": "c1", "user": "exec"}}),
            json!({"name": "j2", "context": {"user": "jane", "namespace": "x"}}),
        ]);
        let before = v.clone();
        assert_eq!(contexts_of(&v, "jane"), ["j1", "j2"]);
        assert_eq!(remove(&mut v, Section::Users, "jane"), 1);
        for c in contexts_of(&before, "jane") {
            assert_eq!(remove(&mut v, Section::Contexts, &c), 1);
        }
        assert_eq!(names(&v, Section::Users), ["exec"]);
        assert_eq!(names(&v, Section::Contexts), ["ctx", "other"]);
        assert_eq!(remove(&mut v, Section::Users, "jane"), 0);
        // Everything else, order included, as it was.
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let keys_before: Vec<&String> = before.as_object().unwrap().keys().collect();
        assert_eq!(keys, keys_before);
        for key in ["clusters", "preferences", "current-context", "x-unknown"] {
            assert_eq!(v[key], before[key]);
        }
        assert_eq!(v["users"][0], before["users"][0]);
        assert_eq!(remove(&mut json!({"users": null}), Section::Users, "x"), 0);
        assert!(contexts_of(&json!({}), "jane").is_empty());
    }

    #[test]
    fn shape_checks() {
        assert!(check_shape(&sample()).is_ok());
        assert!(check_shape(&json!({})).is_ok());
        assert!(check_shape(&json!([1])).unwrap_err().contains("mapping"));
        assert!(
            check_shape(&json!({"kind": "Pod"}))
                .unwrap_err()
                .contains("Pod")
        );
        assert!(
            check_shape(&json!({"users": {"a": 1}}))
                .unwrap_err()
                .contains("users")
        );
    }
}
