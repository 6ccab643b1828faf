#!/usr/bin/env bash
# The training example's quantized methods as a user runs them: fixed-bit QAT
# and AdaQAT tiny runs write the bits columns, bits.svg and the cost table; a
# run stopped after epoch 1 and resumed ends bit-identical to a straight run;
# a quantized checkpoint resumed with another method, an init model of
# another depth, and bad quantization flags each give one line on stderr and
# exit code 2. What ships: a quantized run exports model.mqd and reports the
# integer model; mixq_export --trained turns the run's model.mixq and its
# checkpoint into the same integer model, whose logits on the test images
# (mixq_evaluate) are those of the run's own model.mqd.
set -uo pipefail
src="$1"; work="$2"
exe="$(dirname "$(dirname "$work")")/examples/mixq_train_cifar10"
if [[ ! -x "$exe" ]]; then echo "SKIPPED: $exe not built (MIXQ_BUILD_EXAMPLES=OFF)"; exit 77; fi
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
one_line_exit2() {  # name, then the command
  local name="$1"; shift
  "$@" 2>"$work/err_$name" >/dev/null; local rc=$?
  [[ $rc -eq 2 ]] || fail "$name: exit $rc, expected 2"
  [[ $(wc -l <"$work/err_$name") -eq 1 ]] || fail "$name: expected one line, got: $(cat "$work/err_$name")"
}

one_line_exit2 bits "$exe" --method qat --bits-w 9
grep -qF -- "--bits-w: '9'" "$work/err_bits" || fail "bits message: $(cat "$work/err_bits")"
one_line_exit2 bits_a "$exe" --method qat --bits-a 1
one_line_exit2 lambda "$exe" --method adaqat --lambda -0.5
grep -q "lambda" "$work/err_lambda" || fail "lambda message: $(cat "$work/err_lambda")"
one_line_exit2 bits_init "$exe" --method adaqat --bits-init 9
one_line_exit2 method "$exe" --method int4
one_line_exit2 family "$exe" --method qat --wq foo

data="${MIXQ_DATA:-$src/../shared/datasets/cifar10}"
if [[ ! -e "$data/test_batch.bin.gz" && ! -e "$data/test_batch.bin" ]]; then
  echo "SKIPPED (rest): CIFAR-10 not found at $data"; exit 0
fi
common=(--data "$data" --depth 8 --epochs 2 --batch 32 --train-subset 128 --test-subset 64 --threads 1)
# csv rows without the timing columns (seconds, images_per_s)
rows() { cut -d, -f1-6,9- "$1"; }

for m in "qat --bits-w 3 --bits-a 4 --per-channel" \
         "adaqat --granularity network --lambda 0.5 --bits-lr 0.5" \
         "adaqat --granularity layer --bits-estimator taylor --lambda 0.5 --bits-lr 0.5"; do
  read -r -a margs <<<"--method $m"
  tag="$(echo "$m" | tr ' ' '_' | tr -d '-')"
  "$exe" "${common[@]}" "${margs[@]}" --out "$work/$tag.straight" >"$work/$tag.out" 2>"$work/$tag.log" \
    || fail "$m: straight run failed: $(tail -3 "$work/$tag.log")"
  for f in metrics.csv checkpoint.mixq model.mixq report.json bits.svg; do
    [[ -s "$work/$tag.straight/$f" ]] || fail "$m: missing $f"
  done
  grep -q "BitOPs" "$work/$tag.out" || fail "$m: no cost table in the report"
  head -1 "$work/$tag.straight/metrics.csv" | grep -q "b_w:layer1.0.conv1" || fail "$m: no bits columns"
  "$exe" "${common[@]}" "${margs[@]}" --out "$work/$tag.resumed" --stop-after-epoch 1 \
    >/dev/null 2>"$work/$tag.log1" || fail "$m: first half failed: $(tail -3 "$work/$tag.log1")"
  "$exe" "${common[@]}" "${margs[@]}" --out "$work/$tag.resumed" --resume \
    >"$work/$tag.out2" 2>"$work/$tag.log2" || fail "$m: resume failed: $(tail -3 "$work/$tag.log2")"
  grep -q "1 run now, from epoch 1" "$work/$tag.out2" || fail "$m: resume did not start at epoch 1"
  cmp -s <(rows "$work/$tag.straight/metrics.csv") <(rows "$work/$tag.resumed/metrics.csv") \
    || fail "$m: resumed metrics differ: $(diff <(rows "$work/$tag.straight/metrics.csv") <(rows "$work/$tag.resumed/metrics.csv"))"
  cmp -s "$work/$tag.straight/model.mixq" "$work/$tag.resumed/model.mixq" \
    || fail "$m: resumed model differs from the straight run's"
done
grep -q "N:w" "$work/adaqat_granularity_network_lambda_0.5_bitslr_0.5.straight/metrics.csv" \
  || fail "adaqat: no learned bit-width column"

