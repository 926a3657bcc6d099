#!/usr/bin/env python3
"""Writes the tiny TorchScript backbones of tests/fixtures/backbones/ (plain PyTorch, no timm) and
tiny_reference.pt, the expected block outputs computed by an eager timm-like ViT written here
independently of the exported wrapper. Run with Debian's PyTorch 1.13 so LibTorch 1.13 and 2.x both
load the files:  /usr/bin/python3 scripts/make_test_backbones.py
With --real-size DIR it writes random ViT-L backbones at the brain config's sizes instead.
"""
import pathlib
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import qfae_vit  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "backbones"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class TinyAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, head_dim)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class TinyBlock(nn.Module):
    """timm's pre-norm ViT Block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int, heads: int, layer_scale: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = TinyAttention(dim, heads)
        self.ls1 = LayerScale(dim, 0.5) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, dim * 4)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * 4, dim)
        self.ls2 = LayerScale(dim, 0.5) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.fc2(self.act(self.fc1(self.norm2(x)))))


class TinyViT(nn.Module):
    """Eager reference: timm's forward_features with the block outputs collected."""

    def __init__(self, dim, depth, heads, patch, image, registers, no_embed_class, layer_scale):
        super().__init__()
        grid = image // patch
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.reg_token = nn.Parameter(torch.randn(1, registers, dim) * 0.5) if registers else None
        self.no_embed_class = no_embed_class
        embed_len = grid * grid + (0 if no_embed_class else 1 + registers)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, dim) * 0.5)
        self.blocks = nn.ModuleList([TinyBlock(dim, heads, layer_scale) for _ in range(depth)])

    def block_outputs(self, x: torch.Tensor, patch_weight=None, pos_embed=None):
        weight = self.patch_embed.weight if patch_weight is None else patch_weight
        pos = self.pos_embed if pos_embed is None else pos_embed
        stride = weight.shape[-1]
        tokens = F.conv2d(x, weight, self.patch_embed.bias, stride=stride)
        tokens = tokens.flatten(2).transpose(1, 2)  # (B, g*g, D)
        prefix = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.no_embed_class:
            tokens = torch.cat(prefix + [tokens + pos], dim=1)
        else:
            tokens = torch.cat(prefix + [tokens], dim=1) + pos
        outputs = []
        for block in self.blocks:
            tokens = block(tokens)
            outputs.append(tokens)
        return outputs

    def prefix_tokens(self):
        parts = [self.cls_token] + ([self.reg_token] if self.reg_token is not None else [])
        return torch.cat(parts, dim=1)


def wrap(model: TinyViT, image: int, patch_sizes, blocks=None) -> qfae_vit.QfaeViT:
    """The export path: one patch embedding per size, resampled from the first as export does."""
    base = model.patch_embed
    num_prefix = model.prefix_tokens().shape[1]
    embeds = []
    for p in patch_sizes:
        proj = nn.Conv2d(3, base.out_channels, kernel_size=p, stride=p)
        with torch.no_grad():
            proj.weight.copy_(qfae_vit.resample_patch_embed(base.weight, p))
            proj.bias.copy_(base.bias)
        pos = qfae_vit.resample_abs_pos_embed(model.pos_embed, image // p,
                                              0 if model.no_embed_class else num_prefix)
        embeds.append(qfae_vit.PatchEmbedding(proj, pos))
    kept = list(model.blocks)[: blocks or len(model.blocks)]
    return qfae_vit.QfaeViT(embeds, patch_sizes, model.prefix_tokens(), model.no_embed_class, kept)


def check_flexi_resize(weight: torch.Tensor, new_size: int):
    """FlexiViT's promise when enlarging: <resize(patch), w_new> == <patch, w>."""
    old = weight.shape[-1]
    patch = torch.randn(5, 3, old, old)
    bigger = F.interpolate(patch, size=(new_size, new_size), mode="bicubic", antialias=True,
                           align_corners=False)
    new_weight = qfae_vit.resample_patch_embed(weight, new_size)
    lhs = torch.einsum("bchw,dchw->bd", bigger, new_weight)
    rhs = torch.einsum("bchw,dchw->bd", patch, weight)
    assert torch.allclose(lhs, rhs, atol=1e-3, rtol=1e-3), (lhs - rhs).abs().max()


def save(model, image, patch_sizes, name, model_name, blocks=None):
    wrapper = wrap(model, image, patch_sizes, blocks)
    num_prefix = model.prefix_tokens().shape[1]
    depth = len(model.blocks)
    meta = qfae_vit.metadata(model_name, image, patch_sizes, num_prefix,
                             model.cls_token.shape[-1], depth, blocks or depth, MEAN, STD)
    scripted = qfae_vit.script_and_save(wrapper, meta, OUT / name)
    return scripted


