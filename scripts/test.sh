#!/usr/bin/env bash
# Checks the formatting, builds everything (Release) and runs the whole test
# suite. Used by .ci/run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
bash "$root/scripts/check_format.sh"
build="${MIXQ_BUILD_DIR:-$root/build}"
jobs="${MIXQ_JOBS:-$(nproc)}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
