#!/usr/bin/env bash
# The training example as a user runs it: bad flags and bad data give exit
# code 2 and one line on stderr, before any data is read; a tiny run writes
# its files and a valid JSON report; a resume after the last epoch does no
# more work and reports the same model; a resume with other flags or other
# data is refused; a report that cannot be written is an error.
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

# Hostile flags: each refused with exit code 2 and one line naming the flag.
one_line_2() {  # expected-text, then the command
  local want="$1"; shift
  "$@" 2>"$work/err_h" >/dev/null; local rc=$?
  [[ $rc -eq 2 ]] || fail "$*: exit $rc, expected 2"
  [[ $(wc -l <"$work/err_h") -eq 1 ]] || fail "$*: expected one line, got: $(cat "$work/err_h")"
  grep -qF -- "$want" "$work/err_h" || fail "$*: message lacks '$want': $(cat "$work/err_h")"
}
one_line_2 "--threads" "$exe" --threads 100000
one_line_2 "--threads" "$exe" --threads -1
one_line_2 "--threads" "$exe" --threads 4294967298
one_line_2 "--out: empty" "$exe" --out ""
one_line_2 "--milestones" "$exe" --schedule step --milestones abc
one_line_2 "--warmup" "$exe" --warmup nan
one_line_2 "--warmup" "$exe" --warmup 1e30
one_line_2 "--batch" "$exe" --batch 9223372036854775807
one_line_2 "--lr" "$exe" --lr nan
one_line_2 "OMP_NUM_THREADS=100000" env OMP_NUM_THREADS=100000 "$exe" --epochs 1

# A FIFO named like a data file is refused at once (it used to hang forever).
mkdir -p "$work/fifo"
mkfifo "$work/fifo/data_batch_1.bin"
touch "$work/fifo/test_batch.bin"
one_line_2 "is a FIFO" timeout 60 "$exe" --data "$work/fifo" --epochs 1 --test-subset 1 --train-subset 1

mkdir -p "$work/empty"
"$exe" --data "$work/empty" --epochs 1 2>"$work/err3"; rc=$?
[[ $rc -eq 2 && $(wc -l <"$work/err3") -eq 1 ]] || fail "missing data: exit $rc, $(cat "$work/err3")"
grep -q "$work/empty" "$work/err3" || fail "missing data message does not name the directory"

# Real data from here on (skip visibly without it).
data="${MIXQ_DATA:-$src/../shared/datasets/cifar10}"
if [[ ! -e "$data/test_batch.bin.gz" && ! -e "$data/test_batch.bin" ]]; then
  echo "SKIPPED (rest): CIFAR-10 not found at $data"; exit 0
fi
base=(--depth 8 --epochs 1 --batch 32 --train-subset 128 --test-subset 64 --threads 1)
args=(--data "$data" "${base[@]}" --out "$work/run")
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

# The report is JSON, whatever the output directory is called.
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["epochs"] == 1' \
  "$work/run/report.json" || fail "report.json is not the expected JSON"
odd="$work/odd \"quoted\" \\ dir"
"$exe" --data "$data" "${base[@]}" --out "$odd" >/dev/null 2>"$work/log5" || fail "odd --out failed: $(tail -2 "$work/log5")"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert sys.argv[2] in r["command"]' \
  "$odd/report.json" "$odd" || fail "report.json with a quoted --out is not valid JSON"

# Resuming against other data (one pixel changed) is refused.
mkdir -p "$work/other"
ln -s "$data/test_batch.bin.gz" "$work/other/test_batch.bin.gz" 2>/dev/null || ln -s "$data/test_batch.bin" "$work/other/test_batch.bin"
if [[ -e "$data/data_batch_1.bin" ]]; then cp "$data/data_batch_1.bin" "$work/other/"; else gzip -dc "$data/data_batch_1.bin.gz" >"$work/other/data_batch_1.bin"; fi
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[100]^=0xff; open(p,"wb").write(b)' \
  "$work/other/data_batch_1.bin"
"$exe" "${base[@]}" --out "$work/run" --data "$work/other" --resume 2>"$work/err6"; rc=$?
[[ $rc -eq 2 ]] || fail "resume with other data: exit $rc, expected 2"
grep -q "data-crc32" "$work/err6" || fail "other-data refusal message: $(cat "$work/err6")"

# A report that cannot be written is an error (exit 2), not a silent loss.
mkdir -p "$work/run2/report.json"
"$exe" --data "$data" "${base[@]}" --out "$work/run2" >/dev/null 2>"$work/err7"; rc=$?
[[ $rc -eq 2 ]] || fail "unwritable report.json: exit $rc, expected 2"
grep -q "report.json" "$work/err7" || fail "unwritable report message: $(cat "$work/err7")"
echo "example_train_cifar10: all checks passed"
