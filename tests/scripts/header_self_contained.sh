#!/usr/bin/env bash
# Every header compiles on its own: a translation unit that includes only
# that header must build (-fsyntax-only), so no header relies on what another
# header happened to include before it. header_odr.sh includes every header
# together and cannot see this. Two headers at a time (xargs -P 2).
# (ARM headers are compiled by neon_qemu.sh with the cross compiler.)
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
{
  (cd "$src/include" && find mixq -name '*.hpp' | sort)
  (cd "$src/kernels/include" && find mixq -name '*.hpp' -not -path '*arm_neon*' | sort)
} > "$work/headers.txt"
check_one() {
  local h="$1" src="$2" work="$3"
  local tu="$work/$(echo "$h" | tr '/.' '__').cpp"
  printf '#include <%s>\n' "$h" > "$tu"
  if ! g++ -std=c++17 -fsyntax-only -fopenmp -I "$src/include" -I "$src/kernels/include" \
       -I /usr/include/eigen3 "$tu" 2> "$tu.log"; then
    echo "header_self_contained: <$h> does not compile on its own:" >&2
    head -5 "$tu.log" >&2
    return 1
  fi
}
export -f check_one
n=$(wc -l < "$work/headers.txt")
xargs -P 2 -I{} bash -c 'check_one "$@"' _ {} "$src" "$work" < "$work/headers.txt"
echo "header_self_contained: $n headers each compile alone"
