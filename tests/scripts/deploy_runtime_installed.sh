#!/usr/bin/env bash
# Installs mixq into a temporary prefix and builds a separate project that
# uses only the deploy runtime: find_package(mixq COMPONENTS runtime) with
# Eigen3, xsimd, ZLIB and OpenMP made unfindable, linking mixq::runtime; the
# program builds a small model, serializes it, loads it from memory and runs it.
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DMIXQ_BUILD_TESTS=OFF -DMIXQ_BUILD_EXAMPLES=OFF \
      -DMIXQ_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/build" >/dev/null
mkdir -p "$work/consumer"
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(runtime_consumer CXX)
find_package(mixq 0.1 REQUIRED COMPONENTS runtime)
if(TARGET mixq::mixq)
  message(FATAL_ERROR "the runtime component also loaded mixq::mixq")
endif()
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE mixq::runtime)
CM
cat > "$work/consumer/main.cpp" <<'CPP'
#include <mixq/deploy/runtime.hpp>
#include <mixq/deploy/synthetic.hpp>
#include <cstdio>
#include <vector>
int main() {
  mixq::deploy::synthetic_resnet_options o;
  o.n = 1;
  const auto bytes = mixq::deploy::serialize(mixq::deploy::synthetic_resnet(o));
  auto rt = mixq::deploy::runtime::from_memory(bytes.data(), bytes.size());
  std::vector<unsigned char> img(32 * 32 * 3, 128);
  std::int32_t c = -1;
  rt.classify(img.data(), 1, &c);
  std::printf("runtime-only consumer: %zu-byte model, class %d\n", bytes.size(), c);
  return c >= 0 && c < 10 ? 0 : 1;
}
CPP
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON -DCMAKE_DISABLE_FIND_PACKAGE_xsimd=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
      --no-warn-unused-cli >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer"
