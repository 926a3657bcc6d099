#!/usr/bin/env python3
"""scripts/import_reference.py end to end with timm, encoder export included: a synthetic reference
checkpoint with the released brain checkpoint's names and shapes and random values throughout
(~1.2 GB), imported with the released brain.ini (tests/fixtures/reference_ini); the exported
encoder.pt against timm holding the checkpoint's encoder weights
(ExportRoundTrip.EncoderTapsMatchTimm), then qfae config --summary and qfae infer on the import.

Usage: VENV_PYTHON test_import_reference_timm.py QFAE_BINARY QFAE_TESTS_BINARY
(exits 77 without timm)
(test_import_reference.py is the variant for Debian's torch without timm.)
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
import timm  # noqa: E402
import torch  # noqa: E402

qfae, qfae_tests = sys.argv[1], sys.argv[2]
ENCODER_PREFIX = "encoders.0.model."
failures = ref.FAILURES
check = ref.check
start = time.time()


def random_tensor(name, shape, gen):
    """Random values at a trained network's scales: LayerNorm weights near 1, LayerScale factors
    in [0.5, 1.5], everything else normal with std 0.02."""
    if name.endswith(".gamma"):
        return 0.5 + torch.rand(*shape, generator=gen)
    if name.endswith(".weight") and len(shape) == 1:
        return 1.0 + 0.1 * torch.randn(*shape, generator=gen)
    return 0.02 * torch.randn(*shape, generator=gen)


def timm_encoder(encoder_state):
    """The reference's encoder: timm's DINOv2 ViT-L/14-reg4 at 224 px holding the checkpoint's
    weights under timm's own names (a strict load: the names must be timm's)."""
    model = timm.create_model(ref.ENCODER_MODEL, pretrained=False, img_size=ref.IMAGE_SIZE,
                              num_classes=0)
    model.load_state_dict({k[len(ENCODER_PREFIX):]: v for k, v in encoder_state.items()},
                          strict=True)
    return model.eval()


perceptual = ref.cached_export(ref.PERCEPTUAL_FILE)
keys = json.loads((ref.REPO / "tests/fixtures/reference_brain_keys.json").read_text())
with ref.temp_folder("import-reference") as tmp:
    tmp = pathlib.Path(tmp)
    perceptual = ref.pin(perceptual, tmp)
    gen = torch.Generator().manual_seed(0)
    state = {name: random_tensor(name, shape, gen) for name, shape in keys.items()}
    encoder_state = {k: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    check(sum(v.numel() for v in encoder_state.values()) > 300e6,
          "the checkpoint holds a full-size encoder")
    ckpt = tmp / "last_ckpt.pth"
    torch.save({"model": state, "epoch": 299, "optimizer": {}}, ckpt)

    # timm's outputs for the encoder taps of the imported config (the brain taps).
    x = ref.fixed_input(batch=2)
    taps = ref.brain_config()["taps"]
    expected = tmp / "expected.safetensors"
    ref.write_expected(expected, x, ref.encoder_expected(timm_encoder(encoder_state), x, taps),
                       {"encoder_model": ref.ENCODER_MODEL, "encoder_taps": taps})
    del state, encoder_state
    print(f"[import] checkpoint and timm's outputs after {time.time() - start:.0f} s", flush=True)

    out = tmp / "model"
    began = time.time()
    r = subprocess.run([sys.executable, str(ref.REPO / "scripts/import_reference.py"), str(ckpt),
                        "--ini", str(ref.REPO / "tests/fixtures/reference_ini/brain.ini"),
                        "--out", str(out), "--perceptual", str(perceptual)],
                       capture_output=True, text=True)
    print(r.stdout[-3000:], r.stderr[-3000:])
    print(f"[import] import_reference.py took {time.time() - began:.0f} s")
    check(r.returncode == 0, "import_reference.py exits 0")
    check("encoder exported" in r.stdout, "it says the encoder was exported")
    check((out / "encoder.pt").is_file(), "model/encoder.pt exists")
    state_json = json.loads((out / "state.json").read_text()) if r.returncode == 0 else {}
    check(state_json.get("encoder_exported") is True, "state.json records the encoder export")
    check(state_json.get("encoder_blocks_exported") == 23,
          "the export keeps 23 of the 24 blocks (brain.ini's taps -2, -4: deepest block 22)")
    ckpt.unlink()
    if failures:
        sys.exit(1)

    ref.run_roundtrip_gtest(qfae_tests, expected, ["EncoderTapsMatchTimm"],
                            encoder=out / "encoder.pt")
    check(True, "encoder.pt loads in qfae and matches timm at every brain tap")

    r = subprocess.run([qfae, "config", "--config", str(out / "config.yaml"), "--summary"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"qfae config --summary on the import exits 0 {r.stderr[-500:]}")
    check("(52289024)" in r.stdout, "the import has the reference's 52,289,024 trainable "
          "parameters")

    data = tmp / "images"
    r = subprocess.run([qfae, "prepare", "--synthetic", str(data), "--image-size", "240",
                        "--train", "1", "--val", "0", "--test-normal", "1", "--test-anomalous",
                        "1"], capture_output=True, text=True)
    check(r.returncode == 0, "qfae prepare --synthetic exits 0")
    images = sorted(str(p) for p in data.glob("test/*/img/*.png"))
    check(len(images) == 2, f"two test images: {images}")
    began = time.time()
    r = subprocess.run([qfae, "infer", "--checkpoint", str(out), *images, "--device", "cpu",
                        "--output-dir", str(tmp / "infer")], capture_output=True, text=True)
    print(r.stdout[-3000:], r.stderr[-3000:])
    print(f"[import] qfae infer took {time.time() - began:.0f} s")
    check(r.returncode == 0, "qfae infer with the imported model exits 0")
    scores = tmp / "infer/scores.csv"
    rows = list(csv.DictReader(open(scores, newline=""))) if scores.is_file() else []
    check(len(rows) == len(images), f"scores.csv has one row per image ({len(rows)})")
    check(all(math.isfinite(float(row["score"])) for row in rows), "every score is finite")
print(f"[import] {time.time() - start:.0f} s, {len(failures)} failed")
sys.exit(1 if failures else 0)
