#!/usr/bin/python3
"""Peer benchmark for bench/deploy/compare.py: PyTorch ResNet20 inference on CPU.

  --quant none      FP32 eval-mode forward (torch.no_grad; --channels-last for NHWC)
  --quant onednn    int8 static quantization (FX graph mode: conv+bn+relu fused,
  --quant qnnpack   per-tensor activations, calibrated on random batches) on that engine
Prints one JSON line: images/s at --batch and --threads, and the bytes of the
saved model (torch.save of the state dict, the file a user would ship).
Random weights and batch-norm statistics, random CIFAR-shaped inputs.
"""
import argparse
import io
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from pytorch_resnet20 import ResNetCifar  # noqa: E402


def build(quant):
    torch.manual_seed(0)
    model = ResNetCifar()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    if quant == "none":
        return model
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = quant
    example = torch.randn(8, 3, 32, 32)
    prepared = prepare_fx(model, get_default_qconfig_mapping(quant), (example,))
    with torch.no_grad():
        for _ in range(8):
            prepared(torch.randn(32, 3, 32, 32))
    return convert_fx(prepared)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quant", choices=["none", "onednn", "qnnpack"], default="none")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--channels-last", action="store_true", help="FP32 only: NHWC memory format")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.quant)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    x = torch.randn(args.batch, 3, 32, 32)
    if args.channels_last and args.quant == "none":
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        n, t0 = 0, time.perf_counter()
        while True:
            model(x)
            n += 1
            dt = time.perf_counter() - t0
            if dt >= args.seconds and n >= 3:
                break
    print(json.dumps({
        "impl": "pytorch-" + torch.__version__ + ("-fp32" if args.quant == "none" else "-int8-" + args.quant)
                + ("-channels-last" if args.channels_last else ""),
        "threads": args.threads, "batch": args.batch,
        "images_per_s": args.batch * n / dt, "model_bytes": buf.getbuffer().nbytes}))


if __name__ == "__main__":
    main()
