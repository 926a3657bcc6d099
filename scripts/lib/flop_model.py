"""The trainable part of the Q-Former autoencoder (projection, Q-Former, decoder) and the perceptual
maps, written in plain PyTorch from the model's definition with explicit matrix products, for
scripts/checks/count_flops.py. `m` below is the config's `model` section as a dict.
"""
import torch
import torch.nn.functional as F
from torch import nn


def attention(q, k, v, scale, causal):
    """(B, h, n, e), (B, h, s, e) -> softmax(q k^T * scale) v, two explicit batched products."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, h, n, s)
    if causal:
        n, s = scores.shape[-2:]
        mask = torch.ones(n, s, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)  # (B, h, n, e)


class MultiQuerySelfAttention(nn.Module):
    """docs/model.md section 2.1: fused Linear(D -> D + 2 D/H), H query heads of D/H, ONE shared
    key/value head, scale (D/H)^-1/2, causal mask; out Linear(D -> D)."""

    def __init__(self, m):
        super().__init__()
        self.dim, self.heads = m["dim"], m["qformer_heads"]
        self.head, self.causal = self.dim // self.heads, m["causal"]
        self.wqkv = nn.Linear(self.dim, self.dim + 2 * self.head)
        self.out = nn.Linear(self.dim, self.dim)

    def forward(self, x):  # (N, Q, D)
        n, q_len, d = x.shape
        q, k, v = self.wqkv(x).split([d, self.head, self.head], dim=-1)
        q = q.view(n, q_len, self.heads, self.head).transpose(1, 2)  # (N, H, Q, D/H)
        k = k.unsqueeze(1).expand(n, self.heads, q_len, self.head)   # the shared head
        v = v.unsqueeze(1).expand(n, self.heads, q_len, self.head)
        o = attention(q, k, v, self.head ** -0.5, self.causal)
        return self.out(o.transpose(1, 2).reshape(n, q_len, d))


class CrossAttention(nn.Module):
    """docs/model.md section 2.2: LayerNorm on the queries, heads x 64, to_q / to_kv without bias, a
    learned null key and value prepended per head, scale 64^-1/2, to_out Linear without bias then
    LayerNorm."""

    def __init__(self, m):
        super().__init__()
        d = m["dim"]
        self.heads, self.head = m["cross_heads"], m["cross_head_dim"]
        inner = self.heads * self.head
        self.norm = nn.LayerNorm(d)
        self.to_q = nn.Linear(d, inner, bias=False)
        self.to_kv = nn.Linear(d, 2 * inner, bias=False)
        self.null_kv = nn.Parameter(torch.randn(2, self.head))
        self.to_out = nn.Sequential(nn.Linear(inner, d, bias=False), nn.LayerNorm(d))

    def forward(self, x, context):  # (B, Q, D), (B, L, D)
        b, q_len, _ = x.shape
        h, e = self.heads, self.head
        q = self.to_q(self.norm(x)).view(b, q_len, h, e).transpose(1, 2)  # (B, h, Q, e)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        k = k.reshape(b, -1, h, e).transpose(1, 2)  # (B, h, L, e)
        v = v.reshape(b, -1, h, e).transpose(1, 2)
        null_k = self.null_kv[0].view(1, 1, 1, e).expand(b, h, 1, e)
        null_v = self.null_kv[1].view(1, 1, 1, e).expand(b, h, 1, e)
        k, v = torch.cat([null_k, k], dim=2), torch.cat([null_v, v], dim=2)  # (B, h, 1 + L, e)
        o = attention(q, k, v, e ** -0.5, causal=False)
        return self.to_out(o.transpose(1, 2).reshape(b, q_len, h * e))


class QFormerBlock(nn.Module):
    """docs/model.md section 2: self-attention, cross-attention (when the block has it), MLP; no
    residuals unless model.residual. attend() and rest() split it so the first block's query
    self-attention can run once per step."""

    def __init__(self, m, cross):
        super().__init__()
        d, hidden = m["dim"], int(m["qformer_mlp_ratio"] * m["dim"])
        self.residual = m["residual"]
        self.attn = MultiQuerySelfAttention(m)
        self.cross = CrossAttention(m) if cross else None
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), nn.GELU(),
                                 nn.Linear(hidden, d), nn.Dropout(m["dropout"]))

    def attend(self, x):
        return x + self.attn(x) if self.residual else self.attn(x)

    def rest(self, x, context):
        if self.cross is not None:
            x = x + self.cross(x, context) if self.residual else self.cross(x, context)
        return x + self.mlp(x) if self.residual else self.mlp(x)


class QFormerRest(nn.Module):
    """The Q-Former after the first block's query self-attention: (B, Q, D) -> (B, Q, D)."""

    def __init__(self, blocks):
        super().__init__()
        self.blocks = blocks

    def forward(self, x, context):
        x = self.blocks[0].rest(x, context)
        for block in self.blocks[1:]:
            x = block.rest(block.attend(x), context)
        return x


