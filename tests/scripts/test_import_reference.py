#!/usr/bin/env python3
"""scripts/import_reference.py on a synthetic reference checkpoint with exactly the released
checkpoints' names and shapes (tests/fixtures/reference_brain_keys.json), random values.

Usage: test_import_reference.py REPO_ROOT QFAE_BINARY
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import torch

repo = pathlib.Path(sys.argv[1])
qfae = sys.argv[2]
sys.path.insert(0, str(repo / "scripts"))
import safetensors_lite  # noqa: E402

keys = json.loads((repo / "tests/fixtures/reference_brain_keys.json").read_text())
gen = torch.Generator().manual_seed(0)
state = {}
for name, shape in keys.items():
    if name.startswith("encoders.0.model."):
        # Exact shape, one stored element: keeps the file small (the encoder needs timm anyway).
        state[name] = torch.zeros(1).expand(*shape) if shape else torch.zeros(())
    else:
        state[name] = torch.randn(*shape, generator=gen)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    ckpt = tmp / "last_ckpt.pth"
    torch.save({"model": state, "epoch": 299, "optimizer": {}}, ckpt)
    out = tmp / "model"
    r = subprocess.run([sys.executable, str(repo / "scripts/import_reference.py"), str(ckpt),
                        "--out", str(out)], capture_output=True, text=True)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, "import exits 0")
    tensors, meta = safetensors_lite.load_file(str(out / "model.safetensors"))
    trained = {k for k in keys if not k.startswith("encoders.0.model.")}
    check(set(tensors) == trained, "model.safetensors holds exactly the trained names")
    for name in trained & set(tensors):
        if list(tensors[name].shape) != keys[name] or not torch.equal(tensors[name], state[name]):
            check(False, f"{name} is copied exactly")
            break
    n_trainable = sum(t.numel() for k, t in tensors.items() if k != "decoder.decoder_pos_embed")
    print(f"trainable parameters: {n_trainable}")
    check(abs(n_trainable / 1e6 - 52.3) < 0.05, "about 52.3 M trainable parameters")
    try:
        import timm  # noqa: F401
    except ImportError:
        check("timm is not installed" in r.stderr, "a missing timm is said clearly")
    # The written config must be one qfae accepts, with the brain dimensions.
    r = subprocess.run([qfae, "config", "--config", str(out / "config.yaml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"qfae accepts the config: {r.stderr.strip()}")
    for expected in ("dim: 768", "queries: 784", "qformer_heads: 8", "cross_heads: 8",
                     "cross_head_dim: 64", "decoder_depth: 6", "decoder_heads: 12",
                     "decoder_patch: 8", "image_size: 224", "encoder_dim: 1024",
                     "decoder_registers: 4", "qformer_depth: 1"):
        check(expected in r.stdout, f"config has '{expected}'")
    # A file that is not a QFAE checkpoint is refused by name.
    bad = tmp / "bad.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    r = subprocess.run([sys.executable, str(repo / "scripts/import_reference.py"), str(bad),
                        "--out", str(tmp / "bad")], capture_output=True, text=True)
    check(r.returncode != 0 and "bad.pth" in r.stderr, "a foreign checkpoint is refused by name")

print(f"{0 if failures else 1} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
