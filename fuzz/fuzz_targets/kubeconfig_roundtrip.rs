//! kubeconfig load → merge → serialize: what `Loaded::merge` does to one file, minus the I/O.
//!
//! Input: `YAML [NUL control]`. The YAML (UTF-8) is parsed as a kubeconfig; the optional control
//! bytes after the first NUL (never valid in YAML) choose the edit:
//!   byte 0 flags: 1 replace user, 2 replace context, 4 set current-context,
//!                 8 user name taken from an existing entry, 16 context name likewise,
//!                 32 user body is a subtree of the document, 64 context body likewise
//!   byte 1: which existing entry / subtree
//!   the rest: NUL-separated strings (user name, context name, then scalars for the bodies).
//! Without control bytes, the names are fixed and nothing is replaced.
//!
//! Properties (a panic is a finding):
//! - upsert refuses a clash without `replace`, and then changes nothing;
//! - everything but the touched entries (and current-context) is unchanged, in order;
//! - emit → parse gives back exactly the edited document, key order included;
//! - a scalar held verbatim (`1.10`, `017`, `!!binary …`: see `yaml.rs`) is written as its text.

#![no_main]

use std::path::Path;

use kubectl_onboard::kubeconfig::edit::{self, Section};
use kubectl_onboard::kubeconfig::yaml;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    let (text, control) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = Path::new("fuzz/config");
    let Ok(original) = yaml::parse(path, text) else {
        return;
    };
    if edit::check_shape(&original).is_err() {
        return;
    }
    let edit = Edit::from(control, &original);
    let mut doc = original.clone();

    let user = apply(&mut doc, Section::Users, &edit.user);
    let context = apply(&mut doc, Section::Contexts, &edit.context);
    if edit.set_current {
        edit::set_current_context(&mut doc, &edit.context.name);
        assert_eq!(
            doc["current-context"],
            Value::String(edit.context.name.clone())
        );
    }
    edit::check_shape(&doc).expect("an edited kubeconfig keeps its shape");

    // Everything we did not touch is as it was, key order included.
    let touched = [user, context];
    assert_same(
        "untouched part after the edit",
        &strip(&original, &original, &touched, edit.set_current, false),
        &strip(&doc, &original, &touched, edit.set_current, true),
    );

    // Serialize and read back: the meaning must be kept.
    let emitted = yaml::emit(&doc).unwrap_or_else(|e| panic!("emit failed: {e}"));
    for text in verbatims(&doc) {
        assert!(
            emitted.contains(text),
            "verbatim scalar {text:?} not written as it was\n--- emitted:\n{emitted}"
        );
    }
    let back = yaml::parse(path, &emitted)
        .unwrap_or_else(|e| panic!("our own output does not parse: {e}\n--- emitted:\n{emitted}"));
    if let Some(diff) = difference(&doc, &back, "$") {
        panic!(
            "round trip changed the document at {diff}\n--- edited: {}\n--- emitted:\n{emitted}\n--- read back: {}",
            serde_json::to_string(&doc).unwrap(),
            serde_json::to_string(&back).unwrap()
        );
    }
    edit::check_shape(&back).expect("the document read back keeps its shape");
});

struct Entry {
    name: String,
    body: Value,
    replace: bool,
}

struct Edit {
    user: Entry,
    context: Entry,
    set_current: bool,
}

impl Edit {
    fn from(control: &[u8], doc: &Value) -> Edit {
        let flags = control.first().copied().unwrap_or(0);
        let pick = control.get(1).copied().unwrap_or(0) as usize;
        let mut strings = control
            .get(2..)
            .unwrap_or_default()
            .split(|&b| b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned());
        let mut next = |fallback: &str| strings.next().unwrap_or_else(|| fallback.to_string());

        let existing = |section: Section| -> Option<String> {
            let names: Vec<&str> = doc
                .get(section.key())
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .collect();
            (!names.is_empty()).then(|| names[pick % names.len()].to_string())
        };
        let mut user_name = next("fuzz-user");
        if flags & 8 != 0 {
            user_name = existing(Section::Users).unwrap_or(user_name);
        }
        let mut context_name = next("fuzz-context");
        if flags & 16 != 0 {
            context_name = existing(Section::Contexts).unwrap_or(context_name);
        }
        let user_body = if flags & 32 != 0 {
            subtree(doc, pick)
        } else {
            json!({
                "client-certificate-data": next("Y2VydA=="),
                "client-key-data": next("a2V5"),
                "exec": {"command": next("kubelogin"), "args": [next("get-token"), next("--x")], "env": null},
            })
        };
        let context_body = if flags & 64 != 0 {
            subtree(doc, pick.wrapping_add(7))
        } else {
            json!({"cluster": next("kind"), "user": user_name.clone(), "namespace": next("default")})
        };
        Edit {
            user: Entry {
                name: user_name,
                body: user_body,
                replace: flags & 1 != 0,
            },
            context: Entry {
                name: context_name,
                body: context_body,
                replace: flags & 2 != 0,
            },
            set_current: flags & 4 != 0,
        }
    }
}

