#!/usr/bin/env bash
# scripts/train_queue.sh on a queue of fake training commands (a shell
# function's script that writes a checkpoint per "epoch", the metrics and, at
# the end, report.json): finished runs are skipped, a run with a checkpoint
# resumes, a run carried in models/wip/ (here MIXQ_WIP_DIR) is copied in and
# resumed, checkpoints reach the wip folder after every epoch, a failing run
# stops the queue with its exit code, and a line without --out is refused. The queue file is read
# again after each run: an edit made while a run trains decides the next run, and a run that ends
# without report.json is not started again.
set -uo pipefail
src="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
q="$src/scripts/train_queue.sh"
fake="$work/fake_train.sh"
cat >"$fake" <<'FAKE'
#!/usr/bin/env bash
# fake_train.sh --epochs N --out DIR [--fail] [--resume] [--noreport] [--rewrite SRC DST]:
# one line per call in DIR/calls; --rewrite copies SRC over DST (an edited queue) before it ends
out="" epochs=1 resume=0 bad=0 noreport=0 rw_src="" rw_dst=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --resume) resume=1 ;;
    --fail) bad=1 ;;
    --noreport) noreport=1 ;;
    --rewrite) rw_src="$2"; rw_dst="$3"; shift 2 ;;
  esac
  shift
done
mkdir -p "$out"
echo "resume=$resume" >>"$out/calls"
start=0
[[ $resume -eq 1 && -f "$out/checkpoint.mixq" ]] && start=$(cat "$out/checkpoint.mixq")
for ((e = start + 1; e <= epochs; e++)); do
  echo "$e" >"$out/checkpoint.mixq.tmp" && mv "$out/checkpoint.mixq.tmp" "$out/checkpoint.mixq"
  echo "epoch,$e" >>"$out/metrics.csv"
done
[[ -n "$rw_src" ]] && cp "$rw_src" "$rw_dst"
[[ $bad -eq 1 ]] && { echo "fake: failed on purpose" >&2; exit 3; }
[[ $noreport -eq 1 ]] && exit 0
echo '{}' >"$out/report.json"
FAKE
export MIXQ_WIP_DIR="$work/wip" MIXQ_QUEUE_POLL=0.2
mkdir -p "$work/wip" "$work/runs/b"
echo 1 >"$work/runs/b/checkpoint.mixq"           # b: a checkpoint after epoch 1
echo 2 >"$work/wip/c_checkpoint.mixq"            # c: carried over after epoch 2
echo "epoch,1" >"$work/wip/c_metrics.csv"
mkdir -p "$work/runs/d"; echo '{}' >"$work/runs/d/report.json"  # d: finished
cat >"$work/queue.txt" <<Q
# a comment line, and a blank line

bash $fake --epochs 2 --out $work/runs/a
bash $fake --epochs 3 --out $work/runs/b   # a trailing comment
bash $fake --epochs 4 --out $work/runs/c
bash $fake --epochs 9 --out $work/runs/d
bash $fake --epochs 2 --out $work/runs/e --fail
bash $fake --epochs 2 --out $work/runs/f
Q
bash "$q" "$work/queue.txt" --dry-run >"$work/dry.out" 2>&1 || fail "dry run: $(cat "$work/dry.out")"
[[ ! -f "$work/runs/a/calls" && ! -f "$work/runs/c/checkpoint.mixq" ]] || fail "the dry run ran something"
grep -q "done     $work/runs/d" "$work/dry.out" || fail "dry run: d not done: $(cat "$work/dry.out")"
bash "$q" "$work/queue.txt" >"$work/run.out" 2>"$work/run.err"
rc=$?
[[ $rc -eq 3 ]] || fail "exit $rc, expected the failing run's 3: $(cat "$work/run.err")"
grep -q "runs/e failed (exit 3)" "$work/run.err" || fail "no failure line: $(cat "$work/run.err")"
[[ "$(cat "$work/runs/a/calls")" == "resume=0" ]] || fail "a: $(cat "$work/runs/a/calls")"
[[ "$(cat "$work/runs/b/calls")" == "resume=1" ]] || fail "b did not resume"
[[ "$(cat "$work/runs/c/calls")" == "resume=1" ]] || fail "c did not resume from wip"
[[ "$(cut -d, -f2 "$work/runs/c/metrics.csv" | tr '\n' ' ')" == "1 3 4 " ]] \
  || fail "c: the carried metrics were not continued: $(cat "$work/runs/c/metrics.csv")"
