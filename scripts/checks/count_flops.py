#!/usr/bin/env python3
"""Counts the FLOPs of qfae's training and evaluation steps with PyTorch's own counter
(torch.utils.flop_counter.FlopCounterMode), independently of src/bench/flops.cpp: the frozen
networks are the exported TorchScript files, the trainable part is rendered here from docs/model.md.

  python scripts/checks/count_flops.py --config configs/brats.yaml --json flops.json
  python scripts/checks/count_flops.py --config configs/brats.yaml --run meta:64 --run cpu:2 \
      --encoder dino.pt --perceptual mae.pt

Needs torch and timm (scripts/install-torch.sh); never downloads anything. Without --encoder /
--perceptual it exports random-init backbones with scripts/export_backbone.py into --export-dir
($QFAE_EXPORT_CACHE, else ~/.cache/qfae/exports), once: a file already there is reused.

What is counted, and how it lines up with qfae's conventions (docs/performance.md):
- FlopCounterMode counts matrix products only: mm, addmm, bmm, baddbmm (2 m n k), convolution and
  convolution_backward (one product per gradient asked for), and the fused attention kernels of
  CUDA. Norms, softmax, GELU, the causal mask, upsampling, the cosine and Adam count nothing; so
  does qfae's formula.
- Attention runs on PyTorch's MATH path (sdpa_kernel(MATH)), i.e. explicit q k^T and A v products:
  the CPU's fused kernel (_scaled_dot_product_flash_attention_for_cpu) has no formula in
  FlopCounterMode and would silently count 0, and the CUDA fused kernels' backward formula counts
  5 products (it recomputes q k^T), where autograd on the stored attention matrix runs 4, the
  convention of qfae's "2x the attention products". Causal masks are thus counted in full, as qfae
  counts them. The trainable part is written with explicit matmuls, the same products.
- The first Q-Former block's self-attention reads the learned queries only: it runs once per STEP
  on (1, Q, D) and is expanded over the batch, as qfae runs it (the tiled form of docs/model.md
  section 2.4 gives the same values), so per-image figures depend on the batch; qfae divides by
  the same batch.
- The backward runs in stages, one FlopCounterMode per stage (loss -> MAE on x_hat -> decoder ->
  Q-Former -> query self-attention -> projection), each stage's input a detached leaf that requires
  grad exactly when the real input does; on the meta device the whole step is also counted in one
  piece and must give the same total.
- The TorchScript graph executor's optimisations are off (torch.jit.optimized_execution(False)):
  every call runs the module's ops as written, with eager autograd.
"""
import argparse
import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import zipfile

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent  # scripts/
sys.path.insert(0, str(SCRIPTS / "lib"))  # flop_model.py, imported once torch is known to be there

# The defaults of docs/model.md (= include/qfae/config/config.h's), for keys a config file leaves
# out.
DEFAULTS = {
    "data": {"image_size": 224},
    "backbone": {"encoders": [], "encoder_model": "vit_large_patch14_reg4_dinov2.lvd142m",
                 "encoder_dim": 1024, "taps": [-2, -4],
                 "perceptual_model": "vit_large_patch16_224.mae"},
    "model": {"dim": 768, "queries": 784, "qformer_depth": 1, "qformer_heads": 8,
              "cross_heads": 8, "cross_head_dim": 64, "qformer_mlp_ratio": 4.0,
              "decoder_mlp_ratio": 4.0, "dropout": 0.01,
              "causal": True, "residual": False, "cross_attn_every_block": False,
              "decoder_dim": 768, "decoder_depth": 6, "decoder_heads": 12, "decoder_patch": 8,
              "decoder_registers": 4, "decoder_checkpoint": 0},
    "loss": {"patch_sizes": [32, 56], "layers": [15, 19]},
    "eval": {"patch_sizes": [16, 32, 56], "layers": [11, 15, 19], "pixel_reduction": "max",
             "layer_reduction": "mean"},
    "train": {"batch_size": 64},
}

# File names in the export cache (shared with the export round-trip test).
SHORT_NAMES = {"vit_large_patch14_reg4_dinov2.lvd142m": "dinov2_vitl14_reg4",
               "vit_large_patch16_224.mae": "mae_vitl16"}

PART_ORDER = ["encoder", "projection", "qformer_query_self_attention", "qformer", "decoder",
              "perceptual_x", "perceptual_xhat", "loss_and_maps", "optimizer"]


def log(message):
    print(f"[count_flops] {message}", file=sys.stderr, flush=True)


