#!/usr/bin/env bash
# The deploy examples (mixq_export, mixq_classify, mixq_evaluate) as a hostile
# user runs them: every bad flag, and a FIFO, directory or device in place of
# a model file, gives exit code 2 and one line on stderr, at once; export's
# --name must be a C identifier and its header comment cannot be broken out of.
set -uo pipefail
src="$1"; work="$2"
bin="$(dirname "$(dirname "$work")")/examples"
for p in mixq_export mixq_classify mixq_evaluate; do
  if [[ ! -x "$bin/$p" ]]; then echo "SKIPPED: $bin/$p not built (MIXQ_BUILD_EXAMPLES=OFF)"; exit 77; fi
done
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
one_line_2() {  # expected-text, then the command
  local want="$1"; shift
  timeout 60 "$@" 2>"$work/err" >/dev/null; local rc=$?
  [[ $rc -eq 2 ]] || fail "$*: exit $rc, expected 2 ($(cat "$work/err"))"
  [[ $(wc -l <"$work/err") -eq 1 ]] || fail "$*: expected one line, got: $(cat "$work/err")"
  grep -qF -- "$want" "$work/err" || fail "$*: message lacks '$want': $(cat "$work/err")"
}
"$bin/mixq_export" --random resnet8 --bits w4a4 --out "$work/m.mqd" >/dev/null \
  || fail "export of a random ResNet8 failed"
mkfifo "$work/pipe.mqd"; mkdir "$work/dir.mqd"

one_line_2 "--bits" "$bin/mixq_export" --random resnet8 --bits w9a4 --out "$work/x.mqd"
one_line_2 "--first-last-bits" "$bin/mixq_export" --random resnet8 --first-last-bits 1 --out "$work/x.mqd"
one_line_2 "--seed" "$bin/mixq_export" --random resnet8 --seed -1 --out "$work/x.mqd"
one_line_2 "expected a C identifier" "$bin/mixq_export" --model "$work/m.mqd" --header "$work/m.h" --name 'a b'
one_line_2 "--out: empty" "$bin/mixq_export" --model "$work/m.mqd" --out ""
one_line_2 "is not a regular file" "$bin/mixq_export" --model "$work/pipe.mqd" --out "$work/y.mqd"
one_line_2 "is not a regular file" "$bin/mixq_export" --model /dev/zero --out "$work/y.mqd"
one_line_2 "--threads" "$bin/mixq_classify" --model "$work/m.mqd" --threads 100000 x.png
one_line_2 "--repeat" "$bin/mixq_classify" --model "$work/m.mqd" --repeat 0 x.png
one_line_2 "--model is required" "$bin/mixq_classify" x.png
one_line_2 "images is required" "$bin/mixq_classify" --model "$work/m.mqd"
one_line_2 "is not a regular file" "$bin/mixq_classify" --model "$work/dir.mqd" x.png
one_line_2 "is not a regular file" "$bin/mixq_classify" --model "$work/pipe.mqd" x.png
one_line_2 "is a FIFO" "$bin/mixq_classify" --model "$work/m.mqd" "$work/pipe.mqd"
one_line_2 "--batch" "$bin/mixq_evaluate" --model "$work/m.mqd" --batch 0
one_line_2 "--threads" "$bin/mixq_evaluate" --model "$work/m.mqd" --threads 4294967298
one_line_2 "--max-images" "$bin/mixq_evaluate" --model "$work/m.mqd" --max-images -1
one_line_2 "--predictions: empty" "$bin/mixq_evaluate" --model "$work/m.mqd" --predictions ""
one_line_2 "is not a regular file" "$bin/mixq_evaluate" --model "$work/pipe.mqd"
one_line_2 "is one model, not a bundle" "$bin/mixq_evaluate" --model "$work/m.mqd" --config W4A4

# The header's comment holds the command line; a "*/" in it must not end the
# comment (the header must still compile).
odd="$work/odd*/x.h"; mkdir -p "$work/odd*"
"$bin/mixq_export" --model "$work/m.mqd" --header "$odd" --name net >/dev/null || fail "export to $odd failed"
printf '#include "%s"\nint main(void) { return net[0] == 0x4d ? 0 : 1; }\n' "$odd" >"$work/use.c"
if command -v cc >/dev/null; then
  cc -std=c11 -c "$work/use.c" -o "$work/use.o" || fail "the header with '*/' in its comment does not compile"
fi
echo "example_deploy_flags: all checks passed"
