#!/usr/bin/env bash
# The MultiQuant example as a user runs it, on a tiny CIFAR-10 subset:
# bad flags give one line on stderr and exit code 2; a run of every stage
# writes the metrics, the uniform slices, the search table, the chosen
# configuration (and its deploy model), the frontier, the report and the
# bundle of every exported configuration (run by switching, each equal to its
# own model file); a
# training run stopped after epoch 1 and resumed ends bit-identical to the
# straight run; later stages on a saved supernet refuse other supernet flags
# and another held-out split.
set -uo pipefail
src="$1"; work="$2"
exe="$(dirname "$(dirname "$work")")/examples/mixq_multiquant_cifar10"
if [[ ! -x "$exe" ]]; then echo "SKIPPED: $exe not built (MIXQ_BUILD_EXAMPLES=OFF)"; exit 77; fi
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
one_line_exit2() {  # name, then the command
  local name="$1"; shift
  "$@" 2>"$work/err_$name" >/dev/null; local rc=$?
  [[ $rc -eq 2 ]] || fail "$name: exit $rc, expected 2"
  [[ $(wc -l <"$work/err_$name") -eq 1 ]] || fail "$name: expected one line, got: $(cat "$work/err_$name")"
}

one_line_exit2 bits "$exe" --bits 1-8
grep -q "outside \[2, 8\]" "$work/err_bits" || fail "bits message: $(cat "$work/err_bits")"
one_line_exit2 labels "$exe" --labels soft
one_line_exit2 sampling "$exe" --sampling all
one_line_exit2 prior "$exe" --prior gauss
one_line_exit2 stage "$exe" --stages train,deploy
one_line_exit2 budgets "$exe" --budgets 3,x
one_line_exit2 population "$exe" --population 1
one_line_exit2 bn_by "$exe" --per-bit-bn-by act
grep -q "needs\|which is off" "$work/err_bn_by" || fail "bn_by message: $(cat "$work/err_bn_by")"
one_line_exit2 bn_by_value "$exe" --per-bit-bn --per-bit-bn-by bits

data="${MIXQ_DATA:-$src/../shared/datasets/cifar10}"
if [[ ! -e "$data/test_batch.bin.gz" && ! -e "$data/test_batch.bin" ]]; then
  echo "SKIPPED (rest): CIFAR-10 not found at $data"; exit 0
fi
common=(--data "$data" --depth 8 --epochs 2 --batch 32 --train-subset 160 --val-images 40
        --test-subset 64 --calib-images 32 --search-calib-images 32 --threads 1 --eval-every 2)
search=(--population 4 --generations 1 --budgets 3 --mc-samples 1000)
rows() { cut -d, -f1-6,9- "$1"; }  # csv rows without the timing columns

"$exe" "${common[@]}" "${search[@]}" --export --out "$work/straight" >"$work/straight.out" \
  2>"$work/straight.log" || fail "straight run failed: $(tail -3 "$work/straight.log")"
for f in metrics.csv checkpoint.mixq model.mixq uniform.csv search_bits_3.00.csv \
         configs/bits_3.00.bits configs/bits_3.00.mqd frontier.csv frontier.svg report.json; do
  [[ -s "$work/straight/$f" ]] || fail "missing $f"
done
head -1 "$work/straight/metrics.csv" | grep -q "loss_high,loss_random,loss_low" || fail "no LRH columns"
[[ $(grep -c "^W" "$work/straight/uniform.csv") -eq 7 ]] || fail "uniform.csv: expected 7 slices"
grep -q "^layers 6$" "$work/straight/configs/bits_3.00.bits" || fail "configuration file header"
grep -q "mixq: search bits_3.00: best held-out" "$work/straight.log" || fail "no search summary"
# --export: every uniform slice and the searched configuration in one bundle, which the
# evaluator runs by switching; each configuration's logits equal its own model file's
for f in configs/W2A2.mqd configs/W8A8.mqd configs/supernet.mqb; do
  [[ -s "$work/straight/$f" ]] || fail "missing $f"
done
grep -q '"bundle": {"file": "configs/supernet.mqb", "configurations": 8' "$work/straight/report.json" \
  || fail "report.json: no bundle of 8 configurations"
