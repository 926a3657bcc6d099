#!/usr/bin/env python3
"""Exports a frozen timm ViT (DINO, DINOv2 with or without registers, MAE) as the TorchScript file
qfae loads (backbone.encoders / backbone.perceptual). Needs torch and timm; never downloads: give
the weights file (--weights) or ask for --random-init. See scripts/qfae_vit.py for the contract.

  python3 scripts/export_backbone.py --model vit_large_patch14_reg4_dinov2.lvd142m \
      --weights model.safetensors --out backbones/dinov2_vitl14_reg4_224.pt
  python3 scripts/export_backbone.py --model vit_large_patch16_224.mae --patch-size 16 32 56 \
      --weights mae_large.safetensors --out backbones/mae_vitl16_224.pt
"""
import argparse
import copy
import json
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
                             "FlexiViT-resampled patch embedding and a bicubic position embedding")
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


def build_model(args):
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
    if args.weights is None:
        make_random_init_visible(model)
    # The fused attention path calls aten::scaled_dot_product_attention, which LibTorch 1.13
    # (Debian's) cannot load; timm's explicit softmax(q k^T / sqrt(d)) v path loads anywhere.
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = bool(args.fused_attention and module.fused_attn)
    if args.weights is not None:
        state = load_state_dict(args.weights)
        # Converts original DINOv2/MAE layouts and resamples the position embedding (bicubic).
        state = checkpoint_filter_fn(state, model)
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            fail(f"--weights {args.weights} does not fit {args.model}: "
                 f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def export(args):
    import torch
    from timm.layers import resample_abs_pos_embed, resample_patch_embed

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import qfae_vit

    model = build_model(args)
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

    # The export must agree with timm's own forward_features path at the native patch size.
    if native in patch_sizes:
        x = torch.randn(2, 3, args.image_size, args.image_size)
        with torch.no_grad():
            want = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
            for block in list(model.blocks)[:blocks]:
                want = block(want)
            got = scripted(x, [blocks - 1], native)[0]
        err = (got - want).abs().max().item()
        if got.shape != want.shape or err > 1e-4:
            fail(f"exported module differs from timm at block {blocks - 1}: shapes "
                 f"{tuple(got.shape)} / {tuple(want.shape)}, max |diff| {err:.2e}")
        print(f"checked against timm's forward at block {blocks - 1}: max |diff| {err:.2e}")
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
             "The test backbones come from scripts/make_test_backbones.py instead.")
    export(args)


if __name__ == "__main__":
    main()
