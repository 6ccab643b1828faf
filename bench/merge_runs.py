#!/usr/bin/env python3
"""Merge several mixq_bench_qconv CSV runs into one (stdlib only).

On a shared machine a configuration measured during someone else's compile
burst is slow in every repetition of that run, so min-of-N inside one run is
not enough. Running the whole benchmark several times and keeping, for each
row, the run with the best (minimum) time removes those bursts. The derived
columns are recomputed from the merged rows: pct_peak from the best measured
peak of the ISA at that thread count, ratio_w8a8 from the merged W8A8 row of
the same shape/batch/threads/ISA, ratio_onednn from the merged oneDNN int8
conv row (int8 GEMM for GEMM rows). The `runs` column counts how many input
rows were merged.

usage: merge_runs.py out.csv run1.csv run2.csv ...
"""
import csv
import sys


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def key(r):
    return (r["bench"], r["name"], r["impl"], r["isa"], r.get("kernel", ""), r["batch"], r["threads"], r["w_bits"],
            r["a_bits"])


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    out_path, inputs = sys.argv[1], sys.argv[2:]
    best, order, counts, cols = {}, [], {}, None
    for path in inputs:
        with open(path, newline="") as f:
            rd = csv.DictReader(f)
            cols = cols or rd.fieldnames
            for r in rd:
                k = key(r)
                if k not in best:
                    order.append(k)
                    best[k] = r
                    counts[k] = 1
                    continue
                counts[k] += 1
                old, new = num(best[k].get("gops")), num(r.get("gops"))
                if new is not None and (old is None or new > old):
                    best[k] = r
    rows = [best[k] for k in order]
    peak = {}
    for r in rows:
        if r["bench"] == "peak":
            peak[(r["impl"], r["threads"])] = num(r["gops"]) or 0
    def isa_peak(isa, t):
        if isa == "avx512":
            return max(peak.get(("vnni_vpdpbusd_zmm", t), 0), peak.get(("vnni_vpdpbusd_ymm", t), 0))
        if isa == "avx2":
            return peak.get(("avx2_maddubs_maddwd_i32", t), 0)
        if isa == "peer":
            return None
        return 0
    base = {}
    for r in rows:
        if r["bench"] == "peak":
            continue
        shape = (r["bench"], r["name"], r["batch"], r["threads"])
        if r["isa"] == "peer":
            if r["impl"] == "onednn_conv_int8" or (r["bench"] == "gemm" and r["impl"] == "onednn_gemm_u8s8s32"):
                base[shape + ("onednn",)] = num(r["gops"])
        elif r["w_bits"] == "8" and r["a_bits"] == "8" and r["impl"] in ("mixq", "mixq_taps"):
            base[shape + (r["isa"],)] = num(r["gops"])
    for r in rows:
        if r["bench"] == "peak" or num(r.get("gops")) is None:
            continue
        g = num(r["gops"])
        shape = (r["bench"], r["name"], r["batch"], r["threads"])
        if r["isa"] != "peer":
            p = isa_peak(r["isa"], r["threads"])
            if p:
                r["peak_gops"], r["pct_peak"] = f"{p:.1f}", f"{100 * g / p:.1f}"
            w8 = base.get(shape + (r["isa"],))
            if w8:
                r["ratio_w8a8"] = f"{g / w8:.3f}"
            dn = base.get(shape + ("onednn",))
            if dn:
                r["ratio_onednn"] = f"{g / dn:.3f}"
    cols = list(cols) + ["runs"]
    with open(out_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for k, r in zip(order, rows):
            r["runs"] = counts[k]
            w.writerow(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
