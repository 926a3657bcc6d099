#!/usr/bin/env bash
# The README's first command: installs the Debian packages (the Colin27 brain comes with
# mricron-data), builds qfae, slices the brain into a demo dataset with synthetic lesions in the
# held-out slices, trains configs/demo.yaml on CPU and evaluates it.
# The demo backbones are tiny and UNTRAINED: this shows the pipeline on real MRI, not the
# published accuracy (export DINOv2 / MAE with scripts/export_backbone.py for real use).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/build.sh qfae
qfae=./build/qfae
brain=/usr/share/mricron/templates/ch2bet.nii.gz
if [[ ! -f $brain ]]; then
  echo "[demo] $brain is missing: install Debian's mricron-data (bash scripts/install-deps.sh)" >&2
  exit 2
fi
echo "[demo] note: the demo backbones (demo/backbones/) are tiny and UNTRAINED;"
echo "[demo]   real use exports DINOv2 / MAE with scripts/export_backbone.py (see README.md)"
# Axial 64 px slices of the skull-stripped Colin27 T1 brain: 70 normal training slices,
# 12 validation, 20 normal test slices and 2 copies of each with synthetic lesions.
"$qfae" prepare --volume "$brain" --out runs/demo-mri --image-size 64 \
  --synthetic-lesions --lesion-copies 2 --lesion-size 0.08 0.16
"$qfae" train --config configs/demo.yaml
"$qfae" eval --checkpoint runs/demo/latest
eval_dir=runs/demo/latest/eval/test-last
echo
echo "[demo] done in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
echo "[demo] data:       runs/demo-mri/ (manifest.json lists every slice)"
echo "[demo] run folder: runs/demo/latest/ (config.yaml, metrics.jsonl, checkpoints/)"
echo "[demo] metrics:    $eval_dir/metrics.json, $eval_dir/scores.csv, $eval_dir/roc.png, pr.png"
echo "[demo] training:   runs/demo/latest/report.html (loss, learning rate, validation)"
echo "[demo] overlays:   $eval_dir/maps/anomalous/*.png (input | anomaly map | overlay, lesion"
echo "[demo]             outlined in green) and $eval_dir/maps/normal/*.png"
echo "[demo] these numbers come from UNTRAINED tiny backbones; see README.md for real ones"
echo
echo "[demo] report: open $PWD/$eval_dir/report.html in a browser (metrics, curves, overlays)"
