#!/usr/bin/env bash
# `make bench`: the benchmarks of benches/onboard on a local control plane; writes
# benches/RESULTS.md. Not part of `make test`. Arguments go to the benchmark
# (`--runs N`, `--only 1,3`, `--out FILE`), e.g. `make bench BENCH_ARGS="--only 4"`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (figures from a busy machine are not this tool's)"
for tool in kubectl openssl base64; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (the manual flow and the checks use it)" >&2; exit 1; }
done
if ! command -v hyperfine >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bench: installing hyperfine with apt-get (a cross-check of the --help timing)"
    if ! { apt-get install -y -qq hyperfine || { apt-get update -qq && apt-get install -y -qq hyperfine; }; } >/dev/null 2>&1; then
      echo "bench: could not install hyperfine; the benchmark times --help by itself"
    fi
  else
    echo "bench: no hyperfine (and no root for apt-get); the benchmark times --help by itself"
  fi
fi

echo "bench: building the release binary (cargo build --release)"
cargo build --release --quiet
# cargo bench builds the package again in its own profile (the same settings) and may replace
# target/release/kubectl-onboard: time a copy of the release build.
mkdir -p target/bench-bin
cp target/release/kubectl-onboard target/bench-bin/kubectl-onboard
echo "bench: building and running the benchmark (cargo bench --bench onboard)"
cargo bench --quiet --bench onboard -- --bin target/bench-bin/kubectl-onboard "$@"
