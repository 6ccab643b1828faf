#!/usr/bin/env bash
# Runs the training queue, one run at a time, resumably across machines.
#
#   scripts/train_queue.sh [QUEUE] [--dry-run] [--once]
#
# QUEUE (default scripts/queue.txt): one training command per line, run from
# the repository root; '#' starts a comment. Each command names its output
# directory with `--out DIR`. The first line whose run has not finished runs:
#   - DIR/report.json exists: the run has finished, skip it;
#   - DIR/checkpoint.mixq exists: run the command with --resume;
#   - else, models/wip/<name>_checkpoint.mixq exists (name = DIR's last
#     component; a run carried over from a checkout that did not survive,
#     models/README.md): copy it and models/wip/<name>_metrics.csv into DIR,
#     then run with --resume;
#   - else: start the run.
# When it ends the queue file is read again from the top, so lines edited,
# added or removed while a run trains take effect for the next run. A run
# that ended without writing report.json is not started again by the same
# invocation.
# While a run trains, its checkpoint and metrics are copied to models/wip/
# after every epoch (looked for every MIXQ_QUEUE_POLL seconds, default 30) and
# once more when it ends, failed or not, each atomically (a temporary name,
# then mv), so committing models/wip/ is all it takes to carry the run to a
# later session. --once stops after the first run it starts; --dry-run prints
# what it would do for every line. Each command pins itself (taskset,
# OMP_PROC_BIND in the line); a line may name $MIXQ_CORES and $MIXQ_THREADS,
# exported to it (defaults 0 and 1: one core, the other left to builds and
# tests; MIXQ_CORES=0,1 MIXQ_THREADS=2 for both). Exit code: the first failing
# run's, else 0.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
queue="$root/scripts/queue.txt"
dry=0 once=0
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    --once) once=1 ;;
    -*) echo "train_queue: unknown flag '$a' (expected --dry-run, --once)" >&2; exit 2 ;;
    *) queue="$a" ;;
  esac
done
[[ -f "$queue" ]] || { echo "train_queue: no queue file '$queue'" >&2; exit 2; }
cd "$root" || exit 2
wip="${MIXQ_WIP_DIR:-$root/models/wip}"  # MIXQ_WIP_DIR: elsewhere (the tests)
export MIXQ_CORES="${MIXQ_CORES:-0}" MIXQ_THREADS="${MIXQ_THREADS:-1}"

copy_wip() {  # dir name: the checkpoint and metrics into models/wip, atomically
  local d="$1" n="$2"
  mkdir -p "$wip"
  [[ -f "$d/checkpoint.mixq" ]] && cp "$d/checkpoint.mixq" "$wip/.${n}_ck.tmp" \
    && mv -f "$wip/.${n}_ck.tmp" "$wip/${n}_checkpoint.mixq"
  [[ -f "$d/metrics.csv" ]] && cp "$d/metrics.csv" "$wip/.${n}_m.tmp" \
    && mv -f "$wip/.${n}_m.tmp" "$wip/${n}_metrics.csv"
}

run_line() {  # line out: carry from wip if needed, run (or print under --dry-run)
  local line="$1" out="$2" name resume="" pid last stamp rc
  name=$(basename "$out")
  if [[ -f "$out/checkpoint.mixq" ]]; then
    resume=" --resume"
  elif [[ -f "$wip/${name}_checkpoint.mixq" ]]; then
    echo "train_queue: carry    models/wip/${name}_checkpoint.mixq -> $out/"
    if [[ $dry -eq 0 ]]; then
      mkdir -p "$out"
      cp "$wip/${name}_checkpoint.mixq" "$out/checkpoint.mixq"
      [[ -f "$wip/${name}_metrics.csv" ]] && cp "$wip/${name}_metrics.csv" "$out/metrics.csv"
    fi
    resume=" --resume"
  fi
  echo "train_queue: $( [[ -n "$resume" ]] && echo resume || echo start )   $line$resume"
  [[ $dry -eq 1 ]] && return 0
  mkdir -p "$out"
  # the command's own words; its progress goes to DIR/train.log
  bash -c "$line$resume" </dev/null >>"$out/train.log" 2>&1 &
  pid=$!
  last=""
  while kill -0 "$pid" 2>/dev/null; do
    sleep "${MIXQ_QUEUE_POLL:-30}"
    stamp=$(stat -c %Y "$out/checkpoint.mixq" 2>/dev/null || true)
    if [[ -n "$stamp" && "$stamp" != "$last" ]]; then
      copy_wip "$out" "$name"
      last="$stamp"
    fi
  done
  wait "$pid"
  rc=$?
  copy_wip "$out" "$name"
  if [[ $rc -ne 0 ]]; then
    echo "train_queue: $out failed (exit $rc): $(tail -1 "$out/train.log")" >&2
    exit "$rc"
  fi
  echo "train_queue: finished $out"
  [[ -f "$out/report.json" ]] || echo "train_queue: $out ended without report.json; not run again" >&2
  [[ $once -eq 1 ]] && exit 0
  return 0
}

# One pass over the queue file: runs the first line to run and returns 0, or
# returns 1 when there is none (under --dry-run: prints every line, returns 1).
declare -A ran=() announced=()
pass() {
  local lineno=0 line out
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%%#*}"
    [[ -z "${line// /}" ]] && continue
    out=$(sed -n 's/.*--out[ =]\([^ ]*\).*/\1/p' <<<"$line")
    if [[ -z "$out" ]]; then
      echo "train_queue: $queue:$lineno: no --out DIR in the command" >&2
      exit 2
    fi
    if [[ -f "$out/report.json" ]]; then
      [[ -z "${announced[$out]:-}" ]] && echo "train_queue: done     $out"
      announced[$out]=1
      continue
    fi
    [[ -n "${ran[$out]:-}" ]] && continue
    ran[$out]=1
    run_line "$line" "$out"
    [[ $dry -eq 1 ]] && continue
    return 0
  done <"$queue"
  return 1
}
while pass; do :; done
exit 0
