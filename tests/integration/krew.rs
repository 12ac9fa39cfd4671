//! The krew manifest template, `plugin-manifest/onboard.yaml`, parsed strictly and checked
//! against krew's rules and ours. krew's own parser (sigs.k8s.io/yaml into
//! sigs.k8s.io/krew/pkg/index.Plugin) silently drops unknown keys: a manifest with `caveat:`
//! for `caveats:` passes krew's validator with no caveats (a misspelled `shortDescription` is
//! caught only because that field is required). Here every struct denies unknown fields. `make test` also runs krew's validator and a real
//! `kubectl krew install` on the rendered copy (tests/krew/check.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugin-manifest/onboard.yaml");
/// Every sha256 in the template: well-formed for krew, filled by tests/krew/manifest.sh.
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

// krew v0.4.x, pkg/index/types.go (API version krew.googlecontainertools.github.com/v1alpha2).
// Fields krew marks omitempty but this plugin must have (homepage, description, caveats,
// files) are required here.

/// `index.Plugin`: TypeMeta inline, ObjectMeta, spec.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Plugin {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: PluginSpec,
}

/// `metav1.ObjectMeta`, of which krew reads only the name; any other key here is a mistake.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

/// `index.PluginSpec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PluginSpec {
    version: String,
    short_description: String,
    description: String,
    caveats: String,
    homepage: String,
    platforms: Vec<Platform>,
}

/// `index.Platform`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    uri: String,
    sha256: String,
    selector: Selector,
    files: Vec<FileOperation>,
    bin: String,
}

/// `metav1.LabelSelector`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<SelectorRequirement>>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed to reject unknown keys; this manifest uses matchLabels only
struct SelectorRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

/// `index.FileOperation`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FileOperation {
    from: String,
    to: String,
}

