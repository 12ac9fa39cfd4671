#!/usr/bin/env bash
# Checks dist/onboard.yaml (`make manifest`) with krew itself (tools from tests/krew/tools.sh):
# 1. krew's validator, -skip-install (its install step would download all six uris);
# 2. a real `kubectl krew install --manifest --archive` of the linux/amd64 archive into a
#    temporary KREW_ROOT and HOME, then `kubectl onboard --version` through kubectl's plugin
#    discovery and `kubectl plugin list`. No network: with --manifest krew neither reads nor
#    fetches its index (KREW_DEFAULT_INDEX_URI points nowhere, to make sure), and builds
#    without a version tag never run the upgrade check (KREW_NO_UPGRADE_CHECK too).
# Never touches ~/.krew or ~/.kube. The plugin runs from a PATH of only krew's bin dir and a
# dir with kubectl and kubectl-krew, so a kubectl-onboard installed elsewhere cannot answer.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools="${KREW_TOOLS_BIN:-$root/target/krew/bin}"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
manifest=dist/onboard.yaml
archive=dist/kubectl-onboard_${version}_linux_amd64.tar.gz

fail() { echo "krew: FAIL: $*" >&2; exit 1; }

[[ -x "$tools/krew" && -x "$tools/validate-krew-manifest" ]] || fail "no krew tools in $tools: run tests/krew/tools.sh"
[[ -f "$archive" ]] || fail "$archive is missing: run make dist"
[[ -f "$manifest" && "$manifest" -nt plugin-manifest/onboard.yaml && ! "$archive" -nt "$manifest" ]] ||
  fail "$manifest is missing or older than its template or the archive: run make manifest"
kubectl=$(command -v kubectl) || fail "kubectl is needed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/bin"
ln -s "$tools/krew" "$tmp/bin/kubectl-krew"
ln -s "$kubectl" "$tmp/bin/kubectl"
unset KREW_OS KREW_ARCH KUBECONFIG
export HOME="$tmp/home" KREW_ROOT="$tmp/krew" KREW_NO_UPGRADE_CHECK=1 \
  KREW_DEFAULT_INDEX_URI="$tmp/no-index.git"
plugin_path="$KREW_ROOT/bin:$tmp/bin"
start=$EPOCHREALTIME

# 1. krew's validator (its klog lines, without the timestamp prefix).
if ! "$tools/validate-krew-manifest" -manifest "$manifest" -skip-install >"$tmp/validate.log" 2>&1; then
  cat "$tmp/validate.log" >&2
  fail "validate-krew-manifest rejected $manifest"
fi
sed 's/^[IWEF][0-9]\{4\} [0-9:.]* *[0-9]* [^]]*\] /validate-krew-manifest| /' "$tmp/validate.log"

# 2. A real install from the local archive.
if ! PATH="$plugin_path" kubectl krew install --manifest="$manifest" --archive="$archive" </dev/null >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  fail "kubectl krew install failed"
fi
# (krew warns that stdin is not a terminal whenever it is not: dropped from the echo.)
grep -v '^WARNING: Detected stdin' "$tmp/install.log" | sed 's/^/krew install| /'

[[ -z "$(ls -A "$KREW_ROOT/index" 2>/dev/null)" ]] || fail "krew fetched an index into $KREW_ROOT/index"
[[ -L "$KREW_ROOT/bin/kubectl-onboard" ]] || fail "no $KREW_ROOT/bin/kubectl-onboard link after install"

got=$(PATH="$plugin_path" kubectl onboard --version 2>&1) || fail "kubectl onboard --version failed: $got"
[[ "$got" == "kubectl-onboard $version" ]] || fail "kubectl onboard --version printed '$got', want 'kubectl-onboard $version'"
echo "krew: kubectl onboard --version: $got"

list=$(PATH="$plugin_path" kubectl plugin list 2>&1) || fail "kubectl plugin list failed: $list"
grep -qx "$KREW_ROOT/bin/kubectl-onboard" <<<"$list" || fail "kubectl plugin list does not show kubectl-onboard: $list"
echo "krew: kubectl plugin list: shows $KREW_ROOT/bin/kubectl-onboard"
awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "krew: validate and install checks passed in %.1f s\n", b - a }'
