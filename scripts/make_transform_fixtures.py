#!/usr/bin/env python3
"""Writes tests/fixtures/transforms_torchvision.json: torchvision's own functions (tensor path) on
small fixed inputs, the reference for src/data/transforms.cpp (tests/data/transforms_test.cpp).
Run with the PyPI PyTorch environment (no network needed):
    $HOME/.cache/qfae/torch-venv/bin/python scripts/make_transform_fixtures.py
The committed fixture was made with torch 2.11.0 and torchvision 0.26.0.

Inputs are not stored: every image is pattern(c, h, w) (or levels(c, h, w) for the uint8 cases),
written the same way in the C++ test.
The random parameters (crop box, angle, flip, jitter factors) come from torchvision's get_params
fed with the draws of qfae's Rng (std::mt19937_64, re-implemented below) in place of torch's RNG:
what is compared is torchvision's arithmetic on those draws, and the order they are consumed in.
"""
import contextlib
import json
import math
import os

import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

BILINEAR, NEAREST_EXACT, NEAREST = (InterpolationMode.BILINEAR, InterpolationMode.NEAREST_EXACT,
                                    InterpolationMode.NEAREST)


def pattern(c, h, w):
    """(c, h, w) float32, ((37 i) mod 101) / 100 at flat index i: irregular values in [0, 1]."""
    i = torch.arange(c * h * w, dtype=torch.int64)
    return ((i * 37) % 101).to(torch.float32).div(100.0).reshape(c, h, w)


def levels(c, h, w):
    """(c, h, w) uint8, (37 i) mod 256 at flat index i: an 8-bit picture's whole levels."""
    i = torch.arange(c * h * w, dtype=torch.int64)
    return ((i * 37) % 256).to(torch.uint8).reshape(c, h, w)


def grey_as_rgb(x):
    """A one-channel uint8 image as the published code holds it: PIL's convert('RGB')."""
    return x.expand(3, -1, -1).contiguous()


def ramp(c, h, w):
    """(c, h, w) float32 holding its flat index: for nearest sampling, a value names its pixel."""
    return torch.arange(c * h * w, dtype=torch.float32).reshape(c, h, w)


def short(v):
    """7 significant digits: float32 carries about 7.2; the tests' tolerances are 1e-6 and up."""
    return float(f"{float(v):.7g}")


def values(t):
    return [short(v) for v in t.flatten()]


# ---- qfae::data::Rng (include/qfae/data/random.h): std::mt19937_64 and its uniform mappings.
class Mt19937_64:
    M64 = (1 << 64) - 1

    def __init__(self, seed):
        self.mt = [seed & self.M64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & self.M64)
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[i] = self.mt[(i + 156) % 312] ^ xa
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & self.M64


def _check_mt19937_64():
    gen = Mt19937_64(5489)  # the C++ standard's check: the 10000th value of a default-seeded engine
    for _ in range(9999):
        gen()
    assert gen() == 9981545732273789042


class Draws:
    """Rng::uniform() = (next >> 11) * 2^-53 and Rng::below(n) (rejection, then modulo)."""

    def __init__(self, seed):
        self.gen = Mt19937_64(seed)

    def uniform(self):
        return (self.gen() >> 11) * 2.0 ** -53

    def below(self, n):
        limit = Mt19937_64.M64 - Mt19937_64.M64 % n
        while True:
            r = self.gen()
            if r < limit:
                return r % n


@contextlib.contextmanager
def torch_rng_from(draws):
    """Inside, torch.empty(1).uniform_, torch.rand(1) and torch.randint take their numbers from
    `draws`; results keep torch's float32 dtype, as torchvision sees them from torch's RNG."""
    real_empty, real_rand, real_randint, real_randperm = (torch.empty, torch.rand, torch.randint,
                                                          torch.randperm)

    class OneDraw:
        def uniform_(self, lo, hi):
            lo, hi = float(lo), float(hi)
            return torch.tensor([lo + (hi - lo) * draws.uniform()], dtype=torch.float32)

    def empty(*size, **kw):
        return OneDraw() if tuple(size) == (1,) and not kw else real_empty(*size, **kw)

    def rand(*size, **kw):
        assert tuple(size) == (1,)
        return torch.tensor([draws.uniform()], dtype=torch.float32)

    def randint(low, high, size):
        assert tuple(size) == (1,)
        return torch.tensor([low + draws.below(high - low)])

    def randperm(n):  # ColorJitter's order: see augment_params
        return real_randperm(n) if n != 4 else torch.arange(4)

    torch.empty, torch.rand, torch.randint, torch.randperm = empty, rand, randint, randperm
    try:
        yield
    finally:
        torch.empty, torch.rand, torch.randint, torch.randperm = (real_empty, real_rand,
                                                                  real_randint, real_randperm)