def fail(message):
    print(f"count_flops: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=pathlib.Path, required=True,
                   help="qfae YAML config (e.g. configs/brats.yaml, or `qfae config` output); "
                        "keys it leaves out take docs/model.md's defaults")
    p.add_argument("--encoder", type=pathlib.Path, help="exported encoder (.pt) to use")
    p.add_argument("--perceptual", type=pathlib.Path, help="exported perceptual MAE (.pt) to use")
    p.add_argument("--export-dir", type=pathlib.Path,
                   default=pathlib.Path(os.environ.get("QFAE_EXPORT_CACHE") or
                                        pathlib.Path.home() / ".cache" / "qfae" / "exports"),
                   help="where random-init exports are made and reused when --encoder / "
                        "--perceptual are not given (default $QFAE_EXPORT_CACHE or "
                        "~/.cache/qfae/exports)")
    p.add_argument("--run", action="append", default=None, metavar="DEVICE:BATCH",
                   help="count one training and one evaluation step on DEVICE (meta: shapes only, "
                        "instant; cpu: really executed) at BATCH images; repeatable "
                        "(default meta:<train.batch_size>)")
    p.add_argument("--json", type=pathlib.Path, help="write the counts here")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# Config and backbones


def load_config(path):
    import yaml

    if not path.is_file():
        fail(f"--config {path}: no such file")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    cfg, defaulted = {}, []
    for area, keys in DEFAULTS.items():
        given = dict(raw.get(area) or {})
        if area == "model" and "mlp_ratio" in given:  # qfae's shorthand for both ratios
            ratio = given.pop("mlp_ratio")
            given = {"qformer_mlp_ratio": ratio, "decoder_mlp_ratio": ratio, **given}
        cfg[area] = {}
        for key, default in keys.items():
            if key in given:
                cfg[area][key] = given[key]
            else:
                cfg[area][key] = default
                defaulted.append(f"{area}.{key}")
    if defaulted:
        log(f"{path}: docs/model.md defaults for {', '.join(defaulted)}")
    return cfg


