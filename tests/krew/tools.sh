#!/usr/bin/env bash
# Builds krew and its manifest validator from the Go module sigs.k8s.io/krew into target/krew/bin.
# A no-op when both are there, built from this version (the stamp records it).
#
# v0.4.4, not v0.4.5: the Go module proxy this project can reach answers v0.4.5 with
# "403 This module version is not available"; v0.4.4 (2023-07) is the newest it serves.
set -euo pipefail

version=v0.4.4
root=$(cd "$(dirname "$0")/../.." && pwd)
out="${KREW_TOOLS_BIN:-$root/target/krew/bin}"

if [[ -x "$out/krew" && -x "$out/validate-krew-manifest" && "$(cat "$out/.stamp" 2>/dev/null)" == "$version" ]]; then
  exit 0
fi

command -v go >/dev/null || { echo "krew: Go is needed to build krew (https://go.dev/dl)" >&2; exit 1; }

echo "krew: building krew and validate-krew-manifest $version from sigs.k8s.io/krew into $out (first run only)"
mkdir -p "$out"
rm -f "$out/.stamp"
start=$SECONDS
GOBIN="$out" go install \
  "sigs.k8s.io/krew/cmd/validate-krew-manifest@$version" \
  "sigs.k8s.io/krew/cmd/krew@$version"
echo "$version" >"$out/.stamp"
echo "krew: built in $((SECONDS - start)) s"
