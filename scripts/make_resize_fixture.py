#!/usr/bin/env python3
"""Writes tests/fixtures/resize_uint8_torchvision.json: torchvision's v2.Resize (bilinear,
antialias) applied to uint8 tensors, the order the published code uses (resize the 8-bit picture,
then scale to [0, 1]), for qfae's data.resize_on: uint8 (data::resize_bilinear_uint8).

  python scripts/make_resize_fixture.py tests/fixtures/resize_uint8_torchvision.json

Needs torch and torchvision (scripts/install-torch.sh). Inputs are seeded, so the file is the same
on every run with the same versions.
"""
import argparse
import json
import pathlib

import torch
import torchvision
from torchvision.transforms import v2


def picture(channels, h, w, seed):
    """A smooth gradient with seeded noise and a few hard edges: every rounding case occurs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h).view(h, 1)
    x = torch.linspace(0, 1, w).view(1, w)
    base = 200 * (0.6 * x + 0.4 * y) + 40 * torch.rand(channels, h, w, generator=g)
    base[:, h // 3: h // 2, w // 4: w // 2] = 250
    return base.round().clamp(0, 255).to(torch.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    a = ap.parse_args()
    # (channels, in_h, in_w, out_side): 64 -> 112 (the demo's slices at the trajectory's size),
    # a grey shrink with a non-square input, an RGB shrink, one axis unchanged.
    cases = [(1, 64, 64, 112), (1, 50, 37, 24), (3, 45, 45, 28), (1, 30, 40, 30)]
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "transform": "v2.Resize((S, S), InterpolationMode.BILINEAR, antialias=True) on uint8",
           "cases": []}
    for i, (c, h, w, s) in enumerate(cases):
        x = picture(c, h, w, seed=i)
        y = v2.Resize((s, s), interpolation=v2.InterpolationMode.BILINEAR, antialias=True)(x)
        out["cases"].append({"shape": [c, h, w], "size": s, "input": x.flatten().tolist(),
                             "expected": y.flatten().tolist()})
    a.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {a.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
