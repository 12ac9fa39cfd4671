#!/usr/bin/env bash
# `make manifest`: renders $DIST/onboard.yaml (DIST: dist/ by default) from
# plugin-manifest/onboard.yaml (see the comment at its top). Each sha256 placeholder is replaced
# by the hash in $DIST/<archive>.sha256, the archive being the basename of the uri above it
# (.ci/pack.sh makes both). The linux/amd64 archive (`make dist`) is required and checked
# against its .sha256; the other platforms keep the placeholder unless their .sha256 is there.
#
#   tests/krew/manifest.sh [--release]
#
# --release (the release workflow): every platform must be filled, except those named in
# OPTIONAL_PLATFORMS (e.g. "windows/amd64"), whose build may fail: without an archive they are
# left out of the manifest, and the output says so.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
release=false
[[ "${1:-}" == --release ]] && release=true
dist=${DIST:-dist}

template=plugin-manifest/onboard.yaml
out=$dist/onboard.yaml
placeholder=$(printf '0%.0s' {1..64})
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
archive=kubectl-onboard_${version}_linux_amd64.tar.gz

fail() { echo "manifest: $*" >&2; exit 1; }

in_template=$(sed -n 's/^  version: *"\{0,1\}\([^" ]*\)"\{0,1\} *$/\1/p' "$template")
[[ "$in_template" == "v$version" ]] ||
  fail "$template has spec.version '$in_template' but Cargo.toml has $version: set it to v$version (and the uris)"
if grep -E '^ *uri:' "$template" | grep -Evq "/download/v$version/kubectl-onboard_${version}_[a-z]+_[a-z0-9]+\.(tar\.gz|zip)$"; then
  fail "$template: every uri must point at release v$version (kubectl-onboard_${version}_<os>_<arch>.tar.gz, .zip for windows)"
fi
[[ -f "$dist/$archive.sha256" ]] || fail "$dist/$archive.sha256 is missing: run make dist"
(cd "$dist" && sha256sum --quiet --check "$archive.sha256") >/dev/null ||
  fail "$dist/$archive does not match $dist/$archive.sha256: run make dist"

# Drop the template's leading comment block; fill each sha256 from the uri above it. Platform
# blocks (from "  - selector:" on) are held until their end, so that a release can leave out an
# optional platform that was not built.
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp" "$tmp.log"' EXIT
awk -v dist="$dist" -v placeholder="$placeholder" -v release="$release" \
  -v optional=" ${OPTIONAL_PLATFORMS:-} " '
  function flush() {
    if (block != "" && !(drop)) printf "%s", block
    block = ""; drop = 0
  }
  BEGIN { header = 1 }
  header && /^#/ { next }
  { header = 0 }
  /^  - selector:/ || /^[^ ]/ { flush() }
  /^ *uri: / { n = split($2, parts, "/"); file = parts[n] }
  /^ *sha256: / {
    value = $2; gsub(/"/, "", value)
    if (value != placeholder) { print "manifest: " file ": the template must hold the placeholder, not " value > "/dev/stderr"; exit 2 }
    sumfile = dist "/" file ".sha256"
    platform = file; sub(/^kubectl-onboard_[^_]*_/, "", platform); sub(/\.(tar\.gz|zip)$/, "", platform); sub(/_/, "/", platform)
    if ((getline line < sumfile) > 0) {
      split(line, f, " ")
      if (length(f[1]) != 64 || f[1] ~ /[^0-9a-f]/ || f[2] != file) { print "manifest: " sumfile " is not a sha256sum line for " file > "/dev/stderr"; exit 2 }
      sub(/sha256: .*/, "sha256: \"" f[1] "\""); print "filled " platform > "/dev/stderr"
    } else if (release == "true" && index(optional, " " platform " ")) {
      drop = 1; print "dropped " platform > "/dev/stderr"
    } else {
      print "placeholder " platform > "/dev/stderr"
    }
  }
  { block = block $0 "\n" }
  END { flush() }
' "$template" >"$tmp" 2>"$tmp.log" || { cat "$tmp.log" >&2; exit 1; }

list() { sed -n "s/^$1 //p" "$tmp.log" | paste -sd' ' -; }
filled=$(list filled) left=$(list placeholder) dropped=$(list dropped)
[[ " $filled " == *" linux/amd64 "* ]] || fail "linux/amd64 was not filled (is its uri in $template?)"
if $release && [[ -n "$left" ]]; then
  fail "--release: no $dist/<archive>.sha256 for $left"
fi
mv "$tmp" "$out"
echo "manifest: $out (v$version): sha256 of $filled${left:+; placeholder for $left}${dropped:+; left out (not built): $dropped}"
