#!/usr/bin/python3
"""Interleaved, repeated comparison of mixq and PyTorch on ResNet20.

For each repetition and thread count it runs, one after the other (A B C A B C ...):
  mixq's bench binary, PyTorch NCHW, PyTorch channels-last
each in a fresh process with OMP_PROC_BIND=true / OMP_PLACES=cores and
OMP_NUM_THREADS set, and prints the median, min and max of images/s and
peak RSS per program, plus mixq's ratio to PyTorch's better variant.

  bench/train/compare.py --mixq build/bench/mixq_bench_resnet20 --reps 5 \
      --threads 1 2 --mode train --batch 128 [--csv out.csv]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, threads):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), OMP_PROC_BIND="true", OMP_PLACES="cores")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixq", required=True, help="path to mixq_bench_resnet20")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--csv", default="")
    args = ap.parse_args()

    py = [sys.executable, os.path.join(HERE, "pytorch_resnet20.py")]
    common = ["--batch", str(args.batch), "--steps", str(args.steps), "--mode", args.mode]
    programs = {
        "mixq": lambda t: [args.mixq, "--threads", str(t)] + common,
        "pytorch-nchw": lambda t: py + ["--threads", str(t)] + common,
        "pytorch-channels-last": lambda t: py + ["--threads", str(t), "--channels-last"] + common,
    }
    rows = []
    for t in args.threads:
        res = {k: [] for k in programs}
        for r in range(args.reps):
            for name, mk in programs.items():
                j = run(mk(t), t)
                res[name].append(j)
                rows.append(dict(rep=r, threads=t, program=name, mode=args.mode, batch=args.batch,
                                 images_per_s=j["images_per_s"], peak_rss_mib=j["peak_rss_mib"]))
                print(f"  rep {r} threads {t} {name:24s} {j['images_per_s']:8.1f} img/s "
                      f"{j['peak_rss_mib']:7.1f} MiB", file=sys.stderr, flush=True)
        med = {}
        print(f"\n{args.mode}, batch {args.batch}, {t} thread(s), {args.reps} interleaved reps")
        print(f"{'program':24s} {'median img/s':>12s} {'min':>8s} {'max':>8s} {'peak RSS MiB (median)':>22s}")
        for name, js in res.items():
            ips = [j["images_per_s"] for j in js]
            rss = [j["peak_rss_mib"] for j in js]
            med[name] = statistics.median(ips)
            print(f"{name:24s} {med[name]:12.1f} {min(ips):8.1f} {max(ips):8.1f} {statistics.median(rss):22.1f}")
        best = max(med["pytorch-nchw"], med["pytorch-channels-last"])
        # Paired ratios: each mixq run against the better PyTorch variant of the same rep.
        paired = [res["mixq"][i]["images_per_s"] /
                  max(res["pytorch-nchw"][i]["images_per_s"], res["pytorch-channels-last"][i]["images_per_s"])
                  for i in range(args.reps)]
        print(f"mixq / best PyTorch (medians): {med['mixq'] / best:.2f}x; "
              f"paired per rep: median {statistics.median(paired):.2f}x, "
              f"min {min(paired):.2f}x, max {max(paired):.2f}x")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