class DecoderBlock(nn.Module):
    """timm's pre-norm ViT block: qkv with bias, heads of D/heads, MLP ratio, LayerNorm eps 1e-6."""

    def __init__(self, m):
        super().__init__()
        dd, hidden = m["decoder_dim"], int(m["decoder_mlp_ratio"] * m["decoder_dim"])
        self.heads = m["decoder_heads"]
        self.norm1, self.norm2 = nn.LayerNorm(dd, eps=1e-6), nn.LayerNorm(dd, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dd, 3 * dd), nn.Linear(dd, dd)
        self.fc1, self.fc2 = nn.Linear(dd, hidden), nn.Linear(hidden, dd)

    def forward(self, x):  # (B, N, D_d)
        b, n, dd = x.shape
        e = dd // self.heads
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, e).permute(2, 0, 3, 1, 4)
        o = attention(qkv[0], qkv[1], qkv[2], e ** -0.5, causal=False)  # (B, heads, N, e)
        x = x + self.proj(o.transpose(1, 2).reshape(b, n, dd))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def sincos_2d(dim, grid):
    """MAE's fixed position embedding (docs/model.md section 3): the column index in channels
    [0, D/2), the row index in [D/2, D); each half sin then cos of pos * 1/10000^(i/(D/4))."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    pos = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")

    def half(coord):
        angles = coord.reshape(-1, 1) * omega  # (g*g, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([half(cols), half(rows)], dim=1).float()  # (g*g, D)


class Decoder(nn.Module):
    """docs/model.md section 3: Linear embed + fixed position, [registers, CLS, grid tokens],
    pre-norm blocks, final LayerNorm, Linear to p*p*3 on EVERY token, prefix dropped,
    unpatchified."""

    def __init__(self, m, image_size):
        super().__init__()
        dd, p = m["decoder_dim"], m["decoder_patch"]
        self.grid, self.patch, self.registers = image_size // p, p, m["decoder_registers"]
        self.embed = nn.Linear(m["dim"], dd)
        self.register_buffer("pos", sincos_2d(dd, self.grid).unsqueeze(0))  # (1, g*g, D_d)
        self.cls = nn.Parameter(torch.randn(1, 1, dd) * 1e-3)
        self.reg = nn.Parameter(torch.randn(1, self.registers, dd) * 1e-3)
        self.blocks = nn.ModuleList(DecoderBlock(m) for _ in range(m["decoder_depth"]))
        self.norm = nn.LayerNorm(dd)
        self.pred = nn.Linear(dd, p * p * 3)

    def forward(self, z):  # (B, Q, D) -> (B, 3, H, W)
        b = z.shape[0]
        x = self.embed(z) + self.pos
        x = torch.cat([self.reg.expand(b, -1, -1), self.cls.expand(b, -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.pred(self.norm(x))[:, self.registers + 1:]  # (B, g*g, p*p*3)
        g, p = self.grid, self.patch
        # Each token's outputs are (row in patch, column in patch, channel), channel fastest.
        x = x.reshape(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4)  # (B, 3, g, p, g, p)
        return x.reshape(b, 3, g * p, g * p)


def build_trainable(cfg, encoder_width):
    """The trainable parts, keyed as count_flops.py counts them; `queries` is the (1, Q, D) learned
    queries. qformer_rest shares the blocks of qformer_blocks."""
    m, size = cfg["model"], cfg["data"]["image_size"]
    if m["queries"] != (size // m["decoder_patch"]) ** 2:
        raise ValueError("model.queries must equal (image_size / decoder_patch)^2")
    blocks = nn.ModuleList(QFormerBlock(m, m["cross_attn_every_block"] or i % 2 == 0)
                           for i in range(m["qformer_depth"]))
    parts = nn.ModuleDict({"projection": nn.Linear(encoder_width, m["dim"]),
                           "qformer_blocks": blocks, "qformer_rest": QFormerRest(blocks),
                           "decoder": Decoder(m, size)})
    parts.queries = nn.Parameter(torch.randn(1, m["queries"], m["dim"]) * 1e-3)
    return parts


def perceptual_maps(image_size, h_x, h_xhat, patch_sizes):
    """docs/model.md section 4: per patch size and layer, 1 - cos over channels of the patch
    tokens (CLS dropped, row-major g x g), bilinear to the image size; the patch sizes' maps
    multiplied per layer. h_*[patch][layer] is (B, 1 + g*g, C); returns (R, B, 1, H, W)."""
    per_layer = None
    for p, hx, hy in zip(patch_sizes, h_x, h_xhat):
        g = image_size // p
        maps = []
        for a, b in zip(hx, hy):
            a = a[:, 1:].transpose(1, 2).reshape(a.shape[0], -1, g, g)  # (B, C, g, g)
            b = b[:, 1:].transpose(1, 2).reshape(b.shape[0], -1, g, g)
            dist = 1 - F.cosine_similarity(a, b, dim=1, eps=1e-8).unsqueeze(1)  # (B, 1, g, g)
            maps.append(F.interpolate(dist, size=(image_size, image_size), mode="bilinear",
                                      align_corners=False))
        per_layer = maps if per_layer is None else [u * v for u, v in zip(per_layer, maps)]
    return torch.stack(per_layer)