ev="$(dirname "$exe")/mixq_evaluate"
if [[ -x "$ev" ]]; then
  "$ev" --model "$work/straight/configs/supernet.mqb" --data "$data" --max-images 64 --batch 16 \
    >"$work/bundle.out" 2>&1 || fail "evaluating the bundle failed: $(tail -3 "$work/bundle.out")"
  grep -q "bundle of 8 configurations" "$work/bundle.out" || fail "no bundle line: $(cat "$work/bundle.out")"
  for c in W2A2 W5A5 bits_3.00; do
    "$ev" --model "$work/straight/configs/$c.mqd" --data "$data" --max-images 64 --batch 16 \
      >"$work/alone.out" 2>&1 || fail "evaluating $c.mqd failed: $(cat "$work/alone.out")"
    alone=$(grep -o "FNV-1a [0-9a-f]*" "$work/alone.out")
    switched=$(grep -F "[$c]" "$work/bundle.out" | grep -o "FNV-1a [0-9a-f]*")
    [[ -n "$alone" && "$alone" == "$switched" ]] || fail "$c: bundle logits '$switched', own file '$alone'"
  done
  # --tune plans each configuration by measurement: one report each, the same logits
  "$ev" --model "$work/straight/configs/supernet.mqb" --data "$data" --max-images 64 --batch 16 \
    --tune >"$work/tuned.out" 2>&1 || fail "--tune failed: $(tail -3 "$work/tuned.out")"
  [[ $(grep -c "\]: tune: " "$work/tuned.out") -eq 8 ]] || fail "--tune: $(cat "$work/tuned.out")"
  hashes() { sed -n 's/.*\[\([^]]*\)\] on .*FNV-1a \([0-9a-f]*\).*/\1 \2/p' "$1"; }
  [[ $(hashes "$work/tuned.out" | wc -l) -eq 8 ]] && cmp -s <(hashes "$work/bundle.out") <(hashes "$work/tuned.out") \
    || fail "--tune changed logits: $(hashes "$work/tuned.out")"
  "$ev" --model "$work/straight/configs/supernet.mqb" --data "$data" --max-images 64 \
    --config W9A9 2>"$work/err_cfg" >/dev/null
  [[ $? -eq 2 && $(wc -l <"$work/err_cfg") -eq 1 ]] && grep -q "no configuration 'W9A9'" "$work/err_cfg" \
    || fail "--config W9A9: $(cat "$work/err_cfg")"
fi

# --stages configs: the searched configurations evaluated again give the search's own
# held-out accuracies (the same recalibration images when --calib-images and
# --search-calib-images agree, the same held-out images), plus their test accuracy
"$exe" "${common[@]}" --stages configs --eval-configs "$work/straight/search_bits_3.00.csv" \
  --out "$work/straight" >/dev/null 2>"$work/configs.log" || fail "configs stage: $(tail -2 "$work/configs.log")"
python3 - "$work/straight/search_bits_3.00.csv" "$work/straight/configs_eval.csv" <<'PY' || fail "configs_eval.csv does not repeat the search's held-out accuracies"
import csv, sys
s = list(csv.DictReader(open(sys.argv[1])))
e = list(csv.DictReader(open(sys.argv[2])))
assert len(s) == len(e) and len(s) > 0, (len(s), len(e))
for a, b in zip(s, e):
    assert a["config"] == b["config"] and a["val_acc"] == b["val_acc"], (a, b)
    assert 0.0 <= float(b["test_acc"]) <= 1.0
PY
printf 'x,"w:4,4,4,4,4,9 a:4,4,4,4,4,4"\n' >"$work/bad_configs.csv"
one_line_exit2 bad_configs "$exe" "${common[@]}" --stages configs --eval-configs "$work/bad_configs.csv" --out "$work/straight"
grep -q "bad_configs.csv:1: configuration" "$work/err_bad_configs" || fail "bad configuration message: $(cat "$work/err_bad_configs")"
one_line_exit2 configs_without_file "$exe" "${common[@]}" --stages configs --out "$work/straight"

"$exe" "${common[@]}" --stages train --out "$work/resumed" --stop-after-epoch 1 >/dev/null \
  2>"$work/r1.log" || fail "first half failed: $(tail -3 "$work/r1.log")"
