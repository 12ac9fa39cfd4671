#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each for a bounded time; prints executions per target.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); all targets by default
#
# Env: FUZZ_SANITIZER (default none: works on a stable toolchain; address/leak need nightly, or
# RUSTC_BOOTSTRAP=1, which this script sets itself on stable), FUZZ_MERGE=1 to merge the inputs
# that found new coverage into the committed corpus/<target> afterwards (review, then commit).
#
# The committed seeds in corpus/<target> are only read; new inputs go to work/<target> and crashes
# to artifacts/<target> (both ignored by git). Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
[ $# -gt 0 ] && shift
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2; }
sanitizer=${FUZZ_SANITIZER:-none}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: installing it with 'cargo install cargo-fuzz --locked' (crates.io, ~1 min)"
  cargo install cargo-fuzz --locked
fi

# libfuzzer-sys needs no nightly with -s none. A sanitizer passes -Zsanitizer, which a stable
# rustc accepts only with RUSTC_BOOTSTRAP=1 (no nightly can be downloaded on these machines).
if [ "$sanitizer" != none ] && ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

start=$(date +%s)
cargo fuzz build -s "$sanitizer"
echo "built ${#targets[@]} fuzz targets in $(($(date +%s) - start))s (sanitizer: $sanitizer, $(rustc --version))"
# The binaries are run directly: `cargo fuzz run` would rebuild before each target, so a change
# to the sources during a run would fuzz a different build (or fail to build) halfway through.
bindir="target/$(rustc -vV | sed -n 's/^host: //p')/release"

mkdir -p work/logs
failed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "corpus/$target"
  log="work/logs/$target.log"
  echo "fuzzing $target for ${seconds}s (log: fuzz/$log)"
  status=0
  # -timeout: an input that takes 10s is a finding (a hang), not something to wait out.
  mkdir -p "artifacts/$target"
  "$bindir/$target" -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "work/$target" "corpus/$target" >"$log" 2>&1 || status=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  # (greps that may match nothing must not end the script under pipefail)
  execs=$(stat number_of_executed_units); rate=$(stat average_exec_per_sec)
  units=$(stat new_units_added); rss=$(stat peak_rss_mb)
  corpus=$( (grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" || true) | tail -n1 | cut -d' ' -f2)
  line=$(printf '%-22s %12s execs %8s exec/s  corpus %-10s new %-6s rss %sMB' \
    "$target" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "${units:-?}" "${rss:-?}")
  if [ "$status" -ne 0 ]; then
    artifact=$( (grep -oE 'Test unit written to [^ ]+' "$log" || true) | tail -n1 | cut -d' ' -f5)
    line="$line  CRASH (exit $status) ${artifact:+fuzz/$artifact}"
    failed+=("$target")
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|==ERROR" "$log" | sed 's/^/    /' || true
    [ -z "${artifact:-}" ] || echo "    reproduce: (cd fuzz && cargo fuzz run -s $sanitizer $target $artifact); minimize: cargo fuzz tmin instead of run"
  fi
  summary+=("$line")
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$status" -eq 0 ]; then
    # Only inputs that add edges to what corpus/<target> already covers are copied into it: a
    # greedy set cover on edges (not hit counts), which keeps the committed corpus small.
    "$bindir/$target" -set_cover_merge=1 -use_counters=0 "corpus/$target" "work/$target" \
      >"work/logs/$target.merge.log" 2>&1
    echo "  merged into fuzz/corpus/$target: $(ls "corpus/$target" | wc -l) files, $(du -sh "corpus/$target" | cut -f1)"
  fi
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs under fuzz/artifacts/)"
  exit 1
fi
