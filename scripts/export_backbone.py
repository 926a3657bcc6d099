#!/usr/bin/env python3
"""Exports a frozen timm ViT (DINO, DINOv2 with or without registers, MAE) as the TorchScript file
qfae loads (backbone.encoders / backbone.perceptual). Needs torch and timm; never downloads: give
the weights file (--weights) or ask for --random-init. See scripts/lib/qfae_vit.py for the
contract.

  python3 scripts/export_backbone.py --model vit_large_patch14_reg4_dinov2.lvd142m \
      --weights model.safetensors --out backbones/dinov2_vitl14_reg4_224.pt
  python3 scripts/export_backbone.py --model vit_large_patch16_224.mae --patch-size 16 32 56 \
      --weights mae_large.safetensors --out backbones/mae_vitl16_224.pt
"""
import argparse
import copy
import json
import math
import pathlib
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="timm model name, e.g. vit_large_patch14_reg4_dinov2.lvd142m")
    parser.add_argument("--image-size", type=int, default=224, help="input side in pixels")
    parser.add_argument("--patch-size", type=int, nargs="+", default=None,
                        help="patch sizes to export (default: the model's own); other sizes get a "
                             "FlexiViT-resampled patch embedding; every grid other than the "
                             "weights' own gets their position embedding resampled once (bicubic), "
                             "as timm does when it creates the model at that size and patch size")
    parser.add_argument("--blocks", type=int, default=None,
                        help="keep only the first N transformer blocks (default: all)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", type=pathlib.Path,
                         help="timm state dict (.safetensors, .pth, .bin), loaded offline")
    weights.add_argument("--random-init", action="store_true",
                         help="random weights (for tests and timing only): timm's initialisation, "
                              "seeded, with LayerScale factors and prefix tokens made visible")
    parser.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    parser.add_argument("--fused-attention", action="store_true",
                        help="keep timm's fused attention (scaled_dot_product_attention): faster "
                             "on GPUs, but the file then loads only in LibTorch 2.x, not 1.13")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="output .pt file")
    return parser.parse_args(argv)


def fail(message: str):
    print(f"export_backbone: {message}", file=sys.stderr)
    sys.exit(2)


def load_state_dict(path: pathlib.Path):
    import torch

    if not path.is_file():
        fail(f"--weights {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(str(path), map_location="cpu")
    for key in ("model", "state_dict", "module"):  # training checkpoints nest the weights
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


def make_random_init_visible(model):
    """timm initialises LayerScale factors to 1e-5 and the cls/register tokens with std 1e-6: every
    block is then an identity and the prefix order invisible to five digits, so no test could tell
    a broken export from a good one. Draws the factors in [0.5, 1.5] and the tokens with the
    position embedding's std (0.02) instead."""
    import torch
    from timm.layers import LayerScale

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LayerScale):
                module.gamma.uniform_(0.5, 1.5)
        for name in ("cls_token", "reg_token"):
            token = getattr(model, name, None)
            if token is not None:
                token.normal_(std=0.02)


def weights_grid(state, model, path: pathlib.Path) -> int:
    """Side of the square position-embedding grid the weights were made at (37 for DINOv2 at 518
    px, 14 for MAE/16 at 224): timm's layout conversions only drop prefix rows (cls, registers),
    so the grid is the largest square in the stored row count."""
    keys = [k for k in state if k == "pos_embed" or k.endswith((".pos_embed",
                                                                 "visual.positional_embedding"))]
    key = "pos_embed" if "pos_embed" in keys else (keys[0] if len(keys) == 1 else None)
    if key is None:
        fail(f"--weights {path}: cannot tell which position embedding to use ({keys or 'none'})")
    rows = int(state[key].shape[-2])
    grid = math.isqrt(rows)
    if rows - grid * grid not in (0, 1, int(model.num_prefix_tokens)):
        fail(f"--weights {path}: {key} has {rows} rows, not a square grid plus the prefix tokens")
    return grid


