//! The one YAML stack in the binary: serde-saphyr, which kube already uses to parse kubeconfigs
//! (serde_yaml, on the original design card, is deprecated upstream). Documents are held as
//! order-preserving `serde_json::Value`s.
//!
//! A scalar whose type and text a `Value` cannot carry is kept as it was written: `1.10` (would
//! come back as `1.1`), `017`, `0x1F`, `1e3`, an integer beyond 64 bits, `.inf`, `!!binary …`
//! or any other tag. It is held as the one-entry object `{VERBATIM: text}` and written back as
//! that text. Fields we do not model (extensions, preferences, another tool's keys) thus keep
//! their YAML type and text through our edits. Booleans and nulls are kept by value (`yes` is
//! written `true`, `~` `null`: the same to kubectl), strings by text (quoting may change), and a
//! tag on a mapping or list is not kept.

use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{Spanned, Tagged};

use crate::error::{Error, Result};

/// The key of a verbatim scalar's stand-in object. A NUL cannot be typed in a YAML key except as
/// an escape, and a document holding such a key is refused (see [`parse`]).
pub const VERBATIM: &str = "\u{0}verbatim";

/// Parses kubeconfig text. An empty file is an empty config, as for kubectl. Errors give the
/// file and position but never quote the text: a kubeconfig holds tokens and keys.
pub fn parse(path: &Path, text: &str) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Value::Object(Default::default()));
    }
    match serde_saphyr::from_str_with_options::<Node>(text, read_options()) {
        Ok(node) => match value_of(node, text) {
            Ok(Value::Null) => Ok(Value::Object(Default::default())),
            // A document that is one verbatim scalar is no mapping, and must not look like one.
            Ok(value) if verbatim_text(&value).is_some() => Ok(Value::String(
                verbatim_text(&value).unwrap_or_default().to_string(),
            )),
            Ok(value) => Ok(value),
            Err(NulKey) => Err(Error::failed(format!(
                "kubeconfig {} has a key that holds a NUL character; kubectl onboard does not edit such a file: remove that key",
                path.display()
            ))),
        },
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            Err(Error::failed(format!(
                "kubeconfig {} is not valid YAML{at}; fix it there (kubectl config view --kubeconfig {} shows what kubectl makes of it)",
                path.display(),
                path.display()
            )))
        }
    }
}

/// Long base64 values as plain one-line scalars, the way kubectl writes them; verbatim scalars
/// as they were read.
pub fn emit(value: &Value) -> Result<String> {
    let cannot = || Error::failed("cannot write the kubeconfig as YAML; nothing was changed");
    let options = write_options();
    if !holds_verbatim(value) {
        return serde_saphyr::to_string_with_options(value, options).map_err(|_| cannot());
    }
    // Each verbatim scalar goes out as a unique plain stand-in, then the text replaces it.
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|_| cannot())?;
    let prefix = format!(
        "onboard-verbatim-{}-",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut texts = Vec::new();
    let stood_in = stand_in(value, &prefix, &mut texts);
    let mut out = serde_saphyr::to_string_with_options(&stood_in, options).map_err(|_| cannot())?;
    for (i, text) in texts.iter().enumerate() {
        let stand_in = format!("{prefix}{i}-end");
        let at = out.find(&stand_in).ok_or_else(cannot)?;
        out.replace_range(at..at + stand_in.len(), text);
    }
    Ok(out)
}

fn verbatim_text(value: &Value) -> Option<&str> {
    match value {
        Value::Object(o) if o.len() == 1 => o.get(VERBATIM)?.as_str(),
        _ => None,
    }
}

fn holds_verbatim(value: &Value) -> bool {
    match value {
        Value::Object(o) => verbatim_text(value).is_some() || o.values().any(holds_verbatim),
        Value::Array(a) => a.iter().any(holds_verbatim),
        _ => false,
    }
}

fn stand_in(value: &Value, prefix: &str, texts: &mut Vec<String>) -> Value {
    if let Some(text) = verbatim_text(value) {
        texts.push(text.to_string());
        return Value::String(format!("{prefix}{}-end", texts.len() - 1));
    }
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), stand_in(v, prefix, texts)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| stand_in(v, prefix, texts)).collect()),
        other => other.clone(),
    }
}