# What ships.
q="$work/qat_bitsw_3_bitsa_4_perchannel.straight"
[[ -s "$q/model.mqd" ]] || fail "qat: no model.mqd"
grep -q "integer model" "$work/qat_bitsw_3_bitsa_4_perchannel.out" || fail "qat: no integer model in the report"
head -1 "$q/metrics.csv" | grep -q "float_test_acc,agreement" || fail "qat: no agreement columns"
python3 - "$q/report.json" <<'PY' || fail "qat: report.json integer section"
import json, sys
r = json.load(open(sys.argv[1]))
i = r["integer"]
assert r["evaluation"] == "integer", r["evaluation"]
assert abs(i["test_accuracy"] - r["test_accuracy"]) < 1e-12, (i["test_accuracy"], r["test_accuracy"])
assert 0.0 <= i["agreement"] <= 1.0 and i["images"] == 64 and i["model_bytes"] > 0
PY
bindir="$(dirname "$exe")"
if [[ -x "$bindir/mixq_export" && -x "$bindir/mixq_evaluate" ]]; then
  for from in model checkpoint; do
    "$bindir/mixq_export" --trained "$q/$from.mixq" --out "$work/from_$from.mqd" >/dev/null \
      2>"$work/export_$from.log" || fail "mixq_export --trained $from: $(cat "$work/export_$from.log")"
  done
  hash_of() {
    "$bindir/mixq_evaluate" --model "$1" --data "$data" --max-images 64 --batch 16 2>&1 \
      | grep -o "FNV-1a [0-9a-f]*" || echo "no hash for $1"
  }
  h0="$(hash_of "$q/model.mqd")"
  [[ "$h0" == FNV-1a* ]] || fail "mixq_evaluate on model.mqd: $h0"
  [[ "$(hash_of "$work/from_model.mqd")" == "$h0" ]] || fail "export of model.mixq differs from model.mqd"
  [[ "$(hash_of "$work/from_checkpoint.mqd")" == "$h0" ]] || fail "export of checkpoint.mixq differs"
  # --plan names each conv layer's bits and kernel, and the arena.
  "$bindir/mixq_evaluate" --model "$q/model.mqd" --data "$data" --max-images 16 --batch 16 --plan \
    > "$work/plan.txt" 2>&1 || fail "mixq_evaluate --plan: $(cat "$work/plan.txt")"
  grep -q "^layer 1: conv 3x3/1 .* W3 A4 -> A4, .*qgemm_a4w3_" "$work/plan.txt" \
    || fail "--plan: no W3 A4 conv with its kernel: $(head -3 "$work/plan.txt")"
  grep -q "^arena: " "$work/plan.txt" || fail "--plan: no arena line"
fi

# A quantized checkpoint resumed with another method.
one_line_exit2 other_method "$exe" "${common[@]}" --method fp32 --resume \
  --out "$work/qat_bitsw_3_bitsa_4_perchannel.straight"
grep -q "method 'qat'" "$work/err_other_method" || fail "method message: $(cat "$work/err_other_method")"
one_line_exit2 other_method2 "$exe" "${common[@]}" --method adaqat --resume \
  --out "$work/qat_bitsw_3_bitsa_4_perchannel.straight"

# --init: an FP32 model of another depth, and a quantized model.
"$exe" --data "$data" --depth 8 --epochs 1 --batch 32 --train-subset 64 --test-subset 32 \
  --threads 1 --out "$work/fp32" >/dev/null 2>&1 || fail "fp32 tiny run failed"
if [[ -x "$bindir/mixq_export" ]]; then  # an FP32 model has no integer form
  one_line_exit2 export_fp32 "$bindir/mixq_export" --trained "$work/fp32/model.mixq" --out "$work/x.mqd"
  grep -q "quant/weights' is missing" "$work/err_export_fp32" || fail "export fp32: $(cat "$work/err_export_fp32")"
fi
one_line_exit2 init_depth "$exe" --data "$data" --depth 14 --method qat --init "$work/fp32/model.mixq" \
  --epochs 1 --train-subset 64 --test-subset 32 --out "$work/init14"
grep -q "resnet8" "$work/err_init_depth" || fail "init depth message: $(cat "$work/err_init_depth")"
one_line_exit2 init_quant "$exe" "${common[@]}" --method qat \
  --init "$work/qat_bitsw_3_bitsa_4_perchannel.straight/model.mixq" --out "$work/initq"
"$exe" "${common[@]}" --method qat --init "$work/fp32/model.mixq" --out "$work/finetune" \
  >/dev/null 2>"$work/finetune.log" || fail "fine-tune from FP32 failed: $(tail -3 "$work/finetune.log")"
echo "example_train_cifar10_quant: all checks passed"
