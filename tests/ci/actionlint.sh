#!/usr/bin/env bash
# `make workflows`: actionlint on .github/workflows, built from its Go module into
# target/ci/bin on first use (as the krew tools are). shellcheck, when installed, checks the
# run: scripts too.
set -euo pipefail

version=v1.7.12
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/target/ci/bin"

if [[ ! -x "$out/actionlint" || "$(cat "$out/.stamp" 2>/dev/null)" != "$version" ]]; then
  command -v go >/dev/null || { echo "actionlint: Go is needed to build actionlint (https://go.dev/dl)" >&2; exit 1; }
  echo "actionlint: building $version from github.com/rhysd/actionlint into $out (first run only)"
  mkdir -p "$out"
  rm -f "$out/.stamp"
  start=$SECONDS
  GOBIN="$out" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  echo "$version" >"$out/.stamp"
  echo "actionlint: built in $((SECONDS - start)) s"
fi

cd "$root"
"$out/actionlint" -no-color .github/workflows/*.yml
echo "actionlint $version: $(ls .github/workflows/*.yml | paste -sd' ' -) pass"
