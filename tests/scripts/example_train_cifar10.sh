#!/usr/bin/env bash
# The training example as a user runs it: bad flags and bad data give exit
# code 2 and one line on stderr; a tiny run writes its files and report; a
# resume after the last epoch does no more work and reports the same model;
# a resume with other flags is refused.
set -uo pipefail
src="$1"; work="$2"
exe="$(dirname "$(dirname "$work")")/examples/mixq_train_cifar10"
if [[ ! -x "$exe" ]]; then echo "SKIPPED: $exe not built (MIXQ_BUILD_EXAMPLES=OFF)"; exit 77; fi
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$exe" --epochs banana 2>"$work/err1"; rc=$?
[[ $rc -eq 2 ]] || fail "bad value: exit $rc, expected 2"
[[ $(wc -l <"$work/err1") -eq 1 ]] || fail "bad value: expected one line, got: $(cat "$work/err1")"
grep -q "expected an integer" "$work/err1" || fail "bad value message: $(cat "$work/err1")"

"$exe" --no-such-flag 2>"$work/err2"; rc=$?
[[ $rc -eq 2 && $(wc -l <"$work/err2") -eq 1 ]] || fail "unknown flag: exit $rc, $(cat "$work/err2")"

mkdir -p "$work/empty"
"$exe" --data "$work/empty" --epochs 1 2>"$work/err3"; rc=$?
[[ $rc -eq 2 && $(wc -l <"$work/err3") -eq 1 ]] || fail "missing data: exit $rc, $(cat "$work/err3")"
grep -q "$work/empty" "$work/err3" || fail "missing data message does not name the directory"

# Real data from here on (skip visibly without it).
data="${MIXQ_DATA:-$src/../shared/datasets/cifar10}"
if [[ ! -e "$data/test_batch.bin.gz" && ! -e "$data/test_batch.bin" ]]; then
  echo "SKIPPED (rest): CIFAR-10 not found at $data"; exit 0
fi
args=(--data "$data" --depth 8 --epochs 1 --batch 32 --train-subset 128 --test-subset 64 --threads 1 --out "$work/run")
"$exe" "${args[@]}" >"$work/out1" 2>"$work/log1" || fail "tiny run failed: $(tail -3 "$work/log1")"
for f in metrics.csv checkpoint.mixq model.mixq report.json; do
  [[ -s "$work/run/$f" ]] || fail "missing $f"
done
[[ $(wc -l <"$work/run/metrics.csv") -eq 2 ]] || fail "metrics.csv should have a header and 1 row"
grep -q "test accuracy" "$work/out1" || fail "no report printed"
grep -q "epoch 1/1" "$work/log1" || fail "no progress line"

"$exe" "${args[@]}" --resume >"$work/out2" 2>"$work/log2" || fail "resume failed: $(tail -3 "$work/log2")"
grep -q "0 run now, from epoch 1" "$work/out2" || fail "resume after the last epoch trained again: $(cat "$work/out2")"
cmp -s <(grep "test accuracy" "$work/out1") <(grep "test accuracy" "$work/out2") || fail "resumed model differs"

"$exe" "${args[@]}" --resume --lr 0.2 2>"$work/err4"; rc=$?
[[ $rc -eq 2 ]] || fail "resume with other flags: exit $rc, expected 2"
grep -q "configuration" "$work/err4" || fail "resume refusal message: $(cat "$work/err4")"
echo "example_train_cifar10: all checks passed"
