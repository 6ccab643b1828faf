#!/usr/bin/env bash
# Benchmarks on a machine that has g++ but none of the Debian -dev packages
# (e.g. a many-core server): thread scaling of the FP32 ResNet20 training step
# and the integer conv kernels, synthetic data.
#
#   scripts/device_bench.sh bundle        # here: copy the header-only deps
#                                         # (Eigen, xsimd) into .deps/ (ignored)
#   scripts/device_bench.sh run [OUTDIR]  # there: build with g++ and run
#
# `run` compiles the two benchmarks straight with g++ (no CMake, no peers:
# oneDNN/OpenBLAS/PyTorch are not on such a machine), then for every thread
# count in THREADS (default "1 2 4 8 16") runs them REPS times (default 5),
# thread counts interleaved within each repetition, threads pinned
# (OMP_PROC_BIND=close, OMP_PLACES=cores). Output: OUTDIR/resnet20_step.jsonl
# (one JSON line per run) and OUTDIR/qconv_t<threads>_r<rep>.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
deps=.deps

case "$mode" in
  bundle)
    for d in /usr/include/eigen3 /usr/include/xsimd; do
      [ -d "$d" ] || { echo "device_bench: $d not found (install libeigen3-dev libxsimd-dev)" >&2; exit 2; }
    done
    mkdir -p "$deps/include"
    cp -rL /usr/include/eigen3/Eigen /usr/include/eigen3/unsupported "$deps/include/"
    cp -rL /usr/include/xsimd "$deps/include/"
    du -sh "$deps"
    ;;
  run)
    out=${2:-${OUT:-out}}
    [ -d "$deps/include/Eigen" ] || { echo "device_bench: $deps/include missing: run 'bundle' first and carry $deps" >&2; exit 2; }
    mkdir -p "$out" build-device
    flags=(-std=c++17 -O3 -DNDEBUG -march=native -fopenmp -Iinclude -Ikernels/include
           -isystem "$deps/include")
    g++ "${flags[@]}" bench/train/resnet20_step.cpp -o build-device/resnet20_step
    g++ "${flags[@]}" -Ibench bench/qconv.cpp -o build-device/qconv
    lscpu | grep -E "Model name|^CPU\(s\)|Thread|Socket|NUMA node\(s\)" > "$out/machine.txt" || true
    for rep in $(seq "${REPS:-5}"); do
      for t in ${THREADS:-1 2 4 8 16}; do
        OMP_NUM_THREADS=$t OMP_PROC_BIND=close OMP_PLACES=cores \
          build-device/resnet20_step --threads "$t" --batch 128 --steps 20 --mode train \
          | grep '^{' >> "$out/resnet20_step.jsonl"
        OMP_NUM_THREADS=$t OMP_PROC_BIND=close OMP_PLACES=cores \
          build-device/qconv --filter conv/s --bits 2,4,8 --threads "$t" --batch 128 --reps 10 \
          > "$out/qconv_t${t}_r${rep}.csv"
      done
    done
    echo "device_bench: results in $out"
    ;;
  *)
    echo "usage: $0 bundle | run [OUTDIR]" >&2
    exit 2
    ;;
esac
