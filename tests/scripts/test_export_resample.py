#!/usr/bin/env python3
"""scripts/export_backbone.py --weights at image sizes other than the weights' own: every exported
patch size must hold the position embedding resampled ONCE, from the grid the weights were made at,
exactly as the model timm itself creates at that image and patch size from the same file:
  timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=WEIGHTS),
                    img_size=S, patch_size=p, num_classes=0)
(checkpoint_filter_fn: resample_abs_pos_embed, bicubic with antialias; resample_patch_embed).

Seeded random weights, made visible as export_backbone.py --random-init does (LayerScale factors in
[0.5, 1.5], prefix tokens with std 0.02), saved as timm state dicts at their native sizes:
  MAE ViT-B/16 at 224 px (grid 14), exported at 112 px (patch 16, 28) and 448 px (16, 32, 56);
  MAE ViT-B/16 at 112 px (grid 7, as the trajectory fixture's perceptual net), exported at 112 px;
  DINOv2 ViT-S/14 with registers at 518 px (grid 37), exported at 112 px (14, 28) and 448 px (14),
  and at 112 px (14, 28) from the same weights in the original DINOv2 layout (register_tokens,
  mask_token, the cls row inside pos_embed), which timm converts on loading.
Compared per patch size: the position embedding and patch kernel (same timm functions on the same
tensors: to 1e-6) and the outputs of the exported blocks, the export called as the loader calls it
(scripted(x, taps, patch_size)) against timm's patch_embed -> _pos_embed -> norm_pre -> blocks, both
with the explicit attention path: to 1e-5 absolute. Both run the same float32 operations on the
same tensors, so they agree exactly today; the tolerance leaves room for another evaluation order
(~1e-6 on outputs of magnitude 2-7) and stays far below what a wrong resampling does (the former
double resampling moved these outputs by 6e-4 to 7e-2). The test shows it can fail: that double
resampling (14 -> 7 -> 4 for MAE/16 at 112 px, patch 28) is measured against timm and must be off by
over 100 times both tolerances.

Usage: VENV_PYTHON tests/scripts/test_export_resample.py   (exit 77 without torch or timm)
1-2 minutes on two cores.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPORT = REPO / "scripts/export_backbone.py"
SKIP = 77
EMBED_TOL = 1e-6  # position embedding and patch kernel
BLOCK_TOL = 1e-5  # block outputs
BLOCKS = 2
MAE = "vit_base_patch16_224.mae"
DINOV2 = "vit_small_patch14_reg4_dinov2.lvd142m"
# name: (timm model, size the weights are made at, seed, layout)
WEIGHTS = {"mae224": (MAE, 224, 1, "timm"), "mae112": (MAE, 112, 2, "timm"),
           "dinov2": (DINOV2, 518, 3, "timm"), "dinov2_original": (DINOV2, 518, 3, "dinov2")}
# (weights, image size, patch sizes)
EXPORTS = [("mae224", 112, [16, 28]), ("mae224", 448, [16, 32, 56]), ("mae112", 112, [16, 28]),
           ("dinov2", 112, [14, 28]), ("dinov2", 448, [14]), ("dinov2_original", 112, [14, 28])]
FAILURES = []
os.environ["HF_HUB_OFFLINE"] = "1"  # timm loads the given files only; never a download

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from timm_reference import require_timm  # noqa: E402

require_timm()
import timm  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from timm.layers import resample_abs_pos_embed  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import export_backbone  # noqa: E402


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def make_weights(name, folder: pathlib.Path) -> pathlib.Path:
    """timm's seeded random init at the native size, made visible, saved as a state dict (timm's
    names, or the original DINOv2 release's, the inverse of timm's _convert_dinov2)."""
    model_name, size, seed, layout = WEIGHTS[name]
    torch.manual_seed(seed)
    model = timm.create_model(model_name, pretrained=False, img_size=size)
    export_backbone.make_random_init_visible(model)
    state = model.state_dict()
    if layout == "dinov2":
        gen = torch.Generator().manual_seed(seed)
        pos_cls = 0.02 * torch.randn(1, 1, model.embed_dim, generator=gen)  # timm adds it to cls
        state["register_tokens"] = state.pop("reg_token")
        state["cls_token"] = state["cls_token"] - pos_cls
        state["pos_embed"] = torch.cat([pos_cls, state["pos_embed"]], dim=1)
        state["mask_token"] = torch.zeros(1, model.embed_dim)
    path = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def timm_model(model_name, weights: pathlib.Path, size: int, patch=None):
    """timm's own model at this size and patch size (default: the model's own) from the weights
    file, resampled by timm's own checkpoint_filter_fn on loading."""
    extra = {} if patch is None else {"patch_size": patch}
    model = timm.create_model(model_name, pretrained=True, img_size=size, num_classes=0,
                              pretrained_cfg_overlay=dict(file=str(weights)), **extra)
    export_backbone.set_fused_attention(model, False)  # the export's explicit attention path
    return model.eval()


