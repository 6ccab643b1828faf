#!/usr/bin/env bash
# scripts/harvest_run.sh in a scratch git repository: a finished run's model, metrics, report
# and bits picture land where models/README.md says, its models/wip/ copies leave the index,
# the printed figures are those of the metrics file (training seconds summed, the median, the
# last accuracy), a supernet run's uniform slices are filed and printed, and a run without
# report.json is refused with exit code 2.
set -uo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
repo="$work/repo"
mkdir -p "$repo/scripts" "$repo/models/wip" "$repo/docs/data" "$repo/docs/img" "$repo/runs/r1"
cp "$src/scripts/harvest_run.sh" "$repo/scripts/"
cd "$repo" || exit 1
git init -q . && git config user.email t@t && git config user.name t
echo ck >models/wip/r1_checkpoint.mixq
echo m >models/wip/r1_metrics.csv
git add -A && git commit -qm init || fail "git commit"
echo ck2 >models/wip/r1_checkpoint.mixq   # the queue's later copy: a local modification
printf 'epoch,lr,test_acc,seconds\n1,0.1,0.5,30\n2,0.1,0.6,10\n3,0.1,0.7,20\n4,0.1,0.8,50\n' \
  >runs/r1/metrics.csv
echo model >runs/r1/model.mixq
printf '{\n  "test_accuracy": 0.8,\n  "model_bytes": 123\n}\n' >runs/r1/report.json
echo '<svg/>' >runs/r1/bits.svg

out=$(bash scripts/harvest_run.sh runs/r1 m1 2>&1) || fail "harvest exited $?: $out"
for f in models/m1.mixq docs/data/r1_metrics.csv docs/data/r1_report.json docs/img/r1_bits.svg; do
  [[ -f "$f" ]] || fail "$f not written"
  git ls-files --error-unmatch "$f" >/dev/null 2>&1 || fail "$f not added to the index"
done
cmp -s models/m1.mixq runs/r1/model.mixq || fail "model differs from the run's"
[[ -e models/wip/r1_checkpoint.mixq || -e models/wip/r1_metrics.csv ]] && fail "wip files left"
git ls-files models/wip | grep -q . && fail "wip files still in the index"
grep -q "epochs 4, training 110 s in all, median 25 s per epoch, last test_acc 0.8" <<<"$out" ||
  fail "figures: $out"
grep -q '"model_bytes": 123' <<<"$out" || fail "report fields not printed: $out"

# A supernet run: a one-line report with its uniform slices, and uniform.csv filed beside the
# metrics.
mkdir -p runs/s1
printf 'epoch,test_acc,seconds\n1,0.9,200\n' >runs/s1/metrics.csv
echo sn >runs/s1/model.mixq
printf '{"epochs": 1, "train_seconds": 200.5, "uniform_test_acc": {"W2A2": 0.86, "W8A8": 0.91}, "search": {}}\n' \
  >runs/s1/report.json
printf 'slice,test_acc\nW2A2,0.86\n' >runs/s1/uniform.csv
out=$(bash scripts/harvest_run.sh runs/s1 s1m 2>&1) || fail "supernet harvest exited $?: $out"
for f in models/s1m.mixq docs/data/s1_metrics.csv docs/data/s1_report.json docs/data/s1_uniform.csv; do
  git ls-files --error-unmatch "$f" >/dev/null 2>&1 || fail "$f not filed"
done
grep -q '"uniform_test_acc": {"W2A2": 0.86, "W8A8": 0.91}' <<<"$out" || fail "slices: $out"
grep -q "filed: .*docs/data/s1_uniform.csv" <<<"$out" || fail "filed line: $out"

mkdir -p runs/r2 && echo x >runs/r2/model.mixq
bash scripts/harvest_run.sh runs/r2 m2 >/dev/null 2>"$work/err"
rc=$?
[[ $rc -eq 2 ]] || fail "unfinished run: exit $rc, expected 2"
grep -q "runs/r2/report.json missing" "$work/err" || fail "message: $(cat "$work/err")"
[[ -e models/m2.mixq ]] && fail "unfinished run filed"
echo "harvest_run: ok"
