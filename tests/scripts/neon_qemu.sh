#!/usr/bin/env bash
# Cross-compiles the qgemm kernel tests for aarch64 twice (armv8.2-a+dotprod:
# sdot + smlal + scalar kernels; armv8-a: smlal + scalar) and runs them under
# qemu-aarch64 -cpu max. Exit 77 (skipped) when the cross compiler or qemu is
# missing.
# When the host is x86-64 and qemu-x86_64 exists, it also builds the same tests
# for the host without any -march flag and runs them under qemu-x86_64 with
# -cpu Haswell (AVX2, no AVX-512) and -cpu Nehalem (no AVX2): the run-time
# dispatch must skip the missing ISAs visibly and never raise SIGILL.
# Cost (the compiles are nearly all of it; qemu runs about 5 CPU s a build):
# each build is one translation unit that includes every test file (a unity
# build: the kernel and doctest headers are parsed once, not once a file), and
# the armv8-a build is -O1: the smlal and scalar kernels it runs are also run,
# at -O2, by the dotprod build (every kernel the CPU has is tested, not only
# the one dispatch picks), so it adds the no-dotprod compile and dispatch, not
# kernel paths. The x86 build is -O1. File-local helpers of two test files
# that share a name fail the unity build: give one of them another name.
#   usage: neon_qemu.sh <source_dir> <work_dir>
set -u
src=${1:?source dir}
work=${2:?work dir}
CXX=${MIXQ_AARCH64_CXX:-aarch64-linux-gnu-g++}
QEMU=${MIXQ_QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "SKIPPED: cross compiler $CXX not found (apt-get install g++-aarch64-linux-gnu)"
  exit 77
fi
if ! command -v "$QEMU" >/dev/null 2>&1; then
  echo "SKIPPED: $QEMU not found (apt-get install qemu-user)"
  exit 77
fi
if [ ! -f /usr/include/doctest/doctest.h ]; then
  echo "SKIPPED: /usr/include/doctest/doctest.h not found"
  exit 77
fi
mkdir -p "$work/inc"
# Only doctest and mixq's own headers go on the cross include path, never host
# /usr/include (the kernels and what they include need nothing else).
ln -sfn /usr/include/doctest "$work/inc/doctest"
inc=(-I"$work/inc" -I"$src/kernels/include" -I"$src/include")
tests=("$src"/tests/kernels/test_qgemm*.cpp "$src"/tests/kernels/test_requant*.cpp
       "$src"/tests/kernels/test_pack*.cpp "$src"/tests/kernels/test_dispatch*.cpp
       "$src"/tests/kernels/test_conv*.cpp "$src"/tests/kernels/test_pool*.cpp)
unity="$work/kernels_unity.cpp"
printf '#include "%s"\n' "$src/tests/main.cpp" "${tests[@]}" > "$unity"
status=0
for march in armv8.2-a+dotprod armv8-a; do
  exe="$work/kernels_${march//[^a-z0-9]/_}"
  opt=-O2
  [ "$march" = armv8-a ] && opt=-O1
  echo "== building for -march=$march ($opt)"
  if ! "$CXX" -std=c++17 "$opt" -static -march="$march" -Wall -Wextra -Wno-unused-parameter \
      "${inc[@]}" "$unity" -o "$exe"; then
    echo "FAILED: cross build for $march"
    status=1
    continue
  fi
  echo "== running under $QEMU -cpu max ($march)"
  if ! "$QEMU" -cpu max "$exe" 2>&1 | tee "$exe.log" | grep -E "MESSAGE|ERROR|FAIL|\[doctest\] (test cases|assertions|Status)"; then
    status=1
  fi
  if ! grep -q "Status: SUCCESS" "$exe.log"; then
    echo "FAILED: tests under qemu for $march"
    status=1
  fi
done
QEMU_X86=${MIXQ_QEMU_X86_64:-qemu-x86_64}
if [ "$(uname -m)" = x86_64 ] && command -v "$QEMU_X86" >/dev/null 2>&1 && command -v "${CXX_HOST:-g++}" >/dev/null 2>&1; then
  exe="$work/kernels_x86_baseline"
  echo "== building x86-64 baseline (no -march) for CPU emulation"
  if "${CXX_HOST:-g++}" -std=c++17 -O1 -I"$src/kernels/include" -I"$src/include" "$unity" -o "$exe"; then
    for cpu in Haswell Nehalem; do
      echo "== running under $QEMU_X86 -cpu $cpu"
      "$QEMU_X86" -cpu "$cpu" "$exe" > "$exe.$cpu.log" 2>&1
      rc=$?
      grep -E "SKIPPED kernel|bit pairs checked|\[doctest\] (test cases|Status)" "$exe.$cpu.log" |
        sed 's/^.*MESSAGE: //' | sort | uniq -c
      if [ $rc -ne 0 ] || ! grep -q "Status: SUCCESS" "$exe.$cpu.log"; then
        echo "FAILED: kernel tests under -cpu $cpu (exit $rc)"
        status=1
      fi
    done
  else
    echo "FAILED: host build for CPU emulation"
    status=1
  fi
else
  echo "note: x86 CPU emulation stage skipped (not x86-64 or $QEMU_X86 missing)"
fi
exit $status