/// The `n`-th value of the document in pre-order (wrapping), so that bodies can be anything the
/// parser produces: nested lists, numbers, nulls, odd strings.
fn subtree(doc: &Value, n: usize) -> Value {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(v);
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    walk(doc, &mut all);
    all[n % all.len()].clone()
}

/// The texts of the scalars the document holds verbatim.
fn verbatims(v: &Value) -> Vec<&str> {
    match v {
        Value::Object(o) if o.len() == 1 && o.contains_key(yaml::VERBATIM) => {
            o[yaml::VERBATIM].as_str().into_iter().collect()
        }
        Value::Object(o) => o.values().flat_map(verbatims).collect(),
        Value::Array(a) => a.iter().flat_map(verbatims).collect(),
        _ => vec![],
    }
}

fn index_of(doc: &Value, section: Section, name: &str) -> Option<usize> {
    doc.get(section.key())?
        .as_array()?
        .iter()
        .position(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// Which entry of a section an edit touched.
#[derive(Clone, Copy)]
struct Touched {
    section: Section,
    index: Option<usize>,
    /// An existing entry (present in the original too), not an added one.
    replaced: bool,
}

fn apply(doc: &mut Value, section: Section, entry: &Entry) -> Touched {
    let before = doc.clone();
    let existed = index_of(doc, section, &entry.name);
    let result = edit::upsert(doc, section, &entry.name, entry.body.clone(), entry.replace);
    let inner = section.singular();
    match (existed, entry.replace) {
        (Some(_), false) => {
            assert!(result.is_err(), "a clash without replace must be refused");
            assert_same("document after a refused upsert", &before, doc);
            return Touched {
                section,
                index: None,
                replaced: false,
            };
        }
        (Some(i), true) => {
            assert_eq!(result, Ok(true), "replacing an existing entry");
            let new = &doc[section.key()][i];
            assert_same("replaced body", &entry.body, &new[inner]);
            // The entry's other keys, and their order, stay.
            let mut old = before[section.key()][i].clone();
            let mut new = new.clone();
            let (old_o, new_o) = (old.as_object_mut().unwrap(), new.as_object_mut().unwrap());
            let had_inner = old_o.contains_key(inner);
            old_o.shift_remove(inner);
            new_o.shift_remove(inner);
            assert_same("other keys of a replaced entry", &old, &new);
            if !had_inner {
                assert_eq!(
                    doc[section.key()][i]
                        .as_object()
                        .unwrap()
                        .keys()
                        .last()
                        .map(String::as_str),
                    Some(inner),
                    "a missing body is added last"
                );
            }
            Touched {
                section,
                index: Some(i),
                replaced: true,
            }
        }
        (None, _) => {
            assert_eq!(result, Ok(false), "adding a new entry");
            let list = doc[section.key()]
                .as_array()
                .expect("the section is a list now");
            let last = list.last().unwrap();
            assert_same(
                "added entry",
                &Value::Object(Map::from_iter([
                    ("name".to_string(), Value::String(entry.name.clone())),
                    (inner.to_string(), entry.body.clone()),
                ])),
                last,
            );
            Touched {
                section,
                index: Some(list.len() - 1),
                replaced: false,
            }
        }
    }
}

/// `v` (the original, or the `edited` document) without what the edits touched; an edited list
/// that an upsert created where there was none or null, and that held only the new entry, is
/// put back as it was.
fn strip(v: &Value, original: &Value, touched: &[Touched], current: bool, edited: bool) -> Value {
    let mut v = v.clone();
    let root = v.as_object_mut().unwrap();
    for t in touched {
        let key = t.section.key();
        if !edited && !t.replaced {
            continue;
        }
        if let (Some(i), Some(Value::Array(list))) = (t.index, root.get_mut(key)) {
            list.remove(i);
            if edited && list.is_empty() {
                match original.get(key) {
                    None => {
                        root.shift_remove(key);
                    }
                    Some(Value::Null) => {
                        root.insert(key.to_string(), Value::Null);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if current {
        root.shift_remove("current-context");
    }
    v
}

fn assert_same(what: &str, want: &Value, got: &Value) {
    if let Some(at) = difference(want, got, "$") {
        panic!(
            "{what}: differs at {at}\n--- want: {}\n--- got:  {}",
            serde_json::to_string(want).unwrap(),
            serde_json::to_string(got).unwrap()
        );
    }
}

/// Where two values differ, with object key order significant (serde_json's `==` on
/// preserve_order maps ignores order).
fn difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            if kx != ky {
                return Some(format!("{at} (keys {kx:?} vs {ky:?})"));
            }
            x.iter()
                .find_map(|(k, v)| difference(v, &y[k], &format!("{at}.{k:?}")))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{at} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| difference(v, w, &format!("{at}[{i}]")))
        }
        (x, y) if x == y => None,
        (x, y) => Some(format!("{at} ({x} vs {y})")),
    }
}
