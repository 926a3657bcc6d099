#!/usr/bin/env python3
"""bf16 against fp32 on the demo, on this machine's device (the CPU by default): trains
configs/demo.yaml in fp32 and in bf16, evaluates the fp32 model at both precisions and the bf16
model in bf16, and prints a Markdown table: wall time of each command, image AUROC, and for the
fp32 model scored both ways the AUROC difference and the Spearman rank correlation of the
per-image scores. Needs the demo's data (bash scripts/demo.sh writes runs/demo-mri). On a CPU
without AMX or AVX512-BF16 the bf16 runs compute in fp32 (qfae says so), and the table shows it.

Usage: scripts/checks/bf16_demo.py [--qfae build/qfae] [--device cpu] [--epochs N] [--keep DIR]
"""
import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ranks(values):
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a, b):
    """Pearson's correlation of the ranks."""
    ra, rb = ranks(a), ranks(b)
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5


def scores(folder):
    with open(folder / "scores.csv", newline="") as f:
        return {row["path"]: float(row["score"]) for row in csv.DictReader(f)}


def run(cmd):
    print("[bf16-demo] " + " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"[bf16-demo] failed ({done.returncode}): {done.stderr[-2000:]}")
    notes = [line for line in done.stderr.splitlines() if "[precision]" in line]
    for line in notes:
        print("  " + line, file=sys.stderr)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qfae", default="build/qfae")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=0, help="train.epochs (0: the config's)")
    parser.add_argument("--keep", help="write the runs here instead of a temporary folder")
    args = parser.parse_args()
    if not Path("runs/demo-mri").is_dir():
        sys.exit("[bf16-demo] runs/demo-mri is missing: run bash scripts/demo.sh first")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qfae-bf16-demo."))
    work.mkdir(parents=True, exist_ok=True)
    common = ["--device", args.device, "-q"]
    if args.epochs:
        common += ["--set", f"train.epochs={args.epochs}"]
    rows, evals = [], {}
    for precision in ("fp32", "bf16"):
        out = work / f"train-{precision}"
        seconds = run([args.qfae, "train", "--config", "configs/demo.yaml", "-o", str(out),
                       "--set", f"name=demo-{precision}", "--set", f"train.precision={precision}",
                       "--set", f"eval.precision={precision}"] + common)
        rows.append((f"train in {precision} (validation in {precision})", seconds, None))
        checkpoint = out / f"demo-{precision}" / "latest"
        for scoring in (("fp32", "bf16") if precision == "fp32" else ("bf16",)):
            folder = work / f"eval-{precision}-model-{scoring}"
            seconds = run([args.qfae, "eval", "--checkpoint", str(checkpoint), "-o", str(folder),
                           "--set", f"eval.precision={scoring}", "--device", args.device, "-q"])
            metrics = json.loads((folder / "metrics.json").read_text())
            evals[(precision, scoring)] = folder
            rows.append((f"eval the {precision} model in {scoring} "
                         f"(ran {metrics['precision']['eval']}, frozen weights "
                         f"{metrics['precision']['frozen_weights']})",
                         seconds, metrics["image"]["auroc"]))
    a, b = scores(evals[("fp32", "fp32")]), scores(evals[("fp32", "bf16")])
    paths = sorted(a)
    rho = spearman([a[p] for p in paths], [b[p] for p in paths])
    auroc = {k: json.loads((v / "metrics.json").read_text())["image"]["auroc"]
             for k, v in evals.items()}
    print(f"Demo (`configs/demo.yaml`{', ' + str(args.epochs) + ' epochs' if args.epochs else ''}) "
          f"on {args.device}, {args.qfae}:\n")
    print("| command | wall s | image AUROC |")
    print("|---|---:|---:|")
    for name, seconds, value in rows:
        print(f"| {name} | {seconds:.1f} | {'' if value is None else f'{value:.4f}'} |")
    print(f"\nThe fp32 model scored in bf16 against fp32: image AUROC "
          f"{auroc[('fp32', 'bf16')] - auroc[('fp32', 'fp32')]:+.4f}, Spearman rank correlation of "
          f"the {len(paths)} per-image scores {rho:.4f}. The bf16-trained model in bf16 against "
          f"the fp32 model in fp32: image AUROC {auroc[('bf16', 'bf16')] - auroc[('fp32', 'fp32')]:+.4f}.")
    print(f"\n[bf16-demo] runs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
