#!/usr/bin/env python3
"""Plot a training run's metrics.csv (written by mixq_train_cifar10) as SVG.

  python3 examples/train_cifar10/plot_metrics.py runs/fp32/metrics.csv out.svg

Left panel: train and test accuracy per epoch; right panel: train and test
loss. Python standard library only (hand-written SVG).
"""
import csv
import sys


def panel(x0, y0, w, h, series, ymin, ymax, title, xmax, legend_bottom):
    out = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>',
           f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-size="14">{title}</text>']
    for i in range(6):
        v = ymin + (ymax - ymin) * i / 5
        y = y0 + h - h * i / 5
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{v:.2f}</text>')
    for e in range(0, xmax + 1, max(1, xmax // 6)):
        x = x0 + w * e / max(1, xmax)
        out.append(f'<text x="{x}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">{e}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle" font-size="12">epoch</text>')
    for k, (name, color, pts) in enumerate(series):
        pts = [(e, v) for e, v in pts if v >= 0]
        if not pts:
            continue
        path = " ".join(f"{x0 + w * e / max(1, xmax):.1f},{y0 + h - h * (v - ymin) / (ymax - ymin):.1f}"
                        for e, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = y0 + h - 40 + 16 * k if legend_bottom else y0 + 18 + 16 * k
        out.append(f'<text x="{x0 + w - 10}" y="{ly}" text-anchor="end" font-size="12" fill="{color}">{name}</text>')
    return out


def main():
    if len(sys.argv) != 3:
        print("usage: plot_metrics.py metrics.csv out.svg", file=sys.stderr)
        sys.exit(2)
    try:
        rows = list(csv.DictReader(open(sys.argv[1])))
    except OSError as e:
        print(f"plot_metrics.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    if not rows:
        print(f"plot_metrics.py: error: {sys.argv[1]}: no rows", file=sys.stderr)
        sys.exit(2)
    ep = [int(r["epoch"]) for r in rows]
    col = lambda k: [(e, float(r[k])) for e, r in zip(ep, rows)]
    losses = [v for _, v in col("train_loss") + col("test_loss") if v >= 0]
    xmax = max(ep)
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="380" font-family="sans-serif">',
           '<rect width="900" height="380" fill="white"/>']
    svg += panel(60, 40, 360, 280, [("train accuracy", "#1f77b4", col("train_acc")),
                                    ("test accuracy", "#d62728", col("test_acc"))], 0.0, 1.0, "accuracy", xmax, True)
    svg += panel(510, 40, 360, 280, [("train loss", "#1f77b4", col("train_loss")),
                                     ("test loss", "#d62728", col("test_loss"))],
                 0.0, max(losses) * 1.05, "loss", xmax, False)
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
