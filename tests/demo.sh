#!/usr/bin/env bash
# `make demo`: run by `cargo run --example cluster -- bash tests/demo.sh` while a local control
# plane is up (KUBECONFIG is its admin kubeconfig). Onboards jane into a temporary copy of it
# and lets the real kubectl prove who she is.
set -euo pipefail
bin_dir=$(cd "$(dirname "${ONBOARD_BIN:-target/release/kubectl-onboard}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$KUBECONFIG" "$work/config"
export KUBECONFIG="$work/config" PATH="$bin_dir:$PATH"

run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
run kubectl onboard jane --group dev --group demo --approve --duration 90d
run kubectl --context jane@local auth whoami
run kubectl config get-contexts