/// A parsed node with its tag and where it was written.
type Node = Spanned<Tagged<Raw>>;

/// What serde-saphyr makes of a node. A number that does not fit a `serde_json::Number`
/// (beyond 64 bits, non-finite) is `Number(None)`: it can only be kept verbatim.
enum Raw {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    String(String),
    Bool(bool),
    Null,
    Number(Option<Number>),
}

/// A key equal to [`VERBATIM`] was found: it would be read back as a verbatim scalar.
struct NulKey;

/// The `Value` of a node parsed from `text`: see the module header for what is kept verbatim.
fn value_of(node: Node, text: &str) -> std::result::Result<Value, NulKey> {
    let span = node.defined.span();
    let Tagged(raw, tag) = node.value;
    let (natural, lost) = match raw {
        Raw::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, node) in entries {
                if key == VERBATIM {
                    return Err(NulKey);
                }
                map.insert(key, value_of(node, text)?);
            }
            return Ok(Value::Object(map));
        }
        Raw::List(items) => {
            return items
                .into_iter()
                .map(|n| value_of(n, text))
                .collect::<std::result::Result<_, _>>()
                .map(Value::Array);
        }
        scalar => scalar_value(scalar),
    };
    let written = source_of(text, span);
    let core_tag = tag.as_deref().is_none_or(|t| {
        t.strip_prefix("tag:yaml.org,2002:")
            .is_some_and(|name| ["str", "int", "float", "bool", "null"].contains(&name))
    });
    let kept = core_tag
        && match &natural {
            Value::Number(_) => written.is_some() && written == canonical(&natural).as_deref(),
            _ => !lost,
        };
    if kept {
        return Ok(natural);
    }
    Ok(match written_as(written, &natural, lost, tag.as_deref()) {
        Some(text) => Value::Object(Map::from_iter([(
            VERBATIM.to_string(),
            Value::String(text),
        )])),
        // No text of it reads back the same (an odd tag): the value, without its tag.
        None => natural,
    })
}

/// A scalar's value, and whether it is a number no `Value` can hold (then `Null`).
fn scalar_value(scalar: Raw) -> (Value, bool) {
    match scalar {
        Raw::String(s) => (Value::String(s), false),
        Raw::Bool(b) => (Value::Bool(b), false),
        Raw::Number(Some(n)) => (Value::Number(n), false),
        Raw::Number(None) => (Value::Null, true),
        Raw::Null | Raw::Map(_) | Raw::List(_) => (Value::Null, false),
    }
}

/// The text to write for a scalar read as `natural` with `tag`: as it was `written` if that
/// text, written after a key, reads back the same, value and text (a block scalar's lines do
/// not), else its value on one line with the tag; `None` if neither does.
fn written_as(
    written: Option<&str>,
    natural: &Value,
    lost: bool,
    tag: Option<&str>,
) -> Option<String> {
    let prefix = match tag {
        None => String::new(),
        Some(t) => match t.strip_prefix("tag:yaml.org,2002:") {
            Some(name) => format!("!!{name} "),
            None if t.starts_with('!') => format!("{t} "),
            None => format!("!<{t}> "),
        },
    };
    let as_written = written
        // One line: a text over several depends on the indentation it stood at.
        .filter(|w| !w.is_empty() && !w.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']))
        .map(str::to_string);
    [as_written, canonical(natural)]
        .into_iter()
        .flatten()
        .find(|body| reads_back(&prefix, body, natural, lost, tag))
        .map(|body| prefix.clone() + &body)
}

/// Whether `v: <prefix><body>` parses to a scalar of this value and tag, written as `body`: then
/// what we write is read again as the same verbatim text.
fn reads_back(prefix: &str, body: &str, natural: &Value, lost: bool, tag: Option<&str>) -> bool {
    let doc = format!("v: {prefix}{body}\n");
    let Ok(node) = serde_saphyr::from_str_with_options::<Node>(&doc, read_options()) else {
        return false;
    };
    let Raw::Map(mut entries) = node.value.0 else {
        return false;
    };
    let Some((_, value)) = entries
        .pop()
        .filter(|(key, _)| key == "v" && entries.is_empty())
    else {
        return false;
    };
    let written = source_of(&doc, value.defined.span());
    let Tagged(raw, tag_read) = value.value;
    if matches!(raw, Raw::Map(_) | Raw::List(_)) {
        return false;
    }
    let (value_read, lost_read) = scalar_value(raw);
    value_read == *natural
        && lost_read == lost
        && tag_read.as_deref() == tag
        && written == Some(body)
}

/// The text a node was read from.
fn source_of(text: &str, span: serde_saphyr::Span) -> Option<&str> {
    let (at, len) = span.byte_offset().zip(span.byte_len())?;
    text.get(usize::try_from(at).ok()?..usize::try_from(at + len).ok()?)
}

fn read_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // The base64 text of a `!!binary` scalar, not its decoded bytes: it is kept verbatim.
        ignore_binary_tag_for_string: true,
        // `.inf` and `.nan` reach `Node` as floats, which keeps them verbatim.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    }
}

