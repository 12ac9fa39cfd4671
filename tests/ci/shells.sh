#!/usr/bin/env bash
# zsh and fish, for the completion tests of their scripts (tests/integration/cli.rs): installed with apt-get
# when missing and this runs as root on Debian or Ubuntu; otherwise it says what to install.
set -euo pipefail
missing=()
for shell in zsh fish; do
  command -v "$shell" >/dev/null || missing+=("$shell")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "shells: installing ${missing[*]} with apt-get (for the completion tests)"
  { apt-get install -y -qq "${missing[@]}" || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }; } >/dev/null 2>&1 ||
    { echo "shells: could not install ${missing[*]}; the completion tests for them will fail" >&2; exit 0; }
else
  echo "shells: ${missing[*]} not installed (no root or no apt-get): install them, or their completion tests fail" >&2
fi