def build_model(args):
    """timm's model with the weights as given: created at --image-size (--random-init), or at the
    size the weights were made at (--weights), so that its position embedding is the weights' own
    and export() resamples it once to each exported grid, as timm does when it creates the model
    at that image and patch size from those weights. Returns (model, state): state is the weights
    file's state dict as stored (None for --random-init)."""
    import timm
    import torch
    from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

    if args.weights is None:
        torch.manual_seed(args.seed)
    # Created at the target size: timm builds the position embedding for image_size / patch.
    model = timm.create_model(args.model, pretrained=False, img_size=args.image_size,
                              num_classes=0)
    if not isinstance(model, VisionTransformer):
        fail(f"--model {args.model}: not a timm VisionTransformer ({type(model).__name__})")
    state = None
    if args.weights is None:
        make_random_init_visible(model)
    else:
        state = load_state_dict(args.weights)
        grid = weights_grid(state, model, args.weights)
        if tuple(model.patch_embed.grid_size) != (grid, grid):
            # Made again at the weights' own size: their position embedding then loads as it is.
            native = int(model.patch_embed.proj.kernel_size[0])
            del model
            model = timm.create_model(args.model, pretrained=False, img_size=grid * native,
                                      num_classes=0)
    # The fused attention path calls aten::scaled_dot_product_attention, which LibTorch 1.13
    # (Debian's) cannot load; timm's explicit softmax(q k^T / sqrt(d)) v path loads anywhere.
    set_fused_attention(model, args.fused_attention)
    if state is not None:
        # Converts original DINOv2/MAE layouts (it changes the dict it is given: a copy here).
        try:
            loaded = checkpoint_filter_fn(dict(state), model)
            loaded = {k: v for k, v in loaded.items() if not k.startswith("head.")}
            missing, unexpected = model.load_state_dict(loaded, strict=False)
        except (RuntimeError, ValueError, KeyError) as e:  # shapes of another model
            fail(f"--weights {args.weights} does not fit {args.model}: {str(e).splitlines()[0]}")
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            fail(f"--weights {args.weights} does not fit {args.model}: "
                 f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), state


def set_fused_attention(model, fused: bool):
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = bool(fused and module.fused_attn)


def timm_reference(args, model, state, patch_size: int, depth: int):
    """timm's own model at --image-size and patch_size with the first `depth` blocks, loaded by
    timm's checkpoint_filter_fn (FlexiViT patch embedding, bicubic position embedding resampled
    once) from the weights file, or from the random-init model's own weights."""
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    native = int(model.patch_embed.proj.kernel_size[0])
    grid = args.image_size // native
    if patch_size == native and tuple(model.patch_embed.grid_size) == (grid, grid):
        return model  # its blocks past `depth` are never run
    reference = timm.create_model(args.model, pretrained=False, img_size=args.image_size,
                                  patch_size=patch_size, depth=depth, num_classes=0)
    set_fused_attention(reference, args.fused_attention)
    source = dict(state) if state is not None else model.state_dict()
    loaded = checkpoint_filter_fn(source, reference)
    kept = {k: v for k, v in loaded.items() if not k.startswith("head.")
            and not (k.startswith("blocks.") and int(k.split(".")[1]) >= depth)}
    missing, _ = reference.load_state_dict(kept, strict=False)
    missing = [k for k in missing if not k.startswith("head.")]
    if missing:
        fail(f"timm's reference at patch size {patch_size} lacks {missing[:5]}")
    return reference.eval()


