#!/usr/bin/env bash
# Quick start: installs what is missing, builds (Release) and runs the main
# job: a short FP32 ResNet20 run on CIFAR-10 that ends in a report.
#   MIXQ_DATA=/path/to/cifar10 bash scripts/quickstart.sh [extra train flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
build="${MIXQ_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target mixq_train_cifar10
export OMP_PROC_BIND="${OMP_PROC_BIND:-true}"
exec "$build/examples/mixq_train_cifar10" --depth 20 --epochs 2 --train-subset 10000 \
     --out "$root/runs/quickstart" "$@"
