#!/usr/bin/env bash
# `make release-check`: what the release workflow does after the builds, here: every platform's
# archive packed by .ci/pack.sh (this machine's binary stands in for the others: the check is of
# names, hashes and the manifest, not of the code), the manifest rendered with
# tests/krew/manifest.sh --release, and krew's validator on it. Then the same without the
# optional windows archive, as when its build fails: windows must be left out, the rest valid.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools="${KREW_TOOLS_BIN:-$root/target/krew/bin}"
binary=target/release/kubectl-onboard
fail() { echo "release: FAIL: $*" >&2; exit 1; }
[[ -x "$tools/validate-krew-manifest" ]] || fail "no validate-krew-manifest in $tools: run tests/krew/tools.sh"
[[ -x "$binary" ]] || fail "$binary is missing: run make release"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
validate() {
  "$tools/validate-krew-manifest" -manifest "$1/onboard.yaml" -skip-install >"$tmp/validate.log" 2>&1 ||
    { cat "$tmp/validate.log" >&2; fail "validate-krew-manifest rejected the release manifest in $1"; }
}

all="$tmp/all"
for p in "${platforms[@]}"; do
  bash .ci/pack.sh "$binary" "${p%/*}" "${p#*/}" "$all" >/dev/null
done
listing=$(python3 -m zipfile -l "$all"/*windows_amd64.zip)
for file in kubectl-onboard.exe LICENSE; do
  grep -q "^$file " <<<"$listing" || fail "the windows zip does not hold $file"
done
DIST="$all" bash tests/krew/manifest.sh --release
grep -c '^    sha256: "[0-9a-f]\{64\}"$' "$all/onboard.yaml" | grep -qx "${#platforms[@]}" || fail "not every sha256 was filled"
grep -q '0\{64\}' "$all/onboard.yaml" && fail "a placeholder is left in the release manifest"
for p in "${platforms[@]}"; do
  archive=$(basename "$all"/kubectl-onboard_*_"${p%/*}"_"${p#*/}".*[pz])
  grep -q "$(cut -d' ' -f1 "$all/$archive.sha256")" "$all/onboard.yaml" || fail "$archive's sha256 is not in the manifest"
done
validate "$all"
echo "release: all ${#platforms[@]} platforms packed, rendered and accepted by validate-krew-manifest"

without="$tmp/without-windows"
mkdir -p "$without"
cp "$all"/*linux* "$all"/*darwin* "$without"/
if DIST="$without" bash tests/krew/manifest.sh --release >/dev/null 2>&1; then
  fail "--release passed with the windows archive missing and windows not optional"
fi
DIST="$without" OPTIONAL_PLATFORMS=windows/amd64 bash tests/krew/manifest.sh --release
grep -q windows "$without/onboard.yaml" && fail "windows/amd64 was not left out"
validate "$without"
echo "release: without the optional windows build, windows is left out and the rest is valid"
