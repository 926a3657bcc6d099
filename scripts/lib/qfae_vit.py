"""The TorchScript wrapper qfae loads as a frozen ViT backbone, and the resampling helpers used to
build it: shared by scripts/export_backbone.py (timm models) and
scripts/fixtures/make_test_backbones.py (tiny test and demo models).

Module contract (read by src/backbone/torchscript_backbone.cpp):
  forward(x: (B, 3, H, W), taps: List[int], patch_size: int) -> List[(B, n_prefix + g*g, D)]
  taps are resolved, non-negative block indices; each output is the RAW output of that block
  (no final norm), prefix tokens (cls, then registers) first, then the g x g patch tokens row-major.
  Blocks after the deepest tap are not run. patch_size 0 selects the first (default) patch size.
The file carries qfae.json (see metadata()) as a TorchScript extra file.
"""
import json
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

FORMAT_VERSION = 1


class PatchEmbedding(nn.Module):
    """One patch size: timm's PatchEmbed (conv projection, optional norm) and its position embedding
    (covering the patch tokens only, or the prefix tokens too, as the source model had it)."""

    def __init__(self, proj: nn.Conv2d, pos_embed: torch.Tensor, norm: Optional[nn.Module] = None):
        super().__init__()
        self.proj = proj
        self.norm = norm if norm is not None else nn.Identity()
        self.pos_embed = nn.Parameter(pos_embed.detach().clone())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, g*g, D)
        return self.norm(x), self.pos_embed


class QfaeViT(nn.Module):
    """timm's VisionTransformer.forward_features up to the block outputs, for several patch sizes
    sharing one set of blocks: patch_embed -> _pos_embed -> norm_pre -> blocks[0..max(taps)]."""

    patch_sizes: List[int]
    no_embed_class: bool
    num_prefix: int

    def __init__(self, embeds: Sequence[PatchEmbedding], patch_sizes: Sequence[int],
                 prefix_tokens: torch.Tensor, no_embed_class: bool, blocks: Sequence[nn.Module],
                 norm_pre: Optional[nn.Module] = None):
        super().__init__()
        assert len(embeds) == len(patch_sizes) and len(embeds) > 0
        self.patch_embeds = nn.ModuleList(list(embeds))
        self.patch_sizes = [int(p) for p in patch_sizes]
        # (1, n_prefix, D): cls token then register tokens, timm's concatenation order.
        self.prefix_tokens = nn.Parameter(prefix_tokens.detach().clone())
        self.num_prefix = int(prefix_tokens.shape[1])
        self.no_embed_class = bool(no_embed_class)
        self.norm_pre = norm_pre if norm_pre is not None else nn.Identity()
        self.blocks = nn.ModuleList(list(blocks))

    def forward(self, x: torch.Tensor, taps: List[int], patch_size: int) -> List[torch.Tensor]:
        if len(taps) == 0:
            raise ValueError("qfae backbone: no taps given")
        last = max(taps)
        if min(taps) < 0 or last >= len(self.blocks):
            raise ValueError("qfae backbone: tap outside the blocks held by this file")
        index = -1
        for i, p in enumerate(self.patch_sizes):
            if (patch_size == 0 and i == 0) or p == patch_size:
                index = i
        if index < 0:
            raise ValueError("qfae backbone: patch size not exported in this file")

        tokens = x
        pos_embed = x
        for i, embed in enumerate(self.patch_embeds):
            if i == index:
                tokens, pos_embed = embed(x)  # (B, g*g, D), (1, [n_prefix +] g*g, D)
        prefix = self.prefix_tokens.expand(x.shape[0], -1, -1)  # (B, n_prefix, D)
        if self.no_embed_class:
            tokens = torch.cat([prefix, tokens + pos_embed], dim=1)
        else:
            tokens = torch.cat([prefix, tokens], dim=1) + pos_embed
        tokens = self.norm_pre(tokens)  # (B, n_prefix + g*g, D)

        outputs: List[torch.Tensor] = [tokens for _ in taps]
        for i, block in enumerate(self.blocks):
            if i <= last:
                tokens = block(tokens)
                for j in range(len(taps)):
                    if taps[j] == i:
                        outputs[j] = tokens
        return outputs


def resample_abs_pos_embed(pos_embed: torch.Tensor, new_grid: int, num_prefix_tokens: int,
                           interpolation: str = "bicubic", antialias: bool = True) -> torch.Tensor:
    """(1, n_prefix + g*g, D) -> (1, n_prefix + new_grid^2, D): the square grid part resized
    (align_corners false), prefix rows kept. Same result as timm.layers.resample_abs_pos_embed."""
    prefix, grid_part = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    old_grid = int(math.isqrt(grid_part.shape[1]))
    assert old_grid * old_grid == grid_part.shape[1], "position embedding grid is not square"
    if old_grid == new_grid:
        return pos_embed
    dim = grid_part.shape[-1]
    dtype = grid_part.dtype
    image = grid_part.float().reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=(new_grid, new_grid), mode=interpolation,
                          antialias=antialias, align_corners=False)
    grid_part = image.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, dim).to(dtype)
    return torch.cat([prefix, grid_part], dim=1)


def resample_patch_embed(weight: torch.Tensor, new_size: int, interpolation: str = "bicubic",
                         antialias: bool = True) -> torch.Tensor:
    """FlexiViT pseudo-inverse resize of a (D, C, p, p) patch-embedding kernel to (D, C, P, P):
    with R the resize operator on p x p patches, the new kernel is pinv(R^T) w, so that
    <resize(patch), w_new> = <patch, w> (exactly when P >= p), as timm's resample_patch_embed."""
    out_ch, in_ch, old_h, old_w = weight.shape
    if old_h == new_size and old_w == new_size:
        return weight
    old_total = old_h * old_w
    basis = torch.eye(old_total, dtype=torch.float32).reshape(old_total, 1, old_h, old_w)
    resized = F.interpolate(basis, size=(new_size, new_size), mode=interpolation,
                            antialias=antialias, align_corners=False)
    resize_mat = resized.reshape(old_total, new_size * new_size).t()  # (P*P, p*p) = R
    pinv = torch.linalg.pinv(resize_mat)  # (p*p, P*P)
    flat = weight.float().reshape(out_ch, in_ch, old_total)
    return (flat @ pinv).reshape(out_ch, in_ch, new_size, new_size).to(weight.dtype)


def metadata(model: str, image_size: int, patch_sizes: Sequence[int], num_prefix: int, width: int,
             depth: int, blocks: int, mean: Sequence[float], std: Sequence[float]) -> dict:
    """The qfae.json record stored inside every exported file."""
    return {
        "format": FORMAT_VERSION,
        "model": model,
        "image_size": int(image_size),
        "patch_sizes": [int(p) for p in patch_sizes],
        "grids": [int(image_size) // int(p) for p in patch_sizes],
        "num_prefix": int(num_prefix),
        "width": int(width),
        "depth": int(depth),
        "blocks": int(blocks),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
    }


def script_and_save(module: QfaeViT, meta: dict, path) -> torch.jit.ScriptModule:
    """Scripts the wrapper in eval mode, saves it with qfae.json, returns the scripted module."""
    module = module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    scripted = torch.jit.script(module)
    torch.jit.save(scripted, str(path), _extra_files={"qfae.json": json.dumps(meta)})
    return scripted
