#!/usr/bin/env python3
"""configs/brats.yaml on the full-size random-init exports, on the CPU: the model summary's
trainable count, one training step at batch 2 on a tiny synthetic dataset, then qfae eval of that
checkpoint (exit codes, finite metrics.json, one scores.csv row per test image).

Usage: VENV_PYTHON test_brain_config_run.py QFAE_BINARY   (exit 77 without timm)
"""
import csv
import json
import math
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import timm_reference as ref  # noqa: E402

ref.require_timm()

qfae = sys.argv[1]
config = str(ref.REPO / "configs/brats.yaml")
TEST_NORMAL, TEST_ANOMALOUS = 1, 1  # AUROC and AP need one of each
failures = ref.FAILURES
check = ref.check
start = time.time()


def run(*args):
    began = time.time()
    r = subprocess.run([qfae, *args], capture_output=True, text=True)
    print(f"$ qfae {' '.join(args)}\n  -> exit {r.returncode} in {time.time() - began:.0f} s")
    if r.returncode != 0:
        print(r.stdout[-5000:], r.stderr[-5000:])
    return r


def finite_numbers(value):
    """Every number in a JSON value (nulls are allowed: metrics a split cannot define)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [n for v in value for n in finite_numbers(v)]
    return []


encoder = ref.cached_export(ref.ENCODER_FILE)
perceptual = ref.cached_export(ref.PERCEPTUAL_FILE)
with ref.temp_folder("brain-run") as tmp:
    tmp = pathlib.Path(tmp)
    encoder, perceptual = ref.pin(encoder, tmp), ref.pin(perceptual, tmp)
    sets = ["--set", f"backbone.encoders=[{encoder}]", "--set", f"backbone.perceptual={perceptual}"]

    r = run("config", "--config", config, *sets, "--summary")
    check(r.returncode == 0, "qfae config --summary exits 0")
    check("(52289024)" in r.stdout, "52,289,024 trainable parameters: "
          + next((line for line in r.stdout.splitlines() if "trainable" in line), "none shown"))

    data = tmp / "data"
    r = run("prepare", "--synthetic", str(data), "--image-size", "240", "--train", "2", "--val",
            "1", "--test-normal", str(TEST_NORMAL), "--test-anomalous", str(TEST_ANOMALOUS),
            "--seed", "5")
    check(r.returncode == 0, "qfae prepare --synthetic exits 0")

    # One step: 2 training images at batch 2, one epoch, then the end-of-training validation.
    train_sets = sets + [f"--set={s}" for s in (
        f"data.root={data}", "data.layout=bmad", "data.workers=1", "train.batch_size=2",
        "train.epochs=1", "train.max_steps=1", "train.log_every=1", "eval.batch_size=2",
        "eval.bootstrap=10")]
    runs = tmp / "runs"
    r = run("train", "--config", config, *train_sets, "--device", "cpu", "--output-dir",
            str(runs), "--seed", "1")
    check(r.returncode == 0, "qfae train (1 step, batch 2) exits 0")
    run_dir = next((p for p in runs.glob("*/latest")), None) if runs.is_dir() else None
    check(run_dir is not None, "the run folder has a latest link")
    if run_dir is not None:
        events = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train = [(e["step"], e["loss"]) for e in events if e.get("event") == "train"]
        val = [e["loss"] for e in events if e.get("event") == "val"]
        check(len(train) == 1 and math.isfinite(train[0][1]),
              f"metrics.jsonl logs one training step with a finite loss: {train}")
        check(len(val) == 1 and math.isfinite(val[0]), f"one finite validation loss: {val}")

        r = run("eval", "--checkpoint", str(run_dir), "--device", "cpu")
        check(r.returncode == 0, "qfae eval exits 0")
        found = list(run_dir.glob("eval/*/metrics.json"))
        check(len(found) == 1, f"one metrics.json: {[str(p) for p in found]}")
        if found:
            metrics = json.loads(found[0].read_text())
            numbers = finite_numbers(metrics)
            check(bool(numbers) and all(math.isfinite(n) for n in numbers),
                  f"metrics.json holds {len(numbers)} numbers, all finite")
            print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))},
                             indent=None)[:1500])
            with open(found[0].parent / "scores.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            check(len(rows) == TEST_NORMAL + TEST_ANOMALOUS,
                  f"scores.csv has one row per test image ({len(rows)})")
            check(all(math.isfinite(float(row["score"])) for row in rows),
                  "every score is finite")
print(f"[brain-run] {time.time() - start:.0f} s, {len(failures)} failed")
sys.exit(1 if failures else 0)
