#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with AddressSanitizer and UBSan)
# and runs each for a bounded time, MIXQ_JOBS targets at a time. Used by
# scripts/test.sh (20 s a target) and by hand for longer runs:
#
#   scripts/fuzz.sh                      every target, 20 s each
#   scripts/fuzz.sh --seconds 600 image  the image target for 10 minutes
#   scripts/fuzz.sh --build-only
#
# Each target starts from its committed seeds (fuzz/corpus/<t>) plus the
# inputs it found before (a scratch corpus under the build directory, kept
# between runs, never committed). A crash, sanitizer report, leak, timeout
# (10 s an input) or out-of-memory (2 GiB) stops the run with exit code 1
# and leaves the input in <build>/fuzz-artifacts/<t>/: copy it to
# fuzz/regressions/<t>/ with the fix, so it becomes a test.
# Environment: MIXQ_FUZZ_BUILD_DIR (default <repo>/build-fuzz),
# MIXQ_JOBS (build jobs and targets run at once, default nproc).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${MIXQ_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${MIXQ_JOBS:-$(nproc)}"
seconds=20
build_only=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(cifar10 idx archive image deploy cli)

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (Debian: clang, libclang-rt-dev)" >&2
  exit 1
fi
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" -DMIXQ_BUILD_FUZZERS=ON -DMIXQ_BUILD_TESTS=OFF -DMIXQ_BUILD_EXAMPLES=OFF \
  -DMIXQ_BUILD_BENCH=OFF -DMIXQ_NATIVE=OFF -DMIXQ_USE_OPENMP=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target $(printf 'mixq_fuzz_%s ' "${targets[@]}")
[[ $build_only -eq 1 ]] && exit 0

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp"
# One target's run; its verdict goes to <build>/fuzz-<t>.result (0 or 1).
fuzz_one() {
  local t="$1" work="$build/fuzz-work/$1" art="$build/fuzz-artifacts/$1" log="$build/fuzz-$1.log"
  mkdir -p "$work" "$art"
  if "$build/fuzz/mixq_fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$art/" "$work" "$root/fuzz/corpus/$t" >"$log" 2>&1; then
    echo 0 >"$build/fuzz-$t.result"
  else
    echo 1 >"$build/fuzz-$t.result"
  fi
}
# MIXQ_JOBS targets at a time (each libFuzzer run is one thread); the
# verdicts are printed afterwards, in the order of the targets.
running=0
for t in "${targets[@]}"; do
  rm -f "$build/fuzz-$t.result"
  if [[ $running -ge $jobs ]]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait
status=0
for t in "${targets[@]}"; do
  log="$build/fuzz-$t.log"
  if [[ "$(cat "$build/fuzz-$t.result" 2>/dev/null)" == 0 ]]; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz.sh: $t: ${execs:-?} executions in ${seconds} s, no defect found"
  else
    echo "fuzz.sh: $t: DEFECT FOUND (log $log, input in $build/fuzz-artifacts/$t/):" >&2
    grep -m 3 -E "ERROR|runtime error|SUMMARY" "$log" >&2 || tail -5 "$log" >&2
    status=1
  fi
done
exit $status