def make_dino(image):
    return TinyViT(dim=32, depth=4, heads=4, patch=8, image=image, registers=4,
                   no_embed_class=True, layer_scale=True).eval()


def make_mae(image):
    return TinyViT(dim=32, depth=4, heads=4, patch=8, image=image, registers=0,
                   no_embed_class=False, layer_scale=False).eval()


class Reference(nn.Module):
    def __init__(self, tensors):
        super().__init__()
        for name, value in tensors.items():
            self.register_buffer(name, value.detach().clone().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    dino, mae = make_dino(32), make_mae(32)
    check_flexi_resize(mae.patch_embed.weight, 16)
    dino_ts = save(dino, 32, [8], "tiny_dino.pt", "test_tiny_dinov2_reg")
    mae_ts = save(mae, 32, [8, 16], "tiny_mae.pt", "test_tiny_mae")
    dino_b2 = save(dino, 32, [8], "tiny_dino_blocks2.pt", "test_tiny_dinov2_reg", blocks=2)
    save(make_dino(64), 64, [8], "tiny_dino64.pt", "test_tiny_dinov2_reg")
    save(make_mae(64), 64, [8, 16, 32], "tiny_mae64.pt", "test_tiny_mae")

    x = torch.randn(1, 3, 32, 32)
    dino_ref = dino.block_outputs(x)
    mae8_ref = mae.block_outputs(x)
    # Patch 16 from the eager model too, fed the resampled kernel and grid-2 position embedding.
    mae16_ref = mae.block_outputs(x, qfae_vit.resample_patch_embed(mae.patch_embed.weight, 16),
                                  qfae_vit.resample_abs_pos_embed(mae.pos_embed, 2, 1))
    ref = {"input": x, "dino_l1": dino_ref[1], "dino_l3": dino_ref[3],
           "mae_p8_l3": mae8_ref[3], "mae_p16_l3": mae16_ref[3]}

    # The scripted files must reproduce the eager reference before anything is committed.
    loaded = torch.jit.load(str(OUT / "tiny_dino.pt"))
    got = loaded(x, [3, 1], 0)
    assert torch.allclose(got[0], ref["dino_l3"], atol=1e-5)
    assert torch.allclose(got[1], ref["dino_l1"], atol=1e-5)
    assert torch.allclose(dino_ts(x, [1], 8)[0], ref["dino_l1"], atol=1e-5)
    assert torch.allclose(mae_ts(x, [3], 8)[0], ref["mae_p8_l3"], atol=1e-5)
    assert torch.allclose(mae_ts(x, [3], 16)[0], ref["mae_p16_l3"], atol=1e-5)
    assert torch.allclose(dino_b2(x, [1], 0)[0], ref["dino_l1"], atol=1e-5)
    assert ref["dino_l3"].shape == (1, 5 + 16, 32) and ref["mae_p16_l3"].shape == (1, 1 + 4, 32)
    torch.jit.save(torch.jit.script(Reference(ref)), str(OUT / "tiny_reference.pt"))
    for path in sorted(OUT.glob("*.pt")):
        size = path.stat().st_size
        assert size < 1 << 20, f"{path} is {size} bytes"
        print(f"{path.name}: {size} bytes")


@torch.no_grad()
def real_size(out_dir: pathlib.Path):
    """Random-init backbones at the brain config's real sizes, without timm (CPU memory and speed
    measurements only; 1.1 GB each, never committed): DINOv2 ViT-L/14-reg4 kept to block 23 and MAE
    ViT-L/16 at patch 16/32/56 kept to block 20, as configs/brats.yaml taps them."""
    global OUT
    OUT = out_dir
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    dino = TinyViT(dim=1024, depth=24, heads=16, patch=14, image=224, registers=4,
                   no_embed_class=True, layer_scale=True).eval()
    save(dino, 224, [14], "dino_vitl14_reg4_random.pt", "vit_large_patch14_reg4_dinov2.lvd142m",
         blocks=23)
    del dino
    mae = TinyViT(dim=1024, depth=24, heads=16, patch=16, image=224, registers=0,
                  no_embed_class=False, layer_scale=False).eval()
    save(mae, 224, [16, 32, 56], "mae_vitl16_random.pt", "vit_large_patch16_224.mae", blocks=20)
    for path in sorted(OUT.glob("*_random.pt")):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--real-size":
        real_size(pathlib.Path(sys.argv[2]))
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit("usage: make_test_backbones.py              (the committed tiny fixtures)\n"
                 "       make_test_backbones.py --real-size DIR  (brain-config sizes, random)")