fn parse(yaml: &str) -> Result<Plugin, String> {
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Every rule the manifest breaks (empty: none). `name` is the file stem; `template`: the
/// committed template, whose sha256 values must all be the placeholder.
fn problems(p: &Plugin, name: &str, template: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    let version = env!("CARGO_PKG_VERSION");
    let repository = env!("CARGO_PKG_REPOSITORY");
    let s = &p.spec;

    check(
        p.api_version == "krew.googlecontainertools.github.com/v1alpha2",
        format!("apiVersion is {:?}", p.api_version),
    );
    check(p.kind == "Plugin", format!("kind is {:?}", p.kind));
    check(
        p.metadata.name == name,
        format!(
            "metadata.name {:?} is not the file name {name:?}",
            p.metadata.name
        ),
    );
    check(
        s.version == format!("v{version}"),
        format!(
            "spec.version {:?} is not v{version} (Cargo.toml)",
            s.version
        ),
    );
    check(
        s.homepage == repository,
        format!("spec.homepage {:?} is not {repository:?}", s.homepage),
    );

    let short = &s.short_description;
    check(
        !short.trim().is_empty() && short.trim() == short && !short.contains(['\r', '\n']),
        format!("spec.shortDescription {short:?} is not one trimmed line"),
    );
    check(
        short.chars().count() <= 50,
        format!(
            "spec.shortDescription has {} characters (at most 50)",
            short.chars().count()
        ),
    );
    for (field, text) in [("description", &s.description), ("caveats", &s.caveats)] {
        check(!text.trim().is_empty(), format!("spec.{field} is empty"));
        for line in text.lines() {
            check(
                line.chars().count() <= 80,
                format!("spec.{field} has a line over 80 characters: {line:?}"),
            );
        }
    }
    for line in s.description.lines().map(str::trim_start) {
        check(
            !(line.starts_with("kubectl ") || line.starts_with("$ ") || line.starts_with("--")),
            format!("spec.description lists commands or flags: {line:?}"),
        );
    }
    for word in [
        "certificates.k8s.io",
        "certificatesigningrequests",
        "certificatesigningrequests/approval",
        "signers",
        "kubernetes.io/kube-apiserver-client",
        "approve",
    ] {
        check(
            s.caveats.contains(word),
            format!("spec.caveats does not name the RBAC it needs: no {word:?}"),
        );
    }

    let mut seen = BTreeSet::new();
    for (i, pl) in s.platforms.iter().enumerate() {
        let labels = pl.selector.match_labels.clone().unwrap_or_default();
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        check(
            keys == ["arch", "os"] && pl.selector.match_expressions.is_none(),
            format!("platforms[{i}].selector must be matchLabels with os and arch only"),
        );
        let (os, arch) = (
            labels.get("os").cloned().unwrap_or_default(),
            labels.get("arch").cloned().unwrap_or_default(),
        );
        check(
            seen.insert((os.clone(), arch.clone())),
            format!("platforms[{i}]: {os}/{arch} twice"),
        );
        let extension = if os == "windows" { "zip" } else { "tar.gz" };
        let uri = format!(
            "{repository}/releases/download/v{version}/kubectl-onboard_{version}_{os}_{arch}.{extension}"
        );
        check(
            pl.uri == uri,
            format!("platforms[{i}].uri is {:?}, want {uri:?}", pl.uri),
        );
        let bin = if os == "windows" {
            "kubectl-onboard.exe"
        } else {
            "kubectl-onboard"
        };
        check(
            pl.bin == bin,
            format!("platforms[{i}] ({os}) bin is {:?}, want {bin:?}", pl.bin),
        );
        for from in [bin, "LICENSE"] {
            check(
                pl.files.contains(&FileOperation {
                    from: from.into(),
                    to: ".".into(),
                }),
                format!("platforms[{i}].files does not copy {from} to ."),
            );
        }
        check(
            is_sha256(&pl.sha256),
            format!(
                "platforms[{i}].sha256 {:?} is not 64 lowercase hex digits",
                pl.sha256
            ),
        );
        if template {
            check(
                pl.sha256 == PLACEHOLDER,
                format!("platforms[{i}].sha256 in the template must be the placeholder"),
            );
        }
    }
    // What the release workflow builds (.github/workflows/release.yml, .ci/pack.sh).
    let want: BTreeSet<(String, String)> = [
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
    ]
    .iter()
    .map(|(os, arch)| (os.to_string(), arch.to_string()))
    .collect();
    check(
        s.platforms.len() == want.len() && seen == want,
        format!("platforms are {seen:?}, want linux and darwin × amd64, arm64, and windows/amd64"),
    );
    out
}

#[test]
fn template_is_a_strict_krew_manifest_for_this_version() {
    let yaml = std::fs::read_to_string(TEMPLATE).unwrap();
    let plugin = parse(&yaml).unwrap_or_else(|e| panic!("{TEMPLATE}: {e}"));
    let stem = Path::new(TEMPLATE).file_stem().unwrap().to_str().unwrap();
    assert_eq!(stem, "onboard");
    let found = problems(&plugin, stem, true);
    assert!(found.is_empty(), "{TEMPLATE}:\n  {}", found.join("\n  "));
}

// The checks above can fail: a few broken variants of the template.

fn template() -> String {
    std::fs::read_to_string(TEMPLATE).unwrap()
}

fn edited(from: &str, to: &str) -> String {
    let yaml = template();
    assert!(
        yaml.contains(from),
        "the template no longer contains {from:?}"
    );
    yaml.replacen(from, to, 1)
}

#[test]
fn a_misspelled_key_is_an_error_not_a_dropped_field() {
    let yaml = edited("  shortDescription:", "  shortDesciption:");
    let err = parse(&yaml).unwrap_err();
    assert!(err.contains("shortDesciption"), "{err}");
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    for (from, to) in [
        ("kind: Plugin", "kind: Plugin\nstatus: {}"),
        ("  name: onboard", "  name: onboard\n  labels: {}"),
        (
            "    bin: kubectl-onboard\n",
            "    binary: kubectl-onboard\n",
        ),
        ("      to: .", "      to: .\n      mode: x"),
        ("      matchLabels:", "      matchLabel:"),
    ] {
        assert!(parse(&edited(from, to)).is_err(), "accepted {to:?}");
    }
}

#[test]
fn a_duplicate_key_is_an_error() {
    let yaml = edited("  version: ", "  version: v9.9.9\n  version: ");
    assert!(parse(&yaml).is_err());
}

#[test]
fn broken_rules_are_reported() {
    let version = env!("CARGO_PKG_VERSION");
    for (from, to, expect) in [
        ("  version: v", "  version: v0.0.0-", "spec.version"),
        ("  name: onboard", "  name: on-board", "metadata.name"),
        (
            "  shortDescription: ",
            "  shortDescription: A description that is far too long for the search list, ",
            "at most 50",
        ),
        (
            "    bin: kubectl-onboard.exe",
            "    bin: kubectl-onboard",
            "bin is",
        ),
        (
            "        os: darwin\n        arch: arm64",
            "        os: darwin\n        arch: 386",
            "386",
        ),
        (
            "      certificatesigningrequests/approval,",
            "      certificatesigningrequests,",
            "\"certificatesigningrequests/approval\"",
        ),
        (
            "\"0000000000000000000000000000000000000000000000000000000000000000\"",
            "\"0000000000000000000000000000000000000000000000000000000000000ABC\"",
            "64 lowercase hex",
        ),
        (
            &format!("download/v{version}/"),
            "download/v0.0.0/",
            "uri is",
        ),
    ] {
        let plugin = parse(&edited(from, to)).unwrap();
        let found = problems(&plugin, "onboard", true).join("\n");
        assert!(
            found.contains(expect),
            "{to:?}: wanted {expect:?} in:\n{found}"
        );
    }
    let long = format!("{}\n", "x".repeat(81));
    let plugin = parse(&edited(
        "  description: |\n",
        &format!("  description: |\n    {long}"),
    ))
    .unwrap();
    assert!(
        problems(&plugin, "onboard", true)
            .join("\n")
            .contains("over 80")
    );
}

#[test]
fn rendered_hashes_pass_outside_the_template_only() {
    let real = "3d542fa1c489efbfeea7bc5f3379d19688ac032450ef45af551ad024c869f29f";
    let plugin = parse(&edited(PLACEHOLDER, real)).unwrap();
    assert!(problems(&plugin, "onboard", false).is_empty());
    assert!(
        problems(&plugin, "onboard", true)
            .join("\n")
            .contains("placeholder")
    );
}
