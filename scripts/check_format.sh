#!/usr/bin/env bash
# Checks that every C++ file of the project (*.hpp, *.cpp, *.inc, as tracked
# by git, or found under the source folders outside a git checkout) is
# formatted as the repository's .clang-format says. Exit 0 when all are,
# 1 (with clang-format's report) when one is not, 2 when clang-format is
# missing. Run by scripts/test.sh before the build.
#   scripts/check_format.sh          check
#   scripts/check_format.sh --fix    reformat the files in place
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fmt=${CLANG_FORMAT:-clang-format}
if ! command -v "$fmt" >/dev/null 2>&1; then
  echo "check_format: $fmt not found (apt-get install clang-format)" >&2
  exit 2
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.hpp' '*.cpp' '*.inc')
else
  mapfile -t files < <(find include kernels tests bench examples \
                         \( -name '*.hpp' -o -name '*.cpp' -o -name '*.inc' \) | sort)
fi
if [[ "${1:-}" == "--fix" ]]; then
  "$fmt" -i --style=file "${files[@]}"
  echo "check_format: reformatted ${#files[@]} files"
  exit 0
fi
if ! "$fmt" --dry-run -Werror --style=file "${files[@]}"; then
  echo "check_format: files above differ from .clang-format ($("$fmt" --version));" \
       "fix with scripts/check_format.sh --fix" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files match .clang-format"
