#!/usr/bin/env bash
# Runs one deploy model over the whole CIFAR-10 test set with every kernel
# ISA this machine can run (scalar, AVX2, AVX-512; MIXQ_ISA) and, when the
# aarch64 cross compiler and qemu are present, with the NEON kernels (plain
# and dotprod) under qemu-aarch64, and checks that every run gives the same
# int32 logits (FNV-1a hash) and so the same accuracy.
#   bash scripts/isa_agreement.sh MODEL.mqd [CIFAR10_DIR] [BUILD_DIR]
# Writes its work files to $BUILD_DIR/isa_agreement/. Exit 0 when all agree.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?model file (.mqd)}"
data="${2:-${MIXQ_DATA:-$root/../shared/datasets/cifar10}}"
build="${3:-$root/build}"
work="$build/isa_agreement"
mkdir -p "$work"
cmake --build "$build" --target mixq_raw_hash >/dev/null
python3 - "$data" "$work" <<'PY'
import gzip, os, sys
data, work = sys.argv[1], sys.argv[2]
p = os.path.join(data, "test_batch.bin")
raw = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz", "rb").read()
assert len(raw) == 10000 * 3073, f"{p}: {len(raw)} bytes, expected 30730000"
img, lab = bytearray(10000 * 3072), bytearray(10000)
for i in range(10000):
    r = raw[i * 3073:(i + 1) * 3073]
    lab[i] = r[0]
    planes = r[1:]
    o = i * 3072
    for c in range(3):   # CHW planes -> HWC
        img[o + c:o + 3072:3] = planes[c * 1024:(c + 1) * 1024]
open(os.path.join(work, "images.u8"), "wb").write(img)
open(os.path.join(work, "labels.u8"), "wb").write(lab)
PY
results=()
for isa in scalar avx2 avx512; do
  line="$(MIXQ_ISA=$isa "$build/examples/mixq_raw_hash" "$model" "$work/images.u8" "$work/labels.u8")"
  echo "host  MIXQ_ISA=$isa: $line"
  results+=("$line")
done
CXX="${MIXQ_AARCH64_CXX:-aarch64-linux-gnu-g++}"
QEMU="${MIXQ_QEMU_AARCH64:-qemu-aarch64}"
if command -v "$CXX" >/dev/null && command -v "$QEMU" >/dev/null; then
  mkdir -p "$work/inc/mixq"
  kernels="$root/kernels/include/mixq/kernels"
  ln -sfn "$kernels" "$work/inc/mixq/kernels"
  for h in deploy util; do ln -sfn "$root/include/mixq/$h" "$work/inc/mixq/$h"; done
  for h in error.hpp version.hpp; do ln -sfn "$root/include/mixq/$h" "$work/inc/mixq/$h"; done
  for march in armv8.2-a+dotprod armv8-a; do
    exe="$work/raw_hash_${march//[^a-z0-9]/_}"
    "$CXX" -std=c++17 -O2 -static -pthread -march="$march" -I"$work/inc" \
      "$root/examples/evaluate/raw_hash.cpp" -o "$exe"
    line="$("$QEMU" -cpu max "$exe" "$model" "$work/images.u8" "$work/labels.u8")"
    echo "qemu  -march=$march: $line"
    results+=("$line")
  done
else
  echo "aarch64 cross compiler or qemu missing: NEON not checked"
fi
ref="${results[0]##*FNV-1a }"
for r in "${results[@]}"; do
  [[ "${r##*FNV-1a }" == "$ref" ]] || { echo "FAIL: logits differ between ISAs"; exit 1; }
done
echo "all ${#results[@]} runs agree: logits FNV-1a $ref"
