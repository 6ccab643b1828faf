#!/usr/bin/env bash
# Every header compiles on its own: a translation unit that includes only
# that header must build (-fsyntax-only), so no header relies on what another
# header happened to include before it. header_odr.sh includes every header
# together and cannot see this. Two headers at a time (xargs -P 2).
# (ARM headers are compiled by neon_qemu.sh with the cross compiler.)
# An umbrella header (nothing but comments, #pragma once and includes of
# other headers of this list, e.g. mixq/mixq.hpp) gets no translation unit of
# its own: it compiles alone when each header it includes does (checked here)
# and they compile together (header_odr.sh includes every header into one
# translation unit). Umbrellas are found by their content, so one that gains
# a line of code is checked again. Each costs as much as what it includes
# together (mixq/mixq.hpp: 7 CPU s, more than most headers).
set -euo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
{
  (cd "$src/include" && find mixq -name '*.hpp' | sort)
  (cd "$src/kernels/include" && find mixq -name '*.hpp' -not -path '*arm_neon*' | sort)
} > "$work/all.txt"
header_path() {
  if [[ -f "$src/include/$1" ]]; then echo "$src/include/$1"; else echo "$src/kernels/include/$1"; fi
}
# is_umbrella H: every line of H is blank, a // comment, #pragma once or an
# #include of a header in all.txt.
is_umbrella() {
  local line inc
  while IFS= read -r line; do
    [[ "$line" =~ ^[[:space:]]*$ || "$line" =~ ^[[:space:]]*// || "$line" == "#pragma once" ]] && continue
    [[ "$line" =~ ^#include[[:space:]]*[\"\<]([^\"\>]+)[\"\>][[:space:]]*$ ]] || return 1
    inc="${BASH_REMATCH[1]}"
    grep -qxF "$inc" "$work/all.txt" || return 1
  done < "$(header_path "$1")"
}
: > "$work/headers.txt"
: > "$work/umbrellas.txt"
while read -r h; do
  if is_umbrella "$h"; then echo "$h" >> "$work/umbrellas.txt"; else echo "$h" >> "$work/headers.txt"; fi
done < "$work/all.txt"
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
echo "header_self_contained: $n headers each compile alone; umbrella headers (only includes of those):" \
  $(cat "$work/umbrellas.txt")