def augment_params(seed, height, width, scale, ratio, degrees, vflip_p, brightness, contrast):
    """qfae's draw order: RandomResizedCrop, RandomRotation, RandomVerticalFlip, ColorJitter."""
    draws = Draws(seed)
    img = torch.zeros(1, height, width)
    with torch_rng_from(draws):
        top, left, h, w = T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
        angle = T.RandomRotation.get_params([-degrees, degrees])
        flipped = T.RandomVerticalFlip(p=vflip_p)(torch.tensor([[[0.0], [1.0]]]))[0, 0, 0] == 1
        _, b, c, _, _ = T.ColorJitter.get_params((max(0.0, 1 - brightness), 1 + brightness),
                                                 (max(0.0, 1 - contrast), 1 + contrast), None, None)
    # Deliberate difference: torchvision orders its four jitter ops with randperm(4) drawn first;
    # qfae has two ops and draws their order last, brightness first when u < 0.5.
    brightness_first = draws.uniform() < 0.5
    return {"seed": seed, "box": [top, left, h, w], "angle": short(angle), "vflip": bool(flipped),
            "brightness": short(b), "contrast": short(c), "brightness_first": brightness_first}


def crop_cases():
    cases = []
    # (name, height, width, scale, ratio, seeds): qfae's defaults; a wide range on a small
    # non-square image, where tries fail and the retries consume draws; three that always fail
    # (the centre-crop fallback: ratio above, below and around the image's).
    for name, hgt, wid, scale, ratio, seeds in [
            ("default", 224, 224, (0.9, 1.0), (0.8, 1.2), range(12)),
            ("wide", 20, 31, (0.3, 1.0), (0.4, 2.5), range(12)),
            ("fallback_wider", 10, 10, (1.0, 1.0), (2.0, 2.0), [7]),
            ("fallback_taller", 7, 13, (1.0, 1.0), (0.5, 0.6), [3]),
            ("fallback_whole", 9, 11, (1.5, 2.0), (0.9, 1.5), [5])]:
        params = [augment_params(s, hgt, wid, scale, ratio, 10.0, 0.5, 0.1, 0.1) for s in seeds]
        if name != "default":  # the box only
            params = [{"seed": p["seed"], "box": p["box"]} for p in params]
        cases.append({"name": name, "height": hgt, "width": wid, "scale": list(scale),
                      "ratio": list(ratio), "rotation_deg": 10.0, "vflip_prob": 0.5,
                      "brightness": 0.1, "contrast": 0.1, "params": params})
    return cases


def augment_chain(fn, image, rotation, record, cases):
    """The whole augmentation with torchvision's functional module `fn` on `image`: the crop box
    resized back to the size (bilinear, antialias), rotation with `rotation`, vertical flip, then
    the jitter pair in the drawn order; one fixture case per (box, angle, flip, factors, order),
    the output stored with `record`. The single-channel input is given as [1, h, w]."""
    chains = []
    for top, left, h, w, angle, vflip, b, c, b_first in cases:
        size = list(image.shape[-2:])
        x = fn.resized_crop(image, top, left, h, w, size, BILINEAR, antialias=True)
        x = fn.rotate(x, angle, rotation)
        if vflip:
            x = fn.vflip(x)
        if b_first:
            x = fn.adjust_contrast(fn.adjust_brightness(x, b), c)
        else:
            x = fn.adjust_brightness(fn.adjust_contrast(x, c), b)
        chains.append({"in": [1, *size], "box": [top, left, h, w], "angle": angle, "vflip": vflip,
                       "brightness": b, "contrast": c, "brightness_first": b_first,
                       "expected": record(x)})
    return chains


