#!/usr/bin/env bash
# Files a finished training run (models/README.md): its model into models/, its metrics and
# report into docs/data/, its bits-over-training picture (AdaQAT) into docs/img/, a supernet's
# uniform slices (uniform.csv) into docs/data/, and removes its models/wip/ copies from git;
# then prints the figures a results paragraph needs.
#
#   scripts/harvest_run.sh runs/<run> <model-name>
#
# <model-name> without ".mixq" (e.g. adaqat_layer_l30_resnet20). Files go to
# models/<model-name>.mixq, docs/data/<run>_metrics.csv, docs/data/<run>_report.json,
# docs/data/<run>_uniform.csv and docs/img/<run>_bits.svg. Nothing is committed. Exit code 2 on
# a run that has not finished.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: scripts/harvest_run.sh runs/<run> <model-name>" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dir="${1%/}" model="$2"
run="$(basename "$dir")"
for f in report.json model.mixq metrics.csv; do
  [[ -f "$dir/$f" ]] || { echo "harvest_run: $dir/$f missing (expected a finished run)" >&2; exit 2; }
done
cp "$dir/model.mixq" "models/$model.mixq"
cp "$dir/metrics.csv" "docs/data/${run}_metrics.csv"
cp "$dir/report.json" "docs/data/${run}_report.json"
git add "models/$model.mixq" "docs/data/${run}_metrics.csv" "docs/data/${run}_report.json"
if [[ -f "$dir/bits.svg" ]]; then
  cp "$dir/bits.svg" "docs/img/${run}_bits.svg"
  git add "docs/img/${run}_bits.svg"
fi
if [[ -f "$dir/uniform.csv" ]]; then
  cp "$dir/uniform.csv" "docs/data/${run}_uniform.csv"
  git add "docs/data/${run}_uniform.csv"
fi
for f in models/wip/"${run}"_checkpoint.mixq models/wip/"${run}"_metrics.csv; do
  if git ls-files --error-unmatch "$f" >/dev/null 2>&1; then git rm -qf "$f"; else rm -f "$f"; fi
done
# Per-epoch seconds: the metrics file's "seconds" column (training time of each epoch).
col() { awk -F, -v c="$1" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == c) k = i; next } { print $k }' "$dir/metrics.csv"; }
col seconds | sort -g | awk -v acc="$(col test_acc | tail -1)" \
  '{ e[NR] = $1; t += $1 } END { m = (NR % 2) ? e[(NR + 1) / 2] : (e[NR / 2] + e[NR / 2 + 1]) / 2;
     printf "epochs %d, training %.0f s in all, median %.0f s per epoch, last test_acc %s\n", NR, t, m, acc }'
# A training run's report has one field per line; a supernet's is one line (its slices).
if grep -q '"uniform_test_acc"' "$dir/report.json"; then
  grep -oE '"(train_seconds|wall_seconds|uniform_test_acc)": ([0-9.]+|\{[^}]*\})' "$dir/report.json" |
    sed 's/^/  /'
else
  grep -E '"(test_accuracy|fake_quant_test_accuracy|agreement|model_bytes|bitops_per_image|mean_bits_w|mean_bits_a|arena_bytes|batch128_images_per_s|batch1_latency_us)"' \
    "$dir/report.json" | sed 's/^ */  /' || true
fi
extra=""
[[ -f "$dir/uniform.csv" ]] && extra+=", docs/data/${run}_uniform.csv"
[[ -f "$dir/bits.svg" ]] && extra+=", docs/img/${run}_bits.svg"
echo "filed: models/$model.mixq, docs/data/${run}_{metrics.csv,report.json}$extra"
