#!/usr/bin/env python3
"""Plot mixq_bench_qconv CSV output as a hand-written SVG (stdlib only).

Top: one panel per shape, GOP/s against the bit-width on the W=A diagonal,
one line per ISA, with oneDNN's int8 (dashed) and the measured int8 peak of
each ISA (dotted) for reference. Bottom: per-ISA heatmaps of GOP/s relative
to the same ISA's W8A8 for every (b_w, b_a) on one shape.

usage: plot_gops.py results.csv out.svg [--batch 128] [--threads 1]
                    [--heat-shape s1_32to32_16x16]
"""
import argparse
import csv
import html
import math
import sys

COLORS = {"avx512": "#1f77b4", "avx2": "#d62728", "scalar": "#7f7f7f",
          "neon": "#2ca02c", "neon_dotprod": "#9467bd", "avx512_lut6": "#ff7f0e"}


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load(path):
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f)]


def esc(s):
    return html.escape(str(s), quote=True)


def nice_ceil(v):
    """Smallest 1, 2 or 5 times a power of ten that is >= v."""
    p = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


def panel(out, x0, y0, w, h, title, series, refs):
    """series: {label: [(bits, gops)]}; refs: [(label, value, dash, color)]."""
    out.append(f'<g transform="translate({x0},{y0})">')
    out.append(f'<text x="{w / 2}" y="-8" text-anchor="middle" font-size="12" font-weight="bold">{esc(title)}</text>')
    vals = [g for pts in series.values() for _, g in pts] + [v for _, v, _, _ in refs]
    ymax = max(vals) if vals else 1.0
    ymax = nice_ceil(max(ymax, 1.0))
    step = ymax / 5
    out.append(f'<rect x="0" y="0" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for i in range(6):
        yy = h - h * i / 5
        out.append(f'<line x1="0" y1="{yy:.1f}" x2="{w}" y2="{yy:.1f}" stroke="#eee"/>')
        out.append(f'<text x="-4" y="{yy + 3:.1f}" text-anchor="end" font-size="9">{step * i:g}</text>')
    def xpos(b):
        return w * (b - 2) / 6
    for b in range(2, 9):
        out.append(f'<text x="{xpos(b):.1f}" y="{h + 12}" text-anchor="middle" font-size="9">{b}</text>')
    out.append(f'<text x="{w / 2}" y="{h + 25}" text-anchor="middle" font-size="10">bits (W = A)</text>')
    out.append(f'<text x="-34" y="{h / 2}" text-anchor="middle" font-size="10" '
               f'transform="rotate(-90 -34 {h / 2})">GOP/s</text>')
    for label, v, dash, color in refs:
        yy = h - h * v / ymax
        out.append(f'<line x1="0" y1="{yy:.1f}" x2="{w}" y2="{yy:.1f}" stroke="{color}" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{w - 2}" y="{yy - 2:.1f}" text-anchor="end" font-size="8" fill="{color}">{esc(label)}</text>')
    for label, pts in series.items():
        pts = sorted(pts)
        color = COLORS.get(label, "#000")
        d = " ".join(f"{xpos(b):.1f},{h - h * g / ymax:.1f}" for b, g in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for b, g in pts:
            out.append(f'<circle cx="{xpos(b):.1f}" cy="{h - h * g / ymax:.1f}" r="2.5" fill="{color}"/>')
    out.append("</g>")


def heat_color(r):
    # 1.0 = white; > 1 green, < 1 red, saturating at 2x / 0.5x
    if r is None:
        return "#ddd"
    t = max(-1.0, min(1.0, math.log2(r)))
    if t >= 0:
        c = int(255 * (1 - t))
        return f"rgb({c},{255},{c})"
    c = int(255 * (1 + t))
    return f"rgb(255,{c},{c})"


def heatmap(out, x0, y0, cell, title, grid):
    """grid: {(bw, ba): ratio}."""
    out.append(f'<g transform="translate({x0},{y0})">')
    out.append(f'<text x="{3.5 * cell}" y="-8" text-anchor="middle" font-size="12" font-weight="bold">{esc(title)}</text>')
    for bw in range(2, 9):
        for ba in range(2, 9):
            r = grid.get((bw, ba))
            x, y = (ba - 2) * cell, (bw - 2) * cell
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{heat_color(r)}" stroke="#fff"/>')
            if r is not None:
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 3}" text-anchor="middle" font-size="9">{r:.2f}</text>')
    for b in range(2, 9):
        out.append(f'<text x="{(b - 2) * cell + cell / 2}" y="{7 * cell + 12}" text-anchor="middle" font-size="9">A{b}</text>')
        out.append(f'<text x="-4" y="{(b - 2) * cell + cell / 2 + 3}" text-anchor="end" font-size="9">W{b}</text>')
    out.append("</g>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("svg")
    ap.add_argument("--batch", default="128")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--heat-shape", default="s1_32to32_16x16")
    a = ap.parse_args()
    rows = load(a.csv)
    shapes = []
    for r in rows:
        if r.get("bench") in ("conv", "gemm") and r["name"] not in shapes and not r["name"].startswith("first"):
            shapes.append(r["name"])

    def pick(r, name):
        batch_ok = r["batch"] == a.batch or r["bench"] == "gemm"
        return r["name"] == name and batch_ok and r["threads"] == a.threads and num(r.get("gops"))

    peaks = {}
    for r in rows:
        if r.get("bench") == "peak" and r["threads"] == a.threads:
            peaks[r["impl"]] = num(r["gops"])
    isa_peak = {"avx512": max(peaks.get("vnni_vpdpbusd_zmm") or 0, peaks.get("vnni_vpdpbusd_ymm") or 0),
                "avx2": peaks.get("avx2_maddubs_maddwd_i32") or 0}

    pw, ph, gapx, gapy, cols = 260, 170, 80, 70, 3
    nrow = (len(shapes) + cols - 1) // cols
    heat_isas = sorted({r["isa"] for r in rows if r.get("impl") == "mixq" and num(r.get("gops"))})
    cell = 26
    width = 60 + cols * (pw + gapx)
    height = 60 + nrow * (ph + gapy) + (7 * cell + 70 if heat_isas else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
           f'mixq integer conv GOP/s vs bit-width (batch {esc(a.batch)}, {esc(a.threads)} thread(s))</text>']
    # legend
    lx = 60
    for isa in ["avx512", "avx512_lut6", "avx2", "scalar", "neon", "neon_dotprod"]:
        lut6 = isa == "avx512_lut6"
        if any((r.get("impl") == "mixq_lut6") if lut6 else (r.get("isa") == isa) for r in rows):
            label = "mixq avx512 LUT6 (planes)" if lut6 else f"mixq {isa}"
            out.append(f'<rect x="{lx}" y="28" width="12" height="4" fill="{COLORS[isa]}"/>'
                       f'<text x="{lx + 16}" y="33" font-size="10">{label}</text>')
            lx += 170 if lut6 else 110
    out.append(f'<text x="{lx}" y="33" font-size="10">dashed: oneDNN int8; dotted: measured int8 peak of the ISA</text>')
    for i, name in enumerate(shapes):
        series = {}
        onednn = None
        for r in rows:
            if not pick(r, name):
                continue
            if r["impl"] == "mixq" and r["w_bits"] == r["a_bits"]:
                series.setdefault(r["isa"], []).append((int(r["w_bits"]), num(r["gops"])))
            if r["impl"] == "mixq_lut6" and r["w_bits"] == r["a_bits"] and num(r["gops"]):
                series.setdefault("avx512_lut6", []).append((int(r["w_bits"]), num(r["gops"])))
            if r["impl"] in ("onednn_conv_int8",) or (r["bench"] == "gemm" and r["impl"] == "onednn_gemm_u8s8s32"):
                onednn = num(r["gops"])
        refs = []
        if onednn:
            refs.append(("oneDNN int8", onednn, "6,3", "#000"))
        for isa in series:
            if isa_peak.get(isa):
                refs.append((f"{isa} peak", isa_peak[isa], "2,2", COLORS.get(isa, "#000")))
        x0 = 60 + (i % cols) * (pw + gapx)
        y0 = 60 + (i // cols) * (ph + gapy)
        panel(out, x0, y0, pw, ph, name, series, refs)
    if heat_isas:
        y0 = 60 + nrow * (ph + gapy) + 20
        for j, isa in enumerate(heat_isas):
            grid = {}
            for r in rows:
                if pick(r, a.heat_shape) and r["impl"] == "mixq" and r["isa"] == isa:
                    grid[(int(r["w_bits"]), int(r["a_bits"]))] = num(r.get("ratio_w8a8"))
            heatmap(out, 80 + j * (7 * cell + 90), y0, cell, f"{isa}: {a.heat_shape} vs W8A8", grid)
    out.append("</svg>")
    with open(a.svg, "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
