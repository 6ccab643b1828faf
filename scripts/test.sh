#!/usr/bin/env bash
# What CI runs (.ci/run): the formatting check (scripts/check_format.sh), then
# three stages, sized to stay under CI's 30 minutes on 2 cores from a cold
# ccache (the measured budget is in docs/robustness.md, "Sanitizer run"):
#  1. Release build of the tests and examples (not the benchmarks, which no
#     test runs; MIXQ_BUILD_BENCH=ON builds them too) and the whole test suite;
#  2. AddressSanitizer + UBSan (-O1 -g1, assertions on) in a second build
#     directory, for the code that reads untrusted input: the test areas io
#     (every reader, and every committed fuzz input replayed), deploy (the
#     runtime and its model file) and examples (flag validation), and
#     mixq_train_cifar10 under its script test (hostile flags, bad data, a
#     tiny run, resume, refused resumes). Not the numeric areas (core,
#     autograd, nn, kernels), not train (checkpoints and resume reach ASan
#     through that script test and the archive inputs io replays), not quant,
#     the deploy examples, the tests labelled "slow" or the script tests that
#     build their own programs: docs/robustness.md gives the costs and what
#     covers them instead;
#  3. each libFuzzer target for MIXQ_FUZZ_SECONDS seconds, MIXQ_JOBS at a
#     time (scripts/fuzz.sh).
# Environment: MIXQ_BUILD_DIR (build), MIXQ_ASAN_BUILD_DIR (build-asan),
# MIXQ_FUZZ_BUILD_DIR (build-fuzz), MIXQ_JOBS (nproc), MIXQ_FUZZ_SECONDS (20),
# MIXQ_BUILD_BENCH (OFF), MIXQ_SANITIZE=0 to stop after stage 1.
# Time budget: CI stops a run at 30 minutes. MIXQ_TIME_BUDGET (1740 s) is the
# wall time this script may use; stage 2 starts only if its expected cost
# (MIXQ_STAGE2_S, 600 s for stages 2 and 3 together) still fits, stage 3 only
# if MIXQ_STAGE3_S (330 s) does, and stage 3 is stopped at the budget
# (timeout). A skipped or stopped stage prints why and the run still passes
# (a fuzz target that finds a crash fails it, as always): on a machine slow
# enough to skip, stage 1 has run everything that gates correctness, and the
# sanitizer and fuzz stages are what the margin buys (docs/robustness.md,
# "Sanitizer run").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
bash "$root/scripts/check_format.sh"
build="${MIXQ_BUILD_DIR:-$root/build}"
asan="${MIXQ_ASAN_BUILD_DIR:-$root/build-asan}"
jobs="${MIXQ_JOBS:-$(nproc)}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Each stage line gives the wall time and the CPU time (user + system) of
# everything run so far; on a busy machine the CPU time is the better
# estimate of the wall time on an idle one.
# (cutime + cstime of this shell, fields 16 and 17 of /proc/PID/stat.)
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($16 + $17) / hz) }' "/proc/$$/stat"; }
stage() {
  echo "== test.sh: $1 ($(date -u +%H:%M:%S), ${SECONDS} s wall, $(cpu_s) s CPU so far)"
}

stage "1/3 Release build and tests"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMIXQ_BUILD_BENCH="${MIXQ_BUILD_BENCH:-OFF}" \
  "${launcher[@]}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"

[[ "${MIXQ_SANITIZE:-1}" == 0 ]] && { stage "done (stages 2 and 3 skipped: MIXQ_SANITIZE=0)"; exit 0; }
budget="${MIXQ_TIME_BUDGET:-1740}"
# fits SECONDS_NEEDED: true when that many more seconds stay within the budget.
fits() { (( SECONDS + $1 <= budget )); }
if ! fits "${MIXQ_STAGE2_S:-600}"; then
  stage "done (stages 2 and 3 skipped: ${SECONDS} s used, they need about ${MIXQ_STAGE2_S:-600} s of the ${budget} s budget, MIXQ_TIME_BUDGET)"
  exit 0
fi

stage "2/3 AddressSanitizer + UBSan build and tests"
cmake -S "$root" -B "$asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMIXQ_SANITIZE=ON -DMIXQ_BUILD_BENCH=OFF \
  "${launcher[@]}"
cmake --build "$asan" -j "$jobs" --target mixq_test_io mixq_test_deploy mixq_test_examples \
  mixq_train_cifar10
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp" \
  ctest --test-dir "$asan" --output-on-failure -j "$jobs" -LE slow \
  -R '^((io|deploy|examples):|script: example_train_cifar10$)'

if ! fits "${MIXQ_STAGE3_S:-330}"; then
  stage "done (stage 3 skipped: ${SECONDS} s used, it needs about ${MIXQ_STAGE3_S:-330} s of the ${budget} s budget, MIXQ_TIME_BUDGET)"
  exit 0
fi
stage "3/3 fuzz targets, ${MIXQ_FUZZ_SECONDS:-20} s each"
rc=0
timeout "$((budget - SECONDS))" bash "$root/scripts/fuzz.sh" --seconds "${MIXQ_FUZZ_SECONDS:-20}" || rc=$?
if [[ $rc == 124 ]]; then
  stage "done (stage 3 stopped at the ${budget} s budget, MIXQ_TIME_BUDGET)"
  exit 0
fi
(( rc == 0 )) || exit "$rc"
stage "done"
