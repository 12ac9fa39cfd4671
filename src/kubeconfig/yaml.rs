//! The one YAML stack in the binary: serde-saphyr, which kube already uses to parse kubeconfigs
//! (serde_yaml, on the original design card, is deprecated upstream). Documents are held as
//! order-preserving `serde_json::Value`s.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

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
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Null) => Ok(Value::Object(Default::default())),
        Ok(value) => Ok(value),
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

/// Long base64 values as plain one-line scalars, the way kubectl writes them.
pub fn emit(value: &Value) -> Result<String> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|_| Error::failed("cannot write the kubeconfig as YAML; nothing was changed"))
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
