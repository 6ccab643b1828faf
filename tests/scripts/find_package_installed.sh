#!/usr/bin/env bash
# Installs mixq into a temporary prefix and builds a separate project that
# uses it through find_package(mixq) and through pkg-config's mixq.pc.
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DMIXQ_BUILD_TESTS=OFF -DMIXQ_BUILD_EXAMPLES=OFF \
      -DMIXQ_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/build" >/dev/null
test -f "$work/prefix/share/cmake/mixq/mixqConfig.cmake"
test -f "$work/prefix/share/cmake/mixq/mixqConfigVersion.cmake"
test -f "$work/prefix/share/pkgconfig/mixq.pc"
mkdir -p "$work/consumer"
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
find_package(mixq 0.1 REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE mixq::mixq)
CM
cat > "$work/consumer/main.cpp" <<'CPP'
#include <mixq/mixq.hpp>
#include <cstdio>
int main() {
  std::printf("mixq %d.%d.%d\n", mixq::version_major, mixq::version_minor, mixq::version_patch);
  return mixq::version_major == MIXQ_VERSION_MAJOR ? 0 : 1;
}
CPP
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer"