"$exe" "${common[@]}" --stages train --out "$work/resumed" --resume >/dev/null \
  2>"$work/r2.log" || fail "resume failed: $(tail -3 "$work/r2.log")"
cmp -s <(rows "$work/straight/metrics.csv") <(rows "$work/resumed/metrics.csv") \
  || fail "resumed metrics differ: $(diff <(rows "$work/straight/metrics.csv") <(rows "$work/resumed/metrics.csv"))"
cmp -s "$work/straight/model.mixq" "$work/resumed/model.mixq" \
  || fail "resumed supernet differs from the straight run's"

# The search's held-out images against the supernet's start: an FP32 start trained with the
# same split held out (mixq_train_cifar10 --hold-out N, same --seed) leaves them unseen; one
# trained on every image does not, which the run says and report.json records.
tr="$(dirname "$exe")/mixq_train_cifar10"
if [[ -x "$tr" ]]; then
  fp=(--data "$data" --depth 8 --epochs 1 --batch 32 --train-subset 160 --test-subset 64 --threads 1)
  "$tr" "${fp[@]}" --hold-out 40 --out "$work/fp_ho" >/dev/null 2>"$work/fp_ho.log" \
    || fail "FP32 --hold-out run failed: $(tail -3 "$work/fp_ho.log")"
  grep -q "120 train / 64 test images" "$work/fp_ho.log" || fail "--hold-out 40 of 160: $(head -1 "$work/fp_ho.log")"
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["held_out_images"] == 40' \
    "$work/fp_ho/report.json" || fail "report.json: held_out_images is not 40"
  "$tr" "${fp[@]}" --out "$work/fp_all" >/dev/null 2>"$work/fp_all.log" || fail "FP32 run failed"
  mq=(--data "$data" --depth 8 --epochs 1 --batch 32 --train-subset 160 --val-images 40
      --test-subset 64 --calib-images 32 --search-calib-images 32 --threads 1)
  for k in ho all; do
    "$exe" "${mq[@]}" "${search[@]}" --stages train,search \
      --init "$work/fp_$k/model.mixq" --out "$work/mq_$k" >/dev/null 2>"$work/mq_$k.log" \
      || fail "supernet from fp_$k failed: $(tail -3 "$work/mq_$k.log")"
  done
  grep -q '"held_out_unseen": true' "$work/mq_ho/report.json" || fail "held-out start: not unseen"
  ! grep -q "memorised" "$work/mq_ho.log" || fail "held-out start: a note was printed"
  grep -q '"held_out_unseen": false' "$work/mq_all/report.json" || fail "full start: not flagged"
  grep -q "trained on the 40 held-out images" "$work/mq_all.log" || fail "full start: no note"
  # the same count and seed drawn from another pool (--train-subset) is another split
  mq_sub=("${mq[@]/#160/200}")
  "$exe" "${mq_sub[@]}" "${search[@]}" --stages train --init "$work/fp_ho/model.mixq" \
    --out "$work/mq_sub" >/dev/null 2>"$work/mq_sub.log" || fail "supernet on 200 images failed"
  grep -q '"held_out_unseen": false' "$work/mq_sub/report.json" \
    || fail "a split of 200 images taken for the start's split of 160"
  # a later stage reads the record from the saved supernet
  "$exe" "${mq[@]}" "${search[@]}" --stages search \
    --out "$work/mq_ho" >/dev/null 2>"$work/mq_ho2.log" || fail "search stage failed"
  ! grep -q "memorised" "$work/mq_ho2.log" || fail "saved supernet lost its held-out record"
fi

# later stages read the saved supernet: other supernet flags are refused in one line
one_line_exit2 other_supernet "$exe" "${common[@]}" --stages uniform --per-bit-bn --out "$work/resumed"
# ... and another held-out split (it would score the supernet on images it trained on)
one_line_exit2 other_split "$exe" "${common[@]}" --stages uniform --seed 2 --out "$work/resumed"
grep -q "trained with 40 held-out images (seed 1, of 160), but this run holds out 40 (seed 2" \
  "$work/err_other_split" || fail "split message: $(cat "$work/err_other_split")"
one_line_exit2 other_split_n "$exe" "${common[@]/#40/30}" --stages uniform --out "$work/resumed"
echo "example_multiquant_cifar10: ok"
