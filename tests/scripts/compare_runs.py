#!/usr/bin/env python3
"""Compares two qfae run folders: their logged training losses and their last checkpoints.

  compare_runs.py RUN_A RUN_B [--steps N --loss-rtol R] [--last-loss-rtol R] [--weight-atol A]

--steps/--loss-rtol: the first N logged train losses agree to R (relative), step by step.
--last-loss-rtol: the last logged train losses agree to R, at the same step.
--weight-atol: checkpoints/last/model.safetensors hold the same tensors, equal to A (absolute).
The safetensors file is read with the standard library (8-byte header length, JSON header, raw
little-endian float32 data), so the test needs no numpy.
"""
import argparse
import json
import struct
import sys


def train_losses(run):
    out = []
    with open(run + "/metrics.jsonl") as f:
        for line in f:
            event = json.loads(line)
            if event["event"] == "train":
                out.append((event["step"], event["loss"]))
    return out


def tensors(run):
    with open(run + "/checkpoints/last/model.safetensors", "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{name}: dtype {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--steps", type=int)
    p.add_argument("--loss-rtol", type=float)
    p.add_argument("--last-loss-rtol", type=float)
    p.add_argument("--weight-atol", type=float)
    args = p.parse_args()
    la, lb = train_losses(args.a), train_losses(args.b)
    failed = False
    if args.steps:
        if len(la) < args.steps or len(lb) < args.steps:
            sys.exit(f"fewer than {args.steps} logged steps: {len(la)}, {len(lb)}")
        worst = 0.0
        for (sa, xa), (sb, xb) in zip(la[:args.steps], lb[:args.steps]):
            if sa != sb:
                sys.exit(f"steps differ: {sa} vs {sb}")
            rel = abs(xa - xb) / abs(xa)
            worst = max(worst, rel)
            if rel > args.loss_rtol:
                print(f"step {sa}: loss {xa!r} vs {xb!r} (relative {rel:.2e})")
                failed = True
        print(f"{args.steps} steps: losses agree to {worst:.2e} relative (limit {args.loss_rtol})")
    if args.last_loss_rtol is not None:
        (sa, xa), (sb, xb) = la[-1], lb[-1]
        rel = abs(xa - xb) / abs(xa)
        print(f"last logged loss: step {sa} {xa!r}, step {sb} {xb!r} (relative {rel:.2e})")
        failed |= sa != sb or rel > args.last_loss_rtol
    if args.weight_atol is not None:
        ta, tb = tensors(args.a), tensors(args.b)
        if ta.keys() != tb.keys():
            sys.exit(f"different tensors: {sorted(ta.keys() ^ tb.keys())}")
        worst = max(abs(x - y) for k in ta for x, y in zip(ta[k], tb[k]))
        count = sum(len(v) for v in ta.values())
        print(f"{len(ta)} tensors, {count} weights: max difference {worst:.2e} "
              f"(limit {args.weight_atol})")
        failed |= worst > args.weight_atol
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
