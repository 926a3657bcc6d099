#!/usr/bin/env bash
# The README's first command: installs, builds, writes the demo dataset and trains the demo
# config on CPU. The demo backbones are tiny and UNTRAINED: this shows the pipeline, not the
# published accuracy (export DINOv2 / MAE with scripts/export_backbone.py for real use).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
qfae=./build/qfae
"$qfae" prepare --synthetic runs/demo-data --image-size 64
"$qfae" train --config configs/demo.yaml
"$qfae" eval --checkpoint runs/demo/latest
echo
echo "[demo] run folder: runs/demo/latest (config.yaml, metrics.jsonl, checkpoints/)"
echo "[demo] evaluation: runs/demo/latest/eval/test-last/ (metrics.json, scores.csv, roc.png,"
echo "[demo]   pr.png, maps/anomalous/*.png: input | anomaly map | overlay with the lesion outline)"
echo "[demo] the demo backbones are untrained; see README.md for real backbones"
