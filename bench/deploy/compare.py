#!/usr/bin/python3
"""ResNet20 inference: mixq's integer deploy runtime against PyTorch, interleaved.

For each batch size and thread count, each repetition runs every program once,
one after the other in a fresh process (A B C ... A B C ...):
  mixq deploy runtime per bit configuration (bench/deploy_infer.cpp), and the
  configurations named by --tuned again with --tune (plan by measurement),
  PyTorch FP32 (NCHW and channels-last), PyTorch int8 static quantization on
  the onednn and qnnpack engines (bench/deploy/pytorch_resnet20_infer.py),
  and mixq's own FP32 inference (bench/train/resnet20_step.cpp --mode infer)
with OMP_NUM_THREADS set and OMP_PROC_BIND=true. Prints a Markdown table of
the median images/s per program with its spread, the model bytes, mixq's
ratio to the better PyTorch int8 engine, and writes every sample to --csv.

  /usr/bin/python3 bench/deploy/compare.py --build build --reps 3 \\
      --batch 1 128 --threads 1 2 --csv deploy_runs.csv
"""
import argparse
import csv
import importlib.util
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# run(cmd, threads): one fresh process with pinned OpenMP threads, its last JSON line
_spec = importlib.util.spec_from_file_location("train_compare",
                                               os.path.join(HERE, "..", "train", "compare.py"))
_train_compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_compare)
run = _train_compare.run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build", help="build dir with bench/ binaries")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--bits", nargs="+", default=["w8a8", "w4a4", "w2a2", "mixed"])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per sample")
    ap.add_argument("--no-mixq-fp32", action="store_true")
    ap.add_argument("--tuned", nargs="*", default=["mixed"],
                    help="bit configurations also run with --tune (plan by measurement), "
                         "as mixq-<bits>-tuned")
    ap.add_argument("--csv", default="")
    args = ap.parse_args()

    dinfer = os.path.join(args.build, "bench", "mixq_bench_deploy_infer")
    r20 = os.path.join(args.build, "bench", "mixq_bench_resnet20")
    py = [sys.executable, os.path.join(HERE, "pytorch_resnet20_infer.py")]
    secs = str(args.seconds)

    def programs(b, t):
        p = {}
        for bits in args.bits:
            p["mixq-" + bits] = [dinfer, "--bits", bits, "--batch", str(b), "--threads", str(t),
                                 "--seconds", secs, "--samples", "3", "--json"]
        for bits in args.tuned:
            p["mixq-" + bits + "-tuned"] = [dinfer, "--bits", bits, "--batch", str(b), "--threads",
                                            str(t), "--seconds", secs, "--samples", "3", "--json",
                                            "--tune"]
        p["pytorch-fp32"] = py + ["--quant", "none", "--batch", str(b), "--threads", str(t),
                                  "--seconds", secs]
        p["pytorch-fp32-cl"] = py + ["--quant", "none", "--channels-last", "--batch", str(b),
                                     "--threads", str(t), "--seconds", secs]
        for eng in ("onednn", "qnnpack"):
            p["pytorch-int8-" + eng] = py + ["--quant", eng, "--batch", str(b), "--threads", str(t),
                                             "--seconds", secs]
        if not args.no_mixq_fp32 and os.path.exists(r20):
            steps = "200" if b == 1 else "5"
            p["mixq-fp32"] = [r20, "--mode", "infer", "--batch", str(b), "--threads", str(t),
                              "--steps", steps, "--warmup", "2"]
        return p

    rows, table = [], []
    for b in args.batch:
        for t in args.threads:
            progs = programs(b, t)
            res = {k: [] for k in progs}
            meta = {}
            for r in range(args.reps):
                for name, cmd in progs.items():
                    j = run(cmd, t)
                    res[name].append(j["images_per_s"])
                    meta[name] = j
                    rows.append(dict(rep=r, batch=b, threads=t, program=name,
                                     images_per_s=j["images_per_s"],
                                     model_bytes=j.get("model_bytes", ""),
                                     arena_bytes=j.get("arena_bytes", "")))
                    print(f"  rep {r} batch {b} threads {t} {name:22s} {j['images_per_s']:10.1f} img/s",
                          file=sys.stderr, flush=True)
            int8 = max(statistics.median(res["pytorch-int8-onednn"]),
                       statistics.median(res["pytorch-int8-qnnpack"]))
            for name, v in res.items():
                med = statistics.median(v)
                table.append((b, t, name, med, min(v), max(v), meta[name].get("model_bytes", ""),
                              meta[name].get("arena_bytes", ""), med / int8))
    print("| batch | threads | program | images/s (median) | min | max | model bytes | arena bytes | x best PyTorch int8 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b, t, name, med, lo, hi, mb, ab, ratio in table:
        print(f"| {b} | {t} | {name} | {med:.1f} | {lo:.1f} | {hi:.1f} | {mb} | {ab} | {ratio:.2f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
