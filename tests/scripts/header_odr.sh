#!/usr/bin/env bash
# Every header of the library and the kernels is included into two
# translation units that are linked into one program. A non-inline function
# or variable defined in a header then fails to link (multiple definition),
# which is what would happen to a user who includes mixq from two files.
# Built without -march=native, as a user's baseline build would be.
# (ARM headers are compiled by neon_qemu.sh with the cross compiler.)
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
{
  echo "// generated: includes every public header"
  (cd "$src/include" && find mixq -name '*.hpp' | sort | sed 's|.*|#include <&>|')
  (cd "$src/kernels/include" && find mixq -name '*.hpp' -not -path '*arm_neon*' | sort | sed 's|.*|#include <&>|')
} > "$work/all.hpp"
n=$(grep -c '#include' "$work/all.hpp")
printf '#include "all.hpp"\nint tu_a() { return 1; }\n' > "$work/a.cpp"
printf '#include "all.hpp"\nint tu_a();\nint main() { return tu_a() == 1 ? 0 : 1; }\n' > "$work/b.cpp"
flags=(-std=c++17 -O0 -fopenmp -I "$src/include" -I "$src/kernels/include" -I /usr/include/eigen3)
g++ "${flags[@]}" -c "$work/a.cpp" -o "$work/a.o"
g++ "${flags[@]}" -c "$work/b.cpp" -o "$work/b.o"
g++ -fopenmp "$work/a.o" "$work/b.o" -o "$work/odr" -lz -lpthread
"$work/odr"
echo "header_odr: $n headers included from two translation units, linked and ran"
