#!/usr/bin/env bash
# `make demo`: run by `cargo run --example cluster -- bash tests/demo.sh` while a local control
# plane is up (KUBECONFIG is its admin kubeconfig). Onboards jane into a temporary copy of it
# and lets the real kubectl prove who she is; then invites bob, who accepts on a "machine" of
# his own (a HOME with no kubeconfig), and the administrator approves.
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

printf '\n\033[1m# Self-service from an invitation\033[0m\n'
run kubectl onboard invite bob --group dev --expires 1h --output "$work/bob.invite"
mkdir -p "$work/bob"
cp "$work/bob.invite" "$work/bob/bob.invite"
# bob's machine: his own HOME, no kubeconfig; he waits for approval in the background.
(cd "$work/bob" && HOME="$work/bob" KUBECONFIG="" kubectl onboard accept bob.invite >"$work/bob.out" 2>&1) &
accepting=$!
for _ in $(seq 1 100); do
  kubectl onboard pending -o json 2>/dev/null | grep -q '"matches": true' && break
  sleep 0.1
done
run kubectl onboard pending
run kubectl onboard approve --invited
wait "$accepting"
printf '\n\033[1m# bob'"'"'s terminal\033[0m\n'
cat "$work/bob.out"
run env -u KUBECONFIG HOME="$work/bob" kubectl auth whoami
run kubectl onboard invitations
