#!/usr/bin/env python3
"""Turns a checkpoint of the reference QFAE code (last_ckpt.pth) into a qfae model folder:

  OUT/model.safetensors   the trained parts (projection, Q-Former, decoder) under the reference's
                          own names, float32; Python reads it with safetensors.torch.load_file
  OUT/encoder.pt          the DINOv2 encoder stored in the same checkpoint, exported as a qfae
                          TorchScript backbone (needs timm; skipped with a message without it)
  OUT/config.yaml         a qfae config matching the checkpoint's dimensions
  OUT/state.json          what was imported, from where

Usage: python3 scripts/import_reference.py last_ckpt.pth --out models/brats
         [--perceptual backbones/mae.pt] [--encoder-model vit_large_patch14_reg4_dinov2.lvd142m]
Nothing is downloaded.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import safetensors_lite  # noqa: E402

TRAINED_PREFIXES = ("encoders.", "junction.", "decoder.")


def find_state_dict(obj):
    """The model state dict inside a checkpoint: the object itself or one of its usual keys."""
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict", "module"):
            if key in obj:
                found = find_state_dict(obj[key])
                if found is not None:
                    return found
    return None


def split_state(state):
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    encoder = {k: v for k, v in state.items() if k.startswith("encoders.0.model.")}
    trained = {k: v for k, v in state.items()
               if k.startswith(TRAINED_PREFIXES) and not k.startswith("encoders.0.model.")}
    unknown = sorted(k for k in state if k not in encoder and k not in trained)
    return encoder, trained, unknown


def count_blocks(state, prefix):
    idx = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(idx) + 1 if idx else 0


def derive_config(trained, encoder_state, encoder_path, perceptual, encoder_model):
    queries = trained["junction.queries"].shape
    pos = trained["decoder.decoder_pos_embed"].shape
    pred = trained["decoder.decoder_prediction.weight"].shape
    grid = int(round(pos[1] ** 0.5))
    patch = int(round((pred[0] // 3) ** 0.5))
    dim = queries[2]
    wqkv = trained["junction.blocks.0.attn.Wqkv.weight"].shape[0]
    head_dim = (wqkv - dim) // 2
    null_kv = trained["junction.blocks.0.cross_attn.null_kv"].shape
    to_q = trained["junction.blocks.0.cross_attn.to_q.weight"].shape
    fc1 = trained["junction.blocks.0.projection.1.weight"].shape
    dec_dim = pos[2]
    enc_dim = trained["encoders.0.final_projection.weight"].shape[1]
    depth = count_blocks(encoder_state, "encoders.0.model.blocks.") if encoder_state else 24
    return {
        "name": "imported",
        "data": {"image_size": grid * patch},
        "backbone": {"encoders": [encoder_path], "encoder_model": encoder_model,
                     "encoder_dim": enc_dim, "taps": [-2, -4], "perceptual": perceptual},
        "model": {"dim": dim, "queries": queries[1],
                  "qformer_depth": count_blocks(trained, "junction.blocks."),
                  "qformer_heads": dim // head_dim, "cross_heads": to_q[0] // null_kv[1],
                  "cross_head_dim": null_kv[1], "mlp_ratio": fc1[0] / dim,
                  "decoder_dim": dec_dim,
                  "decoder_depth": count_blocks(trained, "decoder.decoder_blocks."),
                  "decoder_heads": 12 if dec_dim == 768 else max(1, dec_dim // 64),
                  "decoder_patch": patch,
                  "decoder_registers": trained["decoder.reg_tokens"].shape[1]},
        "_encoder_depth": depth,
    }


def to_yaml(cfg, indent=0):
    lines = []
    for key, value in cfg.items():
        if key.startswith("_"):
            continue
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(value, indent + 1))
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return "\n".join(lines)


def export_encoder(encoder_state, out_path, model_name, depth):
    weights = {k[len("encoders.0.model."):]: v for k, v in encoder_state.items()}
    try:
        import timm  # noqa: F401
    except ImportError:
        kept = os.path.splitext(out_path)[0] + "_weights.pth"
        torch.save(weights, kept)
        print("[import] timm is not installed: the encoder was NOT exported. Its weights are in "
              f"{kept}; on a machine with timm run scripts/export_backbone.py --model "
              f"{model_name} --image-size 224 --blocks {depth - 1} --weights {kept} "
              f"--out {out_path}", file=sys.stderr)
        return False
    with tempfile.TemporaryDirectory() as tmp:
        w = os.path.join(tmp, "encoder.pth")
        torch.save(weights, w)
        script = pathlib.Path(__file__).resolve().parent / "export_backbone.py"
        # The deepest default tap is block -2: blocks after it are never used.
        subprocess.run([sys.executable, str(script), "--model", model_name, "--image-size", "224",
                        "--weights", w, "--blocks", str(depth - 1), "--out", out_path], check=True)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="reference checkpoint (last_ckpt.pth)")
    p.add_argument("--out", required=True, help="qfae model folder to write")
    p.add_argument("--perceptual", default="",
                   help="TorchScript MAE from scripts/export_backbone.py (written into the config)")
    p.add_argument("--encoder-model", default="vit_large_patch14_reg4_dinov2.lvd142m")
    p.add_argument("--skip-encoder", action="store_true", help="only convert the trained parts")
    args = p.parse_args(argv)

    if not os.path.isfile(args.checkpoint):
        sys.exit(f"[import] error: '{args.checkpoint}' does not exist")
    obj = torch.load(args.checkpoint, map_location="cpu")
    state = find_state_dict(obj)
    if state is None:
        sys.exit(f"[import] error: '{args.checkpoint}' holds no model state dict")
    encoder, trained, unknown = split_state(state)
    for need in ("junction.queries", "decoder.decoder_pos_embed",
                 "encoders.0.final_projection.weight"):
        if need not in trained:
            sys.exit(f"[import] error: '{args.checkpoint}' has no '{need}': not a QFAE checkpoint")
    if unknown:
        print(f"[import] ignoring {len(unknown)} keys outside the model: {unknown[:5]}",
              file=sys.stderr)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trained = {k: v.float() for k, v in trained.items()}
    safetensors_lite.save_file(trained, str(out / "model.safetensors"),
                               {"source": os.path.abspath(args.checkpoint), "format": "qfae-1"})
    cfg = derive_config(trained, encoder, "encoder.pt", args.perceptual, args.encoder_model)
    exported = False
    if encoder and not args.skip_encoder:
        exported = export_encoder(encoder, str(out / "encoder.pt"), args.encoder_model,
                                  cfg["_encoder_depth"])
    (out / "config.yaml").write_text("# imported from the reference checkpoint\n" + to_yaml(cfg) + "\n")
    # qfae eval / infer --checkpoint OUT read the progress fields (an import has taken no qfae step
    # and has no calibrated threshold); the rest records the import.
    (out / "state.json").write_text(json.dumps({
        "format": 1, "step": 0, "epoch": 0, "batch": 0,
        "imported_from": os.path.abspath(args.checkpoint),
        "trained_tensors": len(trained), "encoder_tensors": len(encoder),
        "encoder_exported": exported}, indent=1))
    print(f"[import] wrote {out} ({len(trained)} trained tensors"
          f"{', encoder exported' if exported else ''})")


if __name__ == "__main__":
    main()
