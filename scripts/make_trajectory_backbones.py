#!/usr/bin/env python3
"""Rebuilds the two small frozen backbones a trajectory fixture (tests/fixtures/trajectory/) was
trained with, checks them against the fixture's tensor digests, and exports them for qfae.

  python make_trajectory_backbones.py FIXTURE.safetensors OUT_DIR

Needs torch and timm (scripts/install-torch.sh). The fixture's metadata names two timm models, the
seed they were drawn with and the native size of each; both are seeded random models, never
downloaded. Writes OUT_DIR/{encoder,perceptual}_weights.safetensors (timm state dicts at their
native sizes) and OUT_DIR/{encoder,perceptual}.pt (scripts/export_backbone.py at the fixture's
image size, taps, patch sizes and layers). Rebuilt tensors whose digest differs from the fixture's
are reported, not refused: torch's random kernels differ in the last bits between processors.
"""
import argparse
import hashlib
import json
import pathlib
import subprocess
import sys

import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

EXPORT = pathlib.Path(__file__).resolve().parent / "export_backbone.py"
sys.path.insert(0, str(EXPORT.parent))
# LayerScale ~ U(0.5, 1.5), cls/register tokens ~ N(0, 0.02): the fixture's models, drawn as
# export_backbone.py's --random-init draws them.
from export_backbone import make_random_init_visible  # noqa: E402


def tensor_digest(path):
    """sha256 over the sorted (name, dtype, shape, bytes) of a file's tensors: stable where the
    safetensors file's own bytes (header order, padding) are not."""
    h = hashlib.sha256()
    for name, t in sorted(load_file(str(path)).items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture", type=pathlib.Path)
    ap.add_argument("out", type=pathlib.Path)
    a = ap.parse_args()
    meta = json.loads(safe_open(str(a.fixture), "pt").metadata()["trajectory_fixture"])
    v, bb = meta["variant_config"], meta["backbones"]
    a.out.mkdir(parents=True, exist_ok=True)
    # One seed: the encoder is drawn first, then the perceptual network, from the same stream.
    torch.manual_seed(bb["encoder"]["seed"])
    for role in ("encoder", "perceptual"):
        b = bb[role]
        m = timm.create_model(b["model"], pretrained=False, img_size=b["native_size"])
        make_random_init_visible(m)
        w = a.out / f"{role}_weights.safetensors"
        save_file({k: t.contiguous() for k, t in m.state_dict().items()}, str(w))
        digest = tensor_digest(w)
        if digest != b["tensor_sha256"]:
            # torch's CPU random kernels differ in the last bits between instruction sets
            # (ATEN_CPU_CAPABILITY=default and avx2 draw cls_token 1.8e-8 apart), so another
            # machine may draw slightly other weights: the trajectory test says whether it matters.
            print(f"note: the rebuilt {role}'s tensors differ in their bits from the fixture's "
                  f"digest ({digest[:12]} here, {b['tensor_sha256'][:12]} there; torch "
                  f"{torch.__version__}, timm {timm.__version__})", file=sys.stderr)
    depths = {"vit_small": 12, "vit_base": 12, "vit_large": 24}
    depth = depths[v["encoder_model"].split("_patch")[0]]
    blocks = max(t if t >= 0 else depth + t for t in v["taps"]) + 1
    export = [sys.executable, str(EXPORT), "--image-size", str(v["image_size"])]
    subprocess.run(export + ["--model", v["encoder_model"],
                             "--weights", str(a.out / "encoder_weights.safetensors"),
                             "--blocks", str(blocks), "--out", str(a.out / "encoder.pt")],
                   check=True)
    subprocess.run(export + ["--model", v["perceptual_model"],
                             "--patch-size", *map(str, v["loss_patch_sizes"]),
                             "--weights", str(a.out / "perceptual_weights.safetensors"),
                             "--blocks", str(max(v["loss_layers"]) + 1),
                             "--out", str(a.out / "perceptual.pt")], check=True)
    print(f"backbones of {a.fixture.name} in {a.out}")


if __name__ == "__main__":
    main()