[[ ! -f "$work/runs/d/calls" ]] || fail "d ran though finished"
[[ ! -e "$work/runs/f" ]] || fail "f ran after a failure"
for r in a b c; do
  [[ -f "$work/runs/$r/report.json" ]] || fail "$r did not finish"
done
[[ "$(cat "$work/wip/a_checkpoint.mixq")" == 2 && "$(cat "$work/wip/c_checkpoint.mixq")" == 4 ]] \
  || fail "wip checkpoints not the last epoch's"
[[ -f "$work/wip/e_checkpoint.mixq" ]] || fail "the failed run's checkpoint is not in wip"
grep -q "resume=0" "$work/runs/e/calls" || fail "e"
echo "bash $fake --epochs 1" >"$work/bad.txt"
bash "$q" "$work/bad.txt" >/dev/null 2>"$work/bad.err"
[[ $? -eq 2 ]] && grep -q "bad.txt:1: no --out DIR" "$work/bad.err" || fail "no --out: $(cat "$work/bad.err")"
bash "$q" --bogus 2>/dev/null; [[ $? -eq 2 ]] || fail "--bogus accepted"

# $MIXQ_THREADS in a line: the caller's value (3 epochs), or the default (1)
cat >"$work/queue3.txt" <<'Q'
bash FAKE --epochs $MIXQ_THREADS --out OUT/h1
Q
sed -i "s|FAKE|$fake|; s|OUT|$work/runs|" "$work/queue3.txt"
MIXQ_THREADS=3 bash "$q" "$work/queue3.txt" >/dev/null 2>&1 || fail "queue3 failed"
[[ "$(cat "$work/runs/h1/checkpoint.mixq")" == 3 ]] || fail "MIXQ_THREADS not passed to the line"
rm -rf "$work/runs/h1" "$work/wip/h1_"*
bash "$q" "$work/queue3.txt" >/dev/null 2>&1 || fail "queue3 (default) failed"
[[ "$(cat "$work/runs/h1/checkpoint.mixq")" == 1 ]] || fail "MIXQ_THREADS default is not 1"

# Edited while a run trains: g1 replaces the queue's g2 by g3 and g4; g3 ends without a report
# (not run again), g4 runs after it.
cat >"$work/queue2_edit.txt" <<Q
bash $fake --epochs 1 --out $work/runs/g1
bash $fake --epochs 1 --out $work/runs/g3 --noreport
bash $fake --epochs 1 --out $work/runs/g4
Q
cat >"$work/queue2.txt" <<Q
bash $fake --epochs 1 --out $work/runs/g1 --rewrite $work/queue2_edit.txt $work/queue2.txt
bash $fake --epochs 1 --out $work/runs/g2
Q
bash "$q" "$work/queue2.txt" >"$work/run2.out" 2>"$work/run2.err" || fail "queue2: exit $?: $(cat "$work/run2.err")"
[[ ! -e "$work/runs/g2" ]] || fail "g2 ran though the queue no longer held it"
[[ "$(cat "$work/runs/g3/calls")" == "resume=0" ]] || fail "g3: $(cat "$work/runs/g3/calls" 2>&1)"
[[ -f "$work/runs/g4/report.json" ]] || fail "g4 did not run after the edit"
grep -q "g3 ended without report.json" "$work/run2.err" || fail "no note on g3: $(cat "$work/run2.err")"
echo "train_queue: ok"
