#!/usr/bin/env bash
# scripts/sweep.sh end to end on the tiny backbones: two seeds train, evaluate, and the summary
# has a mean ± std row whose mean is the average of the two runs' image AUROC.
# Usage: test_sweep.sh <repo root> <qfae binary>
set -euo pipefail
root="$1" qfae="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$qfae" prepare --synthetic "$tmp/data" --image-size 32 --train 16 --val 4 --test-normal 4 \
  --test-anomalous 4
fx="$root/tests/fixtures/backbones"
sets=(--set data.root="$tmp/data" --set data.layout=bmad --set data.image_size=32
      --set "backbone.encoders=[$fx/tiny_dino.pt]" --set backbone.encoder_model=test_tiny_dinov2_reg
      --set backbone.encoder_dim=32 --set "backbone.taps=[-1, -3]"
      --set backbone.perceptual="$fx/tiny_mae.pt" --set backbone.perceptual_model=test_tiny_mae
      --set model.dim=32 --set model.queries=16 --set model.qformer_heads=4 --set model.cross_heads=2
      --set model.cross_head_dim=16 --set model.decoder_dim=32 --set model.decoder_depth=1
      --set model.decoder_heads=4 --set "loss.patch_sizes=[8, 16]" --set "loss.layers=[1, 3]"
      --set "eval.patch_sizes=[8, 16]" --set "eval.layers=[1, 2, 3]" --set train.batch_size=4
      --set train.epochs=2 --set eval.batch_size=4 --set eval.save_maps=false)
printf 'name: tiny\n' > "$tmp/tiny.yaml"
bash "$root/scripts/sweep.sh" --config "$tmp/tiny.yaml" --seeds "3 4" --out "$tmp/sweep" \
  --qfae "$qfae" -- "${sets[@]}"
summary="$tmp/sweep/summary/summary.csv"
grep -q "tiny (mean ± std, n=2)" "$tmp/sweep/summary/summary.md"
a=$(python3 -c "import json;print(json.load(open('$tmp/sweep/summary/tiny-seed3-test-last/metrics.json'))['image']['auroc'])")
b=$(python3 -c "import json;print(json.load(open('$tmp/sweep/summary/tiny-seed4-test-last/metrics.json'))['image']['auroc'])")
mean=$(awk -F, '$1=="tiny mean"{print $5}' "$summary")
awk -v a="$a" -v b="$b" -v m="$mean" 'BEGIN{d=(a+b)/2-m; if (d<0) d=-d; exit !(d<1e-6)}' \
  || { echo "mean $mean is not the average of $a and $b" >&2; exit 1; }
echo "sweep ok: image AUROC $a, $b -> mean $mean"
