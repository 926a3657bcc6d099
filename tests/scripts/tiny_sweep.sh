# Sourced by the sweep tests. `sets`: the qfae options of a config that trains in seconds on two
# cores with the committed tiny backbones; needs $root (the repository) and $data (a dataset from
# `qfae prepare --synthetic ... --image-size 32`). check_mean: the summary's mean row.
fx="$root/tests/fixtures/backbones"
sets=(--set data.root="$data" --set data.layout=bmad --set data.image_size=32
      --set "backbone.encoders=[$fx/tiny_dino.pt]" --set backbone.encoder_model=test_tiny_dinov2_reg
      --set backbone.encoder_dim=32 --set "backbone.taps=[-1, -3]"
      --set backbone.perceptual="$fx/tiny_mae.pt" --set backbone.perceptual_model=test_tiny_mae
      --set model.dim=32 --set model.queries=16 --set model.qformer_heads=4 --set model.cross_heads=2
      --set model.cross_head_dim=16 --set model.decoder_dim=32 --set model.decoder_depth=1
      --set model.decoder_heads=4 --set "loss.patch_sizes=[8, 16]" --set "loss.layers=[1, 3]"
      --set "eval.patch_sizes=[8, 16]" --set "eval.layers=[1, 2, 3]" --set train.batch_size=4
      --set train.epochs=2 --set eval.batch_size=4 --set eval.save_maps=false)

auroc() {  # <metrics.json>: its image AUROC
  python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['image']['auroc'])" "$1"
}

# check_mean <summary folder> <name> <seed> <seed>: summary.md has the "<name> (mean ± std, n=2)"
# row and summary.csv's "<name> mean" image AUROC is the average of the two runs' metrics.json.
check_mean() {
  local dir="$1" name="$2" a b mean
  grep -q "$name (mean ± std, n=2)" "$dir/summary.md" \
    || { echo "no '$name (mean ± std, n=2)' row in $dir/summary.md" >&2; return 1; }
  a=$(auroc "$dir/$name-seed$3-test-last/metrics.json") || return 1
  b=$(auroc "$dir/$name-seed$4-test-last/metrics.json") || return 1
  mean=$(awk -F, -v row="$name mean" '$1==row{print $5}' "$dir/summary.csv")
  awk -v a="$a" -v b="$b" -v m="$mean" \
      'BEGIN { d = (a + b) / 2 - m; if (d < 0) d = -d; exit !(m != "" && d < 1e-6) }' \
    || { echo "mean '$mean' is not the average of $a and $b" >&2; return 1; }
  echo "image AUROC $a, $b -> mean $mean"
}