def export(args):
    import torch
    from timm.layers import resample_abs_pos_embed, resample_patch_embed

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
    import qfae_vit

    model, state = build_model(args)
    if getattr(model, "dynamic_img_size", False):
        fail(f"--model {args.model}: dynamic image size models are not supported")
    base = model.patch_embed.proj
    native = int(base.kernel_size[0])
    patch_sizes = args.patch_size or [native]
    for p in patch_sizes:
        if p <= 0 or args.image_size % p != 0:
            fail(f"--patch-size {p}: must divide --image-size {args.image_size}")
    depth = len(model.blocks)
    blocks = args.blocks if args.blocks is not None else depth
    if not 1 <= blocks <= depth:
        fail(f"--blocks {blocks}: the model has {depth} blocks")

    num_prefix = int(model.num_prefix_tokens)
    pos_prefix = 0 if model.no_embed_class else num_prefix
    embeds = []
    with torch.no_grad():
        for p in patch_sizes:
            proj = torch.nn.Conv2d(base.in_channels, base.out_channels, kernel_size=p, stride=p,
                                   bias=base.bias is not None)
            proj.weight.copy_(resample_patch_embed(base.weight, [p, p], interpolation="bicubic",
                                                   antialias=True))
            if base.bias is not None:
                proj.bias.copy_(base.bias)
            # One resampling, from the grid the weights were made at (build_model keeps it) to
            # this one, as timm's checkpoint_filter_fn does when it creates the model at this
            # image and patch size from those weights; none where the grids are equal.
            grid = args.image_size // p
            pos = resample_abs_pos_embed(model.pos_embed, new_size=[grid, grid],
                                         num_prefix_tokens=pos_prefix, interpolation="bicubic",
                                         antialias=True)
            embeds.append(qfae_vit.PatchEmbedding(proj, pos, copy.deepcopy(model.patch_embed.norm)))
        tokens = (model.cls_token, getattr(model, "reg_token", None))
        prefix = [t for t in tokens if t is not None]
        prefix_tokens = (torch.cat(prefix, dim=1) if prefix
                         else torch.zeros(1, 0, model.embed_dim))
    wrapper = qfae_vit.QfaeViT(embeds, patch_sizes, prefix_tokens, model.no_embed_class,
                               list(model.blocks)[:blocks], model.norm_pre)

    cfg = model.pretrained_cfg or {}
    meta = qfae_vit.metadata(args.model, args.image_size, patch_sizes, num_prefix,
                             model.embed_dim, depth, blocks, cfg.get("mean", (0.485, 0.456, 0.406)),
                             cfg.get("std", (0.229, 0.224, 0.225)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scripted = qfae_vit.script_and_save(wrapper, meta, args.out)

    # The export must agree with timm's own forward_features path (patch_embed -> _pos_embed ->
    # norm_pre -> blocks) of the model timm creates at this image and patch size from the same
    # weights: at the first block for every patch size, and at the last one for the native size.
    x = torch.randn(2, 3, args.image_size, args.image_size)
    for p in patch_sizes:
        tap = blocks - 1 if p == native else 0
        reference = timm_reference(args, model, state, p, blocks if p == native else 1)
        with torch.no_grad():
            want = reference.norm_pre(reference.patch_drop(reference._pos_embed(
                reference.patch_embed(x))))
            for block in list(reference.blocks)[:tap + 1]:
                want = block(want)
            got = scripted(x, [tap], p)[0]
        del reference
        err = (got - want).abs().max().item() if got.shape == want.shape else math.inf
        if err > 1e-4:
            fail(f"exported module differs from timm at patch size {p}, block {tap}: shapes "
                 f"{tuple(got.shape)} / {tuple(want.shape)}, max |diff| {err:.2e}")
        print(f"checked against timm's forward at patch size {p}, block {tap}: "
              f"max |diff| {err:.2e}")
    print(json.dumps(meta))
    print(f"wrote {args.out}")


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("PyTorch is not installed for this python")
    try:
        import timm  # noqa: F401
    except ImportError:
        fail("timm is not installed (pip install 'timm>=1.0'); it is needed to build the model. "
             "The test backbones come from scripts/fixtures/make_test_backbones.py instead.")
    export(args)


if __name__ == "__main__":
    main()
