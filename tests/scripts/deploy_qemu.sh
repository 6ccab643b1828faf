#!/usr/bin/env bash
# Cross-compiles the deploy runtime tests (tests/deploy: random models against
# the int64 reference, bad model files) for aarch64 twice (armv8.2-a+dotprod:
# sdot kernels; armv8-a: smlal kernels) with only the runtime's headers on the
# include path (include/mixq/deploy, the kernels, mixq/error.hpp, mixq/util) and runs
# them under qemu-aarch64 -cpu max. Exit 77 (skipped) when the cross compiler,
# qemu or doctest is missing.
# Cost (the compiles are nearly all of it; qemu runs 3 to 5 CPU s a build):
# each build is one translation unit that includes every test file (a unity
# build: the runtime, kernel and doctest headers are parsed once, not once a
# file), and the armv8-a build is -O1: the runtime tests run every ISA the CPU
# has, so the dotprod build (-O2) already checks the smlal path bit-exact
# against the reference; the armv8-a build adds the runtime compiled without
# dotprod and its automatic choice. File-local helpers of two test files that
# share a name fail the unity build: give one of them another name.
#   usage: deploy_qemu.sh <source_dir> <work_dir>
set -u
src=${1:?source dir}
work=${2:?work dir}
CXX=${MIXQ_AARCH64_CXX:-aarch64-linux-gnu-g++}
QEMU=${MIXQ_QEMU_AARCH64:-qemu-aarch64}
for tool in "$CXX" "$QEMU"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: $tool not found (apt-get install g++-aarch64-linux-gnu qemu-user)"
    exit 77
  fi
done
if [ ! -f /usr/include/doctest/doctest.h ]; then
  echo "SKIPPED: /usr/include/doctest/doctest.h not found"
  exit 77
fi
kernels="$src/kernels"
[ -d "$src/kernels/include/mixq/kernels" ] && kernels="$src/kernels/include/mixq/kernels"
mkdir -p "$work/inc/mixq"
ln -sfn /usr/include/doctest "$work/inc/doctest"
ln -sfn "$kernels" "$work/inc/mixq/kernels"
ln -sfn "$src/include/mixq/deploy" "$work/inc/mixq/deploy"
ln -sfn "$src/include/mixq/error.hpp" "$work/inc/mixq/error.hpp"
ln -sfn "$src/include/mixq/version.hpp" "$work/inc/mixq/version.hpp"
[ -d "$src/include/mixq/util" ] && ln -sfn "$src/include/mixq/util" "$work/inc/mixq/util"
unity="$work/deploy_unity.cpp"
printf '#include "%s"\n' "$src/tests/main.cpp" "$src"/tests/deploy/*.cpp > "$unity"
status=0
for march in armv8.2-a+dotprod armv8-a; do
  exe="$work/deploy_${march//[^a-z0-9]/_}"
  opt=-O2
  [ "$march" = armv8-a ] && opt=-O1
  echo "== building the deploy tests for -march=$march ($opt)"
  if ! "$CXX" -std=c++17 "$opt" -static -pthread -march="$march" -Wall -Wextra -Wno-unused-parameter \
      -I"$work/inc" "$unity" -o "$exe"; then
    echo "FAILED: cross build for $march"
    status=1
    continue
  fi
  echo "== running under $QEMU -cpu max ($march)"
  "$QEMU" -cpu max "$exe" > "$exe.log" 2>&1
  grep -E "SKIPPED|ERROR|FAIL|\[doctest\] (test cases|assertions|Status)" "$exe.log" | sed 's/^.*MESSAGE: //' | sort | uniq -c
  if ! grep -q "Status: SUCCESS" "$exe.log"; then
    echo "FAILED: deploy tests under qemu for $march"
    status=1
  fi
done
exit $status