def description(path):
    """The qfae.json a TorchScript export carries (read from the zip, weights untouched)."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("extra/qfae.json")]
        if not names:
            fail(f"{path}: no qfae.json inside; export it with scripts/export_backbone.py")
        return json.loads(z.read(names[0]))


def fused_attention(path):
    """Whether the export calls scaled_dot_product_attention (export_backbone.py
    --fused-attention): LibTorch 1.13 cannot load it, so the shared cache never keeps one."""
    with zipfile.ZipFile(path) as z:
        return any(b"scaled_dot_product_attention" in z.read(n) for n in z.namelist()
                   if "/code/" in n and n.endswith(".py"))


def model_depth(model_name, image_size):
    """Blocks of a timm model, built on the meta device (no weights, no download)."""
    import timm
    import torch

    with torch.device("meta"):
        model = timm.create_model(model_name, pretrained=False, img_size=image_size,
                                  num_classes=0)
    return len(model.blocks)


def short_name(model_name):
    return SHORT_NAMES.get(model_name, re.sub(r"[^A-Za-z0-9]+", "_", model_name))


def export(model_name, image_size, patch_sizes, blocks, path):
    """scripts/export_backbone.py --random-init, written to a temporary name then renamed, so that
    a concurrent test never reads half a file; an existing file is reused after a check."""
    if path.is_file() and fused_attention(path):
        log(f"{path}: exported with fused attention, exporting again")
    elif path.is_file():
        d = description(path)
        want = {"model": model_name, "image_size": image_size, "blocks": blocks}
        have = {k: d.get(k) for k in want}
        if have != want or (patch_sizes and d.get("patch_sizes") != patch_sizes):
            fail(f"{path}: cached export holds {d}, expected {want} patch sizes {patch_sizes}; "
                 f"remove it")
        log(f"reusing {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    cmd = [sys.executable, str(SCRIPTS / "export_backbone.py"), "--model", model_name,
           "--image-size", str(image_size), "--blocks", str(blocks), "--random-init",
           "--out", str(tmp)]
    if patch_sizes:
        cmd[4:4] = ["--patch-size", *map(str, patch_sizes)]
    log(f"exporting {path.name}: {' '.join(cmd[1:])}")
    start = time.time()
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log(f"exported {path} in {time.time() - start:.0f} s")
    return path


def backbone_files(args, cfg):
    size = cfg["data"]["image_size"]
    bb = cfg["backbone"]
    encoder, perceptual = args.encoder, args.perceptual
    if encoder is None:
        depth = model_depth(bb["encoder_model"], size)
        blocks = max(t + depth if t < 0 else t for t in bb["taps"]) + 1
        name = f"{short_name(bb['encoder_model'])}_{size}_b{blocks}.pt"
        encoder = export(bb["encoder_model"], size, None, blocks, args.export_dir / name)
    if perceptual is None:
        patches = sorted(set(cfg["loss"]["patch_sizes"]) | set(cfg["eval"]["patch_sizes"]))
        blocks = max(cfg["loss"]["layers"] + cfg["eval"]["layers"]) + 1
        name = (f"{short_name(bb['perceptual_model'])}_{size}_p{'-'.join(map(str, patches))}"
                f"_b{blocks}.pt")
        perceptual = export(bb["perceptual_model"], size, patches, blocks, args.export_dir / name)
    for p in (encoder, perceptual):
        if not p.is_file():
            fail(f"{p}: no such file")
    return encoder.resolve(), perceptual.resolve()


# ---------------------------------------------------------------------------------------------
# The steps


class Counter:
    """Per-part forward / backward FLOPs of one step, one FlopCounterMode per counted stage."""

    def __init__(self):
        self.parts = {name: {"forward": 0, "backward": 0} for name in PART_ORDER}
        self.ops = {}

    def count(self, part, phase, fn):
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            out = fn()
        self.parts[part][phase] += counter.get_total_flops()
        for op, flops in counter.get_flop_counts().get("Global", {}).items():
            key = f"{part}.{phase}.{op}"
            self.ops[key] = self.ops.get(key, 0) + flops
        return out


def run_step(cfg, nets, batch, device, train, staged=True):
    """One training or evaluation step as qfae runs it; returns a Counter (staged) or the total
    FLOPs of the step counted in one piece (staged=False, training only)."""
    import flop_model
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    enc, mae, ae = nets["encoder"], nets["perceptual"], nets["trainable"]
    size = cfg["data"]["image_size"]
    bb, area = cfg["backbone"], cfg["loss" if train else "eval"]
    taps = [t + nets["encoder_depth"] if t < 0 else t for t in bb["taps"]]
    patches, layers = list(area["patch_sizes"]), list(area["layers"])
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device)
    ae.train(train)
    c = Counter()
    # A stage's input: a leaf that requires grad (training, counted stage by stage) or itself.
    leaf = (lambda t: t.detach().requires_grad_()) if staged and train else (lambda t: t)
    count = c.count if staged else (lambda part, phase, fn: fn())

    def encoder_tokens():
        with torch.no_grad():  # frozen, no gradient: qfae runs it under NoGradGuard
            return torch.cat(enc(x, taps, enc_patch), dim=1)  # (B, taps x N, E)

    def mae_hidden(images):
        return [mae(images, layers, p) for p in patches]  # [patch][layer] (B, 1 + g*g, C)

    enc_patch = nets["encoder_patch"]
    grad = torch.enable_grad() if train else torch.no_grad()
    whole = contextlib.nullcontext() if staged else FlopCounterMode(display=False)
    with whole, grad:
        tokens = count("encoder", "forward", encoder_tokens)
        proj = count("projection", "forward", lambda: ae["projection"](tokens))  # (B, L, D)
        first = ae["qformer_blocks"][0]
        # Once per step on the (1, Q, D) learned queries, then expanded over the batch.
        sa = count("qformer_query_self_attention", "forward", lambda: first.attend(ae.queries))
        sa_in, proj_in = leaf(sa), leaf(proj)
        z = count("qformer", "forward",
                  lambda: ae["qformer_rest"](sa_in.expand(batch, -1, -1), proj_in))  # (B, Q, D)
        z_in = leaf(z)
        x_hat = count("decoder", "forward", lambda: ae["decoder"](z_in))  # (B, 3, H, W)
        x_hat_in = leaf(x_hat)
        with torch.no_grad():  # the MAE on x: no gradient (qfae: NoGradGuard on x.detach())
            h_x = count("perceptual_x", "forward", lambda: mae_hidden(x))
        # The MAE on x_hat: its weights are frozen, the gradient flows to x_hat only.
        h_xhat = count("perceptual_xhat", "forward", lambda: mae_hidden(x_hat_in))
        h_xhat_in = [[leaf(t) for t in per_patch] for per_patch in h_xhat]
        if train:
            loss = count("loss_and_maps", "forward",
                         lambda: flop_model.perceptual_maps(size, h_x, h_xhat_in, patches).mean())
        else:
            def scores():
                maps = flop_model.perceptual_maps(size, h_x, h_xhat_in, patches)  # (R,B,1,H,W)
                pixel = maps.mean(dim=0)
                flat = maps.flatten(2)
                over_pixels = (flat.amax(dim=2) if area["pixel_reduction"] == "max"
                               else flat.mean(dim=2))
                return pixel, (over_pixels.amax(dim=0) if area["layer_reduction"] == "max"
                               else over_pixels.mean(dim=0))
            count("loss_and_maps", "forward", scores)
            return c
        if not staged:
            loss.backward()
    if not staged:
        return whole.get_total_flops()

    # Backward, stage by stage from the loss down; each stage's input gradient feeds the next.
    count("loss_and_maps", "backward", loss.backward)
    flat_out = [t for per_patch in h_xhat for t in per_patch]
    flat_in = [t for per_patch in h_xhat_in for t in per_patch]
    count("perceptual_xhat", "backward",
          lambda: torch.autograd.backward(flat_out, [t.grad for t in flat_in]))
    count("decoder", "backward", lambda: x_hat.backward(x_hat_in.grad))
    count("qformer", "backward", lambda: z.backward(z_in.grad))
    count("qformer_query_self_attention", "backward", lambda: sa.backward(sa_in.grad))
    count("projection", "backward", lambda: proj.backward(proj_in.grad))
    # The encoder and the MAE on x built no graph: nothing to run backward for them.
    params = [p for p in ae.parameters() if p.requires_grad]
    missing = [n for n, p in ae.named_parameters() if p.grad is None]
    if missing:
        fail(f"trainable parameters without a gradient: {missing[:5]}")
    optimizer = torch.optim.Adam(params, lr=8e-5)
    count("optimizer", "forward", optimizer.step)  # elementwise: counts 0, as in qfae
    return c


def summarise(counter, batch):
    parts = {}
    for name in PART_ORDER:
        f = counter.parts[name]
        parts[name] = {"forward": f["forward"], "backward": f["backward"]}
    forward = sum(p["forward"] for p in parts.values())
    backward = sum(p["backward"] for p in parts.values())
    return {"batch": batch, "parts": parts, "forward": forward, "backward": backward,
            "total": forward + backward, "per_image": (forward + backward) / batch,
            "ops": counter.ops}


def count_run(cfg, files, device, batch):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import flop_model

    start = time.time()
    torch.manual_seed(0)
    enc = torch.jit.load(str(files[0]), map_location=device)
    mae = torch.jit.load(str(files[1]), map_location=device)
    for net in (enc, mae):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    enc_desc = description(files[0])
    with torch.device(device):
        trainable = flop_model.build_trainable(cfg, enc_desc["width"])
    nets = {"encoder": enc, "perceptual": mae, "trainable": trainable,
            "encoder_depth": enc_desc["depth"], "encoder_patch": enc_desc["patch_sizes"][0]}
    out = {"device": device, "batch": batch}
    with torch.jit.optimized_execution(False), sdpa_kernel([SDPBackend.MATH]):
        out["train"] = summarise(run_step(cfg, nets, batch, device, train=True), batch)
        out["eval"] = summarise(run_step(cfg, nets, batch, device, train=False), batch)
        if device == "meta":  # cheap there: the whole step in one FlopCounterMode
            trainable.zero_grad(set_to_none=True)
            whole = run_step(cfg, nets, batch, device, train=True, staged=False)
            out["train"]["unstaged_total"] = whole
            if whole != out["train"]["total"]:
                fail(f"staged backward counts {out['train']['total']}, one piece {whole}")
    out["seconds"] = time.time() - start
    return out


def report(run):
    lines = [f"{run['device']}, batch {run['batch']} ({run['seconds']:.1f} s): GFLOP per image "
             f"(forward / backward)"]
    for step in ("train", "eval"):
        s = run[step]
        b = run["batch"]
        lines.append(f"  {step}: {s['per_image'] / 1e9:.6f} GFLOP per image "
                     f"({s['forward'] / b / 1e9:.6f} + {s['backward'] / b / 1e9:.6f}), "
                     f"{s['total'] / 1e12:.6f} TFLOP per step")
        for name, p in s["parts"].items():
            if p["forward"] or p["backward"] or name in ("loss_and_maps",):
                lines.append(f"    {name:30s} {p['forward'] / b / 1e9:12.6f} "
                             f"{p['backward'] / b / 1e9:12.6f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        import timm  # noqa: F401
        import torch
    except ImportError as e:
        fail(f"needs torch and timm ({e}); see scripts/install-torch.sh")
    cfg = load_config(args.config)
    if cfg["model"]["decoder_checkpoint"]:
        log("model.decoder_checkpoint ignored: model FLOPs are counted, without recomputation")
    runs = []
    for spec in args.run or [f"meta:{cfg['train']['batch_size']}"]:
        device, _, batch = spec.partition(":")
        if device not in ("meta", "cpu") or not batch.isdigit() or int(batch) < 1:
            fail(f"--run {spec}: expected meta:N or cpu:N")
        runs.append((device, int(batch)))
    files = backbone_files(args, cfg)
    result = {"config": str(args.config.resolve()), "encoder": str(files[0]),
              "perceptual": str(files[1]), "torch": torch.__version__, "runs": []}
    for device, batch in runs:
        run = count_run(cfg, files, device, batch)
        print(report(run), flush=True)
        result["runs"].append(run)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
        os.replace(tmp, args.json)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
