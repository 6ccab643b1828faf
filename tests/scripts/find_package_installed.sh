#!/usr/bin/env bash
# Installs mixq into a temporary prefix and builds three separate projects
# that use it through find_package(mixq): one links mixq::mixq; one links
# mixq::kernels alone (find_package(mixq COMPONENTS kernels)) with Eigen,
# xsimd, zlib and OpenMP made unfindable, which proves the kernels need none
# of them; one links the deploy runtime alone (COMPONENTS runtime, the same
# dependencies unfindable) and runs a model from memory. Also checks that
# pkg-config's mixq.pc is installed.
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

# The kernels alone: no dependency may be searched for, none is linked.
mkdir -p "$work/kernels_consumer"
cat > "$work/kernels_consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(kernels_consumer CXX)
foreach(dep Eigen3 xsimd ZLIB OpenMP Threads)
  set(CMAKE_DISABLE_FIND_PACKAGE_${dep} TRUE)
endforeach()
find_package(mixq 0.1 REQUIRED COMPONENTS kernels)
if(TARGET mixq::mixq)
  message(FATAL_ERROR "COMPONENTS kernels also loaded mixq::mixq")
endif()
get_target_property(_deps mixq::kernels INTERFACE_LINK_LIBRARIES)
if(_deps)
  message(FATAL_ERROR "mixq::kernels links ${_deps}")
endif()
add_executable(kernels_consumer main.cpp)
target_link_libraries(kernels_consumer PRIVATE mixq::kernels)
CM
cat > "$work/kernels_consumer/main.cpp" <<'CPP'
// 2 x 3 GEMM, K = 4, W4A4 on whatever kernel the CPU dispatches to.
#include <mixq/kernels/qgemm.hpp>
#include <cstdint>
#include <cstdio>
#include <vector>
namespace mk = mixq::kernels;
int main() {
  const std::int8_t w[3 * 4] = {1, -2, 3, -4, 7, 7, 7, 7, -8, 0, 0, 1};
  std::vector<std::uint8_t> a(2 * 4 + mk::a_overread_bytes, 0);
  const std::uint8_t rows[2 * 4] = {1, 2, 3, 4, 15, 0, 15, 0};
  for (int i = 0; i < 8; ++i) a[i] = rows[i];
  const mk::packed_weights pw = mk::pack_weights(w, 3, 1, 4, 4, 4);
  const std::int64_t pix[2] = {0, 4};
  mk::qgemm_problem p;
  p.m = 2;
  p.a = a.data();
  p.pix_off = pix;
  std::int32_t out[2 * 3] = {};
  mk::epilogue ep;
  ep.out_i32 = out;
  ep.ld_i32 = 3;
  mk::qgemm(p, pw, ep);
  const std::int32_t want[2 * 3] = {-10, 70, -4, 60, 210, -120};
  for (int i = 0; i < 6; ++i)
    if (out[i] != want[i]) return 1;
  std::printf("%s\n", mk::last_used_kernel().c_str());
  return 0;
}
CPP
cmake -S "$work/kernels_consumer" -B "$work/kernels_consumer/build" \
      -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/kernels_consumer/build" >/dev/null
"$work/kernels_consumer/build/kernels_consumer"

# The deploy runtime alone: Threads only (OpenMP only when mixq was built with
# MIXQ_RUNTIME_OPENMP, off here).
mkdir -p "$work/runtime_consumer"
cat > "$work/runtime_consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(runtime_consumer CXX)
foreach(dep Eigen3 xsimd ZLIB OpenMP)
  set(CMAKE_DISABLE_FIND_PACKAGE_${dep} TRUE)
endforeach()
find_package(mixq 0.1 REQUIRED COMPONENTS runtime)
if(TARGET mixq::mixq)
  message(FATAL_ERROR "COMPONENTS runtime also loaded mixq::mixq")
endif()
add_executable(runtime_consumer main.cpp)
target_link_libraries(runtime_consumer PRIVATE mixq::runtime)
CM
cat > "$work/runtime_consumer/main.cpp" <<'CPP'
// A random-weight ResNet8 model file made in memory, loaded and run.
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
  std::printf("runtime: %zu-byte model, class %d\n", bytes.size(), c);
  return c >= 0 && c < 10 ? 0 : 1;
}
CPP
cmake -S "$work/runtime_consumer" -B "$work/runtime_consumer/build" \
      -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/runtime_consumer/build" >/dev/null
"$work/runtime_consumer/build/runtime_consumer"
