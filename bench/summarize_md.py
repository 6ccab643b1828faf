#!/usr/bin/env python3
"""Markdown tables from a (merged) mixq_bench_qconv CSV (stdlib only).

usage: summarize_md.py results.csv > tables.md
Prints: the measured peaks; per (batch, threads) a table of GOP/s on the
W=A diagonal for each ISA next to the peers; and per ISA the full W x A
ratio-to-W8A8 grid for one shape.
"""
import csv
import sys


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main():
    rows = list(csv.DictReader(open(sys.argv[1], newline="")))
    heat_shape = sys.argv[2] if len(sys.argv) > 2 else "s1_32to32_16x16"
    threads = sorted({r["threads"] for r in rows if r["threads"]}, key=int)
    print("### Measured peaks (GOP/s or GFLOP/s; best over runs)\n")
    print("| probe | " + " | ".join(f"{t} thread(s)" for t in threads) + " |")
    print("|---|" + "---|" * len(threads))
    impls = []
    for r in rows:
        if r["bench"] == "peak" and r["impl"] not in impls:
            impls.append(r["impl"])
    for impl in impls:
        cells = []
        for t in threads:
            v = [num(r["gops"]) for r in rows if r["bench"] == "peak" and r["impl"] == impl and r["threads"] == t]
            cells.append(f"{max(v):.0f}" if v and max(v) else "-")
        print(f"| {impl} | " + " | ".join(cells) + " |")
    print()
    names = []
    for r in rows:
        if r["bench"] in ("conv", "gemm") and r["name"] not in names:
            names.append(r["name"])
    isas = [i for i in ("avx512", "avx2", "neon_dotprod", "neon", "scalar") if any(r["isa"] == i for r in rows)]
    batches = sorted({r["batch"] for r in rows if r["bench"] == "conv"}, key=int)
    for b in batches:
        for t in threads:
            print(f"### Batch {b}, {t} thread(s): GOP/s (2*MAC/min time); mixq W=A bits 8/6/4/3/2, "
                  f"(x) = ratio to the same ISA's W8A8, [y%] = share of the ISA's measured int8 peak\n")
            head = "| shape | oneDNN int8 | oneDNN f32 | OpenBLAS f32 | Eigen f32 | " + " | ".join(
                f"mixq {i} W8A8 | {i} W6A6 | {i} W4A4 | {i} W3A3 | {i} W2A2" for i in isas) + " | best mixq / oneDNN int8 |"
            print(head)
            print("|---" * (head.count("|") - 1) + "|")
            for n in names:
                sel = [r for r in rows if r["name"] == n and r["threads"] == t and
                       (r["batch"] == b or r["bench"] == "gemm")]
                if not sel:
                    continue
                def peer(*impls):
                    for im in impls:
                        for r in sel:
                            if r["impl"] == im and num(r["gops"]):
                                return num(r["gops"])
                    return None
                dn = peer("onednn_conv_int8", "onednn_gemm_u8s8s32")
                cells = [n, dn, peer("onednn_conv_f32", "onednn_sgemm"), peer("openblas_sgemm"), peer("eigen_sgemm")]
                cells = [cells[0]] + [f"{c:.0f}" if c else "-" for c in cells[1:]]
                best = 0
                for i in isas:
                    for k in (8, 6, 4, 3, 2):
                        rr = [r for r in sel if r["isa"] == i and r["impl"] in ("mixq", "mixq_taps") and
                              r["w_bits"] == str(k) and r["a_bits"] == str(k) and num(r["gops"])]
                        if rr:
                            g = num(rr[0]["gops"])
                            best = max(best, g)
                            ratio = num(rr[0].get("ratio_w8a8"))
                            pct = num(rr[0].get("pct_peak"))
                            s = f"{g:.0f}"
                            if k != 8 and ratio:
                                s += f" ({ratio:.2f}x)"
                            if k == 8 and pct:
                                s += f" [{pct:.0f}%]"
                            cells.append(s)
                        else:
                            cells.append("-")
                cells.append(f"{best / dn:.2f}" if dn and best else "-")
                print("| " + " | ".join(cells) + " |")
            print()
    if any(num(r.get("res_overhead_pct")) is not None for r in rows):
        print("### Fused residual: extra time over the same conv without it (W=A rows, min ms)\n")
        print("| shape | batch | threads | " + " | ".join(f"{i} W8A8 | {i} W4A4 | {i} W2A2" for i in isas) + " |")
        print("|---" * (3 + 3 * len(isas)) + "|")
        for n in names:
            for b in batches:
                for t in threads:
                    cells = []
                    for i in isas:
                        for k in (8, 4, 2):
                            rr = [r for r in rows if r["name"] == n and r["batch"] == b and r["threads"] == t and
                                  r["isa"] == i and r["impl"] == "mixq" and r["w_bits"] == str(k) and
                                  r["a_bits"] == str(k) and num(r.get("res_overhead_pct")) is not None]
                            cells.append(f"+{num(rr[0]['res_overhead_pct']):.1f} %" if rr else "-")
                    if any(c != "-" for c in cells):
                        print(f"| {n} | {b} | {t} | " + " | ".join(cells) + " |")
        print()
    for i in isas:
        for b in (batches[-1:] if batches else []):
            t = threads[0]
            print(f"### {i}: {heat_shape}, batch {b}, {t} thread: GOP/s ratio to W8A8 (rows W, columns A)\n")
            print("| W \\ A | " + " | ".join(f"A{a}" for a in range(2, 9)) + " |")
            print("|---" * 8 + "|")
            for w in range(2, 9):
                cells = []
                for a in range(2, 9):
                    rr = [r for r in rows if r["name"] == heat_shape and r["batch"] == b and r["threads"] == t and
                          r["isa"] == i and r["impl"] == "mixq" and r["w_bits"] == str(w) and r["a_bits"] == str(a)]
                    v = num(rr[0].get("ratio_w8a8")) if rr else None
                    cells.append(f"{v:.2f}" if v else "-")
                print(f"| W{w} | " + " | ".join(cells) + " |")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