def timm_blocks(model, x, blocks: int, pos_embed=None):
    """Raw outputs of the first `blocks` blocks: patch_embed -> _pos_embed -> norm_pre -> blocks
    (with another position embedding in place of the model's when pos_embed is given)."""
    with torch.no_grad():
        if pos_embed is not None:
            saved = model.pos_embed.detach().clone()
            model.pos_embed.copy_(pos_embed)
        tokens = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
        outputs = []
        for block in list(model.blocks)[:blocks]:
            tokens = block(tokens)
            outputs.append(tokens)
        if pos_embed is not None:
            model.pos_embed.copy_(saved)
    return outputs


def max_diff(a, b) -> float:
    return (a - b).abs().max().item() if a.shape == b.shape else float("inf")


def old_double_resampling(weights: pathlib.Path, model_name, size: int, patch: int):
    """What export_backbone.py produced before: the position embedding resampled by timm to the
    native patch size's grid at this image size, then again to this patch size's grid."""
    reference = timm_model(model_name, weights, size, patch)
    native = timm_model(model_name, weights, size)
    prefix = 0 if native.no_embed_class else native.num_prefix_tokens
    grid = size // patch
    old = resample_abs_pos_embed(native.pos_embed.detach(), new_size=[grid, grid],
                                 num_prefix_tokens=prefix, interpolation="bicubic", antialias=True)
    return reference, old


def main():
    start = time.time()
    x = {s: torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(s))
         for s in sorted({size for _, size, _ in EXPORTS})}
    with tempfile.TemporaryDirectory(prefix="qfae-export-resample-") as tmp:
        tmp = pathlib.Path(tmp)
        weights = {name: make_weights(name, tmp) for name in WEIGHTS}
        print(f"[resample] weights made after {time.time() - start:.0f} s", flush=True)
        for name, size, patches in EXPORTS:
            model_name, native_size, _, layout = WEIGHTS[name]
            out = tmp / f"{name}_{size}.pt"
            run = subprocess.run([sys.executable, str(EXPORT), "--model", model_name,
                                  "--image-size", str(size),
                                  "--patch-size", *map(str, patches), "--blocks", str(BLOCKS),
                                  "--weights", str(weights[name]), "--out", str(out)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stdout + run.stderr)
                check(False, f"export of {name} at {size} px exits {run.returncode}")
                continue
            scripted = torch.jit.load(str(out), map_location="cpu")
            params = dict(scripted.named_parameters())
            for i, p in enumerate(patches):
                reference = timm_model(model_name, weights[name], size, p)
                what = (f"{model_name} ({layout} layout) made at {native_size} px, exported at "
                        f"{size} px, patch {p}")
                pos = max_diff(params[f"patch_embeds.{i}.pos_embed"], reference.pos_embed)
                kernel = max_diff(params[f"patch_embeds.{i}.proj.weight"],
                                  reference.patch_embed.proj.weight)
                want = timm_blocks(reference, x[size], BLOCKS)
                with torch.no_grad():
                    got = scripted(x[size], list(range(BLOCKS)), p)
                block = max(max_diff(g, w) for g, w in zip(got, want))
                scale = max(w.abs().max().item() for w in want)
                check(pos <= EMBED_TOL and kernel <= EMBED_TOL and block <= BLOCK_TOL,
                      f"{what}: max |diff| pos_embed {pos:.1e}, kernel {kernel:.1e}, blocks "
                      f"{block:.1e} (outputs up to {scale:.1f})")
                del reference
        print(f"[resample] exports compared after {time.time() - start:.0f} s", flush=True)

        # The comparison's power: the former double resampling must fail it by far.
        reference, old = old_double_resampling(weights["mae224"], MAE, 112, 28)
        pos = max_diff(old, reference.pos_embed)
        want = timm_blocks(reference, x[112], BLOCKS)
        got = timm_blocks(reference, x[112], BLOCKS, pos_embed=old)
        block = max(max_diff(g, w) for g, w in zip(got, want))
        check(pos > 100 * EMBED_TOL and block > 100 * BLOCK_TOL,
              f"the former double resampling (MAE 224 px weights, 14 -> 7 -> 4 at 112 px, patch "
              f"28) differs from timm's single one: max |diff| pos_embed {pos:.1e}, blocks "
              f"{block:.1e} (> 100 x the tolerances {EMBED_TOL:.0e} / {BLOCK_TOL:.0e})")
    if FAILURES:
        print(f"[resample] FAILED ({len(FAILURES)}): " + "; ".join(FAILURES))
        sys.exit(1)
    print(f"[resample] passed in {time.time() - start:.0f} s (torch {torch.__version__}, "
          f"timm {timm.__version__})")


if __name__ == "__main__":
    main()
