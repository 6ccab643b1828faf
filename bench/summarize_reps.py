#!/usr/bin/env python3
"""Summarize repeated mixq_bench_qconv runs (one CSV per repetition).

Each repetition times oneDNN right before mixq on every (shape, batch,
threads), so per-repetition ratios are paired. Prints markdown tables of
medians with the spread (min-max) over repetitions:
  1. mixq W8A8 (avx512) vs oneDNN int8 convolution, paired ratios;
  2. bit-width ratios inside one ISA (W2A2/W8A8 avx512 through qconv2d and
     through the LUT6 path on bit-plane planes, impl mixq_lut6; W4A4/W8A8 avx2);
  3. border-tap skipping vs all taps (impl mixq_fulltaps, --full-taps runs).

usage: summarize_reps.py run1.csv run2.csv ...
"""
import csv
import statistics
import sys
from collections import defaultdict


def load(paths):
    runs = []
    for p in paths:
        rows = {}
        with open(p) as f:
            for r in csv.DictReader(f):
                if r["bench"] not in ("conv", "gemm") or not r["gops"]:
                    continue
                key = (r["name"], int(r["batch"]), int(r["threads"]), r["impl"], r["isa"],
                       r["w_bits"], r["a_bits"])
                rows[key] = float(r["gops"])
        runs.append(rows)
    return runs


def spread(vals, fmt="{:.0f}"):
    return (fmt + " ({}-{})").format(statistics.median(vals), fmt.format(min(vals)),
                                     fmt.format(max(vals)))


def paired(runs, a, b):
    """Per-repetition values of a and b and their ratios (only where both exist)."""
    va, vb, ratios = [], [], []
    for rows in runs:
        if a in rows and b in rows:
            va.append(rows[a])
            vb.append(rows[b])
            ratios.append(rows[a] / rows[b])
    return va, vb, ratios


def main(paths):
    runs = load(paths)
    cases = sorted({(k[0], k[1], k[2]) for rows in runs for k in rows},
                   key=lambda c: (c[1], c[2], c[0]))
    print(f"{len(runs)} repetitions; medians, (min-max) over repetitions\n")
    print("| shape | batch | threads | oneDNN int8 | mixq avx512 W8A8 | ratio of medians |"
          " paired ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, thr in cases:
        a = (name, batch, thr, "mixq", "avx512", "8", "8")
        b = (name, batch, thr, "onednn_conv_int8", "peer", "", "")
        va, vb, rr = paired(runs, a, b)
        if not rr:
            continue
        print(f"| {name} | {batch} | {thr} | {spread(vb)} | {spread(va)} |"
              f" {statistics.median(va) / statistics.median(vb):.3f} | {spread(rr, '{:.3f}')} |")
    print()
    print("| shape | batch | threads | avx512 W2A2 / W8A8 | avx512 LUT6 W2A2 / W8A8 |"
          " avx2 W4A4 / W8A8 | avx2 W2A2 / W8A8 |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, thr in cases:
        cells = []
        for impl, isa, bits in (("mixq", "avx512", "2"), ("mixq_lut6", "avx512", "2"),
                                ("mixq", "avx2", "4"), ("mixq", "avx2", "2")):
            a = (name, batch, thr, impl, isa, bits, bits)
            b = (name, batch, thr, "mixq", isa, "8", "8")
            _, _, rr = paired(runs, a, b)
            cells.append(spread(rr, "{:.2f}") if rr else "-")
        if any(c != "-" for c in cells):
            print(f"| {name} | {batch} | {thr} | " + " | ".join(cells) + " |")
    print()
    print("| shape | batch | threads | avx512 W8A8 skip / all taps | avx2 W8A8 skip / all taps |")
    print("|---|---|---|---|---|")
    for name, batch, thr in cases:
        cells = []
        for isa in ("avx512", "avx2"):
            a = (name, batch, thr, "mixq", isa, "8", "8")
            b = (name, batch, thr, "mixq_fulltaps", isa, "8", "8")
            _, _, rr = paired(runs, a, b)
            cells.append(spread(rr, "{:.3f}") if rr else "-")
        if any(c != "-" for c in cells):
            print(f"| {name} | {batch} | {thr} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