fn write_options() -> serde_saphyr::SerializerOptions {
    serde_saphyr::ser_options! { prefer_block_scalars: false }
}

/// How [`emit`] writes a scalar on its own: on one line.
fn canonical(value: &Value) -> Option<String> {
    let text = serde_saphyr::to_string_with_options(value, write_options()).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Raw, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML node")
    }
    fn visit_bool<E>(self, b: bool) -> std::result::Result<Raw, E> {
        Ok(Raw::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(Some(n.into())))
    }
    fn visit_u64<E>(self, n: u64) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(Some(n.into())))
    }
    fn visit_i128<E>(self, n: i128) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(i64::try_from(n).ok().map(Number::from)))
    }
    fn visit_u128<E>(self, n: u128) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(u64::try_from(n).ok().map(Number::from)))
    }
    fn visit_f64<E>(self, n: f64) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(Number::from_f64(n)))
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Raw, E> {
        Ok(Raw::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> std::result::Result<Raw, E> {
        Ok(Raw::String(s))
    }
    /// Bytes are not expected (binary scalars come as their base64 text): kept verbatim.
    fn visit_bytes<E>(self, _: &[u8]) -> std::result::Result<Raw, E> {
        Ok(Raw::Number(None))
    }
    fn visit_unit<E>(self) -> std::result::Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Raw, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((key, node)) = map.next_entry::<String, Node>()? {
            entries.push((key, node));
        }
        Ok(Raw::Map(entries))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Raw, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(Raw::List(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) -> Value {
        parse(Path::new("t"), &emit(v).unwrap()).unwrap()
    }

    #[test]
    fn scalars_that_look_like_other_types_stay_strings() {
        let v = json!({
            "a": "true", "b": "1", "c": "0755", "d": "null", "e": "", "f": "1e3", "g": "~",
            "h": "yes", "i": "0x1F", "j": ": x", "k": "- y", "l": "#z", "m": "line1\nline2\n",
            "n": "  lead", "o": "tail  ", "p": "'q'", "r": "\"d\"", "s": "@at", "t": "*star", "u": "&amp",
            "v": "{x}", "w": "[y]", "x": "key: value", "y": "ü ☃", "z": "\ttab"
        });
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn typed_values_and_structure_survive() {
        let v = json!({
            "apiVersion": "v1", "kind": "Config",
            "preferences": {"colors": true, "n": 3, "neg": -1, "f": 1.5, "nul": null},
            "users": [{"name": "u", "user": {"exec": {"args": ["a", "b"], "env": [{"name": "K", "value": "V"}]}}}],
            "contexts": [], "empty-map": {}, "zz-last": "x", "aa-after": "y",
            "data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ".repeat(40)
        });
        let back = round_trip(&v);
        assert_eq!(back, v);
        let keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        let want: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, want, "key order must be kept");
    }

    /// Every line of `text` appears in `emit(parse(text))`: what we do not model keeps its YAML
    /// type and text.
    #[test]
    fn scalars_a_value_cannot_hold_are_written_back_as_they_were() {
        let text = "\
apiVersion: v1
extensions:
- name: x
  extension:
    version: 1.10
    mode: 017
    hex: 0x1F
    sci: 1e3
    negzero: -0
    big: 123456789012345678901234567890
    negbig: -99999999999999999999
    infinite: .inf
    gif: !!binary R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7
    custom: !thing 5
    quoted: !thing \"a b\"
    float: !!float 3
    list: [1.10, x, 2]
    plain: 3
    half: 1.5
kind: Config
";
        let value = parse(Path::new("t"), text).unwrap();
        assert_eq!(value["extensions"][0]["extension"]["plain"], 3);
        assert_eq!(value["extensions"][0]["extension"]["half"], 1.5);
        let out = emit(&value).unwrap();
        for line in text.lines().filter(|l| !l.contains('[')) {
            assert!(out.contains(line), "{line:?} lost:\n{out}");
        }
        assert!(out.contains("- 1.10\n"), "{out}");
        assert_eq!(parse(Path::new("t"), &out).unwrap(), value, "{out}");
    }

    #[test]
    fn a_binary_block_keeps_its_tag_and_content() {
        let text =
            "a: !!binary |\n  R0lGODlhAQABAIAAAAAAAP//\n  /yH5BAEAAAAALAAAAAABAAEAAAIBRAA7\n";
        let value = parse(Path::new("t"), text).unwrap();
        let out = emit(&value).unwrap();
        assert_eq!(
            out,
            "a: !!binary \"R0lGODlhAQABAIAAAAAAAP//\\n/yH5BAEAAAAALAAAAAABAAEAAAIBRAA7\\n\"\n"
        );
        assert_eq!(parse(Path::new("t"), &out).unwrap(), value);
    }

    /// Found by the fuzz target: a block scalar's text, written after a key, is no scalar.
    #[test]
    fn a_tagged_block_scalar_is_written_so_that_it_reads_back() {
        for text in [
            "blob: !)binary |\n          , user:'u, namespa\n",
            "blob: !x |\n  #not a comment\n",
            "blob: !x >\n  a: b\n",
            "clusters:\n- nam   blob: !!binary |",
        ] {
            let value = parse(Path::new("t"), text).unwrap();
            let out = emit(&value).unwrap();
            assert_eq!(
                parse(Path::new("t"), &out).unwrap(),
                value,
                "{text:?} -> {out:?}"
            );
        }
    }

    /// Found by the fuzz target: a tagged plain scalar over lines (CR breaks), moved deeper.
    #[test]
    fn a_scalar_over_several_lines_can_move_to_another_indentation() {
        let read = parse(Path::new("t"), "k: !!x84\r\r 1i\r\r 1y\n").unwrap();
        let moved = serde_json::json!({"a": [{"b": read["k"].clone()}]});
        let out = emit(&moved).unwrap();
        assert_eq!(parse(Path::new("t"), &out).unwrap(), moved, "{out:?}");
    }

    #[test]
    fn a_document_that_is_one_odd_scalar_is_not_a_mapping() {
        for text in ["7_7", "!!binary AAAA", "1.10"] {
            assert!(parse(Path::new("t"), text).unwrap().is_string(), "{text}");
        }
    }

    #[test]
    fn a_key_that_would_read_as_verbatim_is_refused() {
        let err = parse(Path::new("/k/config"), "a:\n  \"\\0verbatim\": x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("NUL") && err.contains("/k/config"), "{err}");
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        for text in ["", "\n\n", "# nothing\n", "\u{feff}"] {
            assert_eq!(parse(Path::new("t"), text).unwrap(), json!({}));
        }
    }

    #[test]
    fn syntax_errors_give_a_position_and_never_the_text() {
        let text = "users:\n- name: u\n  user:\n    token: s3cr3t-t0ken\n   bad: [\n";
        let err = parse(Path::new("/k/config"), text).unwrap_err().to_string();
        assert!(err.contains("/k/config") && err.contains("line"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
