#!/usr/bin/env python3
"""Full-size exports against timm: random-init DINOv2 ViT-L/14-reg4 (23 blocks) and MAE ViT-L/16
(patch sizes 16/32/56, 20 blocks) from scripts/export_backbone.py, loaded by qfae's C++ loader
(ExportRoundTrip.* in qfae_tests) and compared with timm's forward at every brain tap/layer/size.

Usage: VENV_PYTHON test_export_roundtrip.py QFAE_TESTS_BINARY   (exit 77 without timm)
Exports are cached in $QFAE_EXPORT_CACHE (default ~/.cache/qfae/exports).
"""
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import timm_reference as ref  # noqa: E402

ref.require_timm()
import torch  # noqa: E402

qfae_tests = sys.argv[1]
start = time.time()
cfg = ref.brain_config()
encoder = ref.cached_export(ref.ENCODER_FILE)
perceptual = ref.cached_export(ref.PERCEPTUAL_FILE)
print(f"[roundtrip] exports ready after {time.time() - start:.0f} s", flush=True)


def distinct(a, b):
    """Relative difference of two block outputs: the random init must make blocks visible."""
    return ((a - b).abs().max() / b.abs().max()).item()


with ref.temp_folder("roundtrip") as tmp:
    tmp = pathlib.Path(tmp)
    encoder, perceptual = ref.pin(encoder, tmp), ref.pin(perceptual, tmp)
    x = ref.fixed_input(batch=2)

    model = ref.seeded_timm_model(ref.ENCODER_FILE)
    ref.check_weights_match(model, encoder)
    tensors = ref.encoder_expected(model, x, cfg["taps"])
    del model
    model = ref.seeded_timm_model(ref.PERCEPTUAL_FILE)
    ref.check_weights_match(model, perceptual)
    tensors.update(ref.perceptual_expected(ref.PERCEPTUAL_MODEL, model, x, cfg["patch_sizes"],
                                           cfg["layers"]))
    del model
    print(f"[roundtrip] timm's outputs after {time.time() - start:.0f} s", flush=True)

    # A comparison to 1e-4 only means something if the compared blocks change the tokens by far
    # more than that (timm's own LayerScale init of 1e-5 would not).
    taps = [tensors[f"encoder/tap={t}"] for t in cfg["taps"]]
    layers = [tensors[f"perceptual/patch=16/layer={layer}"] for layer in cfg["layers"]]
    for name, outputs in (("encoder taps", taps), ("perceptual layers", layers)):
        for a, b in zip(outputs, outputs[1:]):
            if distinct(a, b) < 1e-2:
                sys.exit(f"{name}: consecutive outputs differ by only {distinct(a, b):.1e}")
    prefix = taps[0][:, :5]
    if distinct(prefix[:, :1], prefix[:, 1:2]) < 1e-2:
        sys.exit("encoder: CLS and first register outputs are indistinguishable")

    expected = tmp / "expected.safetensors"
    ref.write_expected(expected, x, tensors, {
        "encoder_model": ref.ENCODER_MODEL, "encoder_taps": cfg["taps"],
        "perceptual_model": ref.PERCEPTUAL_MODEL, "perceptual_patch_sizes": cfg["patch_sizes"],
        "perceptual_layers": cfg["layers"]})
    ref.run_roundtrip_gtest(qfae_tests, expected, ["EncoderTapsMatchTimm",
                                                  "PerceptualLayersMatchTimmAtEveryPatchSize"],
                            encoder=encoder, perceptual=perceptual)
print(f"[roundtrip] passed in {time.time() - start:.0f} s (torch {torch.__version__})")
