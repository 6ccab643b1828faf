#!/usr/bin/env bash
# What CI runs (.ci/run): the formatting check (scripts/check_format.sh),
# then stage 1; stages 2 and 3 run with MIXQ_SANITIZE=1 (not yet in CI: the
# three stages together have not been measured under CI's 30 minutes on 2
# cores; docs/robustness.md):
#  1. Release build of everything and the whole test suite;
#  2. the test suite again, built with AddressSanitizer + UBSan (-O1, assertions
#     on) in a second build directory, without the five script tests that
#     build their own programs (find_package_installed, header_odr,
#     header_self_contained, neon_qemu, deploy_qemu: nothing of this build
#     runs in them) and without the tests labelled
#     "slow" (the small CNN trained on Fashion-MNIST to 85 %, about 5 minutes
#     in Release);
#  3. each libFuzzer target for MIXQ_FUZZ_SECONDS seconds (scripts/fuzz.sh).
# docs/robustness.md describes stages 2 and 3 and their timings.
# Environment: MIXQ_BUILD_DIR (build), MIXQ_ASAN_BUILD_DIR (build-asan),
# MIXQ_FUZZ_BUILD_DIR (build-fuzz), MIXQ_JOBS (nproc), MIXQ_FUZZ_SECONDS (20),
# MIXQ_SANITIZE=1 to run stages 2 and 3 too.
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
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"

[[ "${MIXQ_SANITIZE:-0}" == 0 ]] && exit 0

stage "2/3 AddressSanitizer + UBSan build and tests"
cmake -S "$root" -B "$asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DMIXQ_SANITIZE=ON -DMIXQ_BUILD_BENCH=OFF \
  "${launcher[@]}"
cmake --build "$asan" -j "$jobs"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/fuzz/ubsan.supp" \
  ctest --test-dir "$asan" --output-on-failure -j "$jobs" -LE slow \
  -E '^script: (find_package_installed|header_odr|header_self_contained|neon_qemu|deploy_qemu)$'

stage "3/3 fuzz targets, ${MIXQ_FUZZ_SECONDS:-20} s each"
bash "$root/scripts/fuzz.sh" --seconds "${MIXQ_FUZZ_SECONDS:-20}"
stage "done"
