#!/usr/bin/env bash
# Quick start: installs what is missing, builds (Release) and runs the main
# job: a short AdaQAT fine-tune of the shipped FP32 ResNet20
# (models/fp32_resnet20.mixq) on CIFAR-10 that learns its bit-widths, exports
# the integer model, runs it on the test set and ends in a report (test
# accuracy of the integer model, its agreement with the fake-quant model,
# bits and BitOPs per layer, model bytes, latency).
#   MIXQ_DATA=/path/to/cifar10 bash scripts/quickstart.sh [extra train flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install_deps.sh"
build="${MIXQ_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target mixq_train_cifar10
export OMP_PROC_BIND="${OMP_PROC_BIND:-true}"
exec "$build/examples/mixq_train_cifar10" --method adaqat --init "$root/models/fp32_resnet20.mixq" \
     --epochs 1 --train-subset 10000 --lr 0.01 --wd 1e-4 --warmup 0 --bits-init 6 --bits-lr 0.2 \
     --out "$root/runs/quickstart" "$@"