def main():
    _check_mt19937_64()
    out = {"generator": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
           "pattern": "((37 i) mod 101) / 100 over the flat index i, float32",
           "ramp": "the flat index i, float32"}
    # TF.resize on tensors, bilinear with antialias (what torchvision's Resize does), and
    # nearest-exact; shrinking, enlarging and both at once.
    out["resize_bilinear"] = [
        {"in": [1, h, w], "out": [oh, ow],
         "expected": values(TF.resize(pattern(1, h, w), [oh, ow], BILINEAR, antialias=True))}
        for (h, w, oh, ow) in [(7, 9, 3, 4), (7, 9, 10, 5), (4, 5, 6, 8), (2, 3, 2, 7)]]
    out["resize_nearest_exact"] = [
        {"in": [1, h, w], "out": [oh, ow],
         "expected": values(TF.resize(ramp(1, h, w), [oh, ow], NEAREST_EXACT))}
        for (h, w, oh, ow) in [(7, 9, 3, 4), (7, 9, 10, 5), (3, 4, 5, 7)]]
    # TF.rotate on tensors (counter-clockwise, about the centre, zeros outside, same size).
    out["rotate_bilinear"] = [
        {"in": [1, 5, 7], "angle": a, "expected": values(TF.rotate(pattern(1, 5, 7), a, BILINEAR))}
        for a in [30.0, -13.5, 90.0]]
    out["rotate_nearest"] = [
        {"in": [1, 5, 7], "angle": a, "expected": values(TF.rotate(ramp(1, 5, 7), a, NEAREST))}
        for a in [90.0, -13.5, 170.0]]
    out["brightness"] = [
        {"in": [1, 2, 5], "factor": f,
         "expected": values(TF.adjust_brightness(pattern(1, 2, 5), f))} for f in [1.3, 0.7]]
    out["contrast_grey"] = [
        {"in": [1, 2, 5], "factor": f, "expected": values(TF.adjust_contrast(pattern(1, 2, 5), f))}
        for f in [0.6, 1.7]]
    # RGB: torchvision's tensor grey is 0.2989 R + 0.587 G + 0.114 B; the C++ test derives qfae's
    # 0.299 R (PIL's "L") from this value, so the red channel's mean is stored with it.
    rgb = pattern(3, 2, 3)
    out["contrast_rgb"] = [
        {"in": [3, 2, 3], "factor": f, "mean_red": float(rgb[0].mean()),
         "expected": values(TF.adjust_contrast(rgb, f))} for f in [0.6, 0.0]]
    # The whole augmentation: resized_crop back to the size, rotate, vflip, then the jitter pair.
    out["augment_chain"] = augment_chain(
        TF, pattern(1, 6, 6), BILINEAR, values,
        [(1, 2, 4, 3, 7.5, True, 1.08, 0.93, True), (0, 1, 6, 4, -9.0, False, 0.95, 1.1, False)])
    # The published code's path: its transforms (torchvision.transforms.v2) run on uint8 RGB
    # tensors. Brightness and contrast on whole levels, a grey picture as three equal channels.
    import torchvision.transforms.v2.functional as F2
    out["brightness_uint8"] = [
        {"in": [1, 3, 5], "factor": f,
         "expected": F2.adjust_brightness(grey_as_rgb(levels(1, 3, 5)), f)[0].flatten().tolist()}
        for f in [1.07, 0.93, 1.5]]
    out["contrast_uint8_grey"] = [
        {"in": [1, 3, 5], "factor": f,
         "expected": F2.adjust_contrast(grey_as_rgb(levels(1, 3, 5)), f)[0].flatten().tolist()}
        for f in [0.91, 1.09, 0.0]]
    out["contrast_uint8_rgb"] = [
        {"in": [3, 3, 5], "factor": f,
         "expected": F2.adjust_contrast(levels(3, 3, 5), f).flatten().tolist()}
        for f in [0.91, 1.09]]
    # v2.RandomResizedCrop (bilinear, antialias) -> v2.RandomRotation (its default: NEAREST) ->
    # v2.RandomVerticalFlip -> v2.ColorJitter, on the uint8 RGB image.
    out["augment_chain_uint8"] = augment_chain(
        F2, grey_as_rgb(levels(1, 9, 9)), NEAREST, lambda x: x[0].flatten().tolist(),
        [(1, 2, 7, 6, 7.5, True, 1.08, 0.93, True), (0, 1, 9, 7, -9.0, False, 0.95, 1.1, False),
         (1, 0, 8, 9, 3.2, True, 0.9, 1.02, False)])
    out["draw_augment"] = crop_cases()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "transforms_torchvision.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
