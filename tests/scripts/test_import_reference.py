#!/usr/bin/env python3
"""scripts/import_reference.py on synthetic reference checkpoints, one per released config
(tests/fixtures/reference_ini/{brain,chest,liver,resc}.ini, the published code's values) with the
names and shapes of the released checkpoints (tests/fixtures/reference_brain_keys.json, adjusted
to each config) and random values; then a small checkpoint whose decoder is 64 wide with 4 heads,
and the imports that must be refused (exit 2, one line naming the value).

Usage: test_import_reference.py REPO_ROOT QFAE_BINARY
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import torch

repo = pathlib.Path(sys.argv[1])
qfae = sys.argv[2]
sys.path.insert(0, str(repo / "scripts" / "lib"))
import safetensors_lite  # noqa: E402

try:
    import timm  # noqa: F401
    HAS_TIMM = True
except ImportError:
    HAS_TIMM = False
IMPORTER = repo / "scripts/import_reference.py"
# With timm the importer would export the (fake) encoders: test_import_reference_timm.py does that.
NO_EXPORT = ["--skip-encoder"] if HAS_TIMM else []
INI_DIR = repo / "tests/fixtures/reference_ini"
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def read_yaml(path):
    """config.yaml as nested dicts (PyYAML where installed, else the importer's flat subset:
    'key: value' lines, two-space nesting, flow lists)."""
    text = path.read_text()
    try:
        import yaml
        return yaml.safe_load(text)
    except ImportError:
        pass
    root, stack = {}, [(-1, None)]
    stack[0] = (-1, root)
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = json.loads(value.strip())
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# --- checkpoints with the reference's names: shapes from the model's hyper-parameters -----------

def reference_shapes(s):
    """Names and shapes of a reference MQViTAE state dict (one timm DINOv2-reg encoder, final
    projection, Junction, Decoder with cls and register tokens), from model.py's construction."""
    shapes = {}
    e, enc = s["enc_dim"], "encoders.0.model."
    shapes[enc + "cls_token"] = [1, 1, e]
    if s["enc_regs"]:
        shapes[enc + "reg_token"] = [1, s["enc_regs"], e]
    shapes[enc + "pos_embed"] = [1, s["enc_grid"] ** 2, e]  # reg models: no class position
    shapes[enc + "patch_embed.proj.weight"] = [e, 3, s["enc_patch"], s["enc_patch"]]
    shapes[enc + "patch_embed.proj.bias"] = [e]
    for i in range(s["enc_depth"]):
        b = f"{enc}blocks.{i}."
        shapes.update({b + "norm1.weight": [e], b + "norm1.bias": [e],
                       b + "attn.qkv.weight": [3 * e, e], b + "attn.qkv.bias": [3 * e],
                       b + "attn.proj.weight": [e, e], b + "attn.proj.bias": [e],
                       b + "ls1.gamma": [e], b + "norm2.weight": [e], b + "norm2.bias": [e],
                       b + "mlp.fc1.weight": [4 * e, e], b + "mlp.fc1.bias": [4 * e],
                       b + "mlp.fc2.weight": [e, 4 * e], b + "mlp.fc2.bias": [e],
                       b + "ls2.gamma": [e]})
    shapes[enc + "norm.weight"] = [e]
    shapes[enc + "norm.bias"] = [e]
    d = s["dim"]
    shapes["encoders.0.final_projection.weight"] = [d, e]
    shapes["encoders.0.final_projection.bias"] = [d]
    shapes["junction.queries"] = [1, s["queries"], d]
    head, inner, hidden = d // s["q_heads"], s["q_heads"] * 64, int(d * s["q_mlp"])
    for i in range(s["q_blocks"]):
        b = f"junction.blocks.{i}."
        shapes.update({b + "attn.Wqkv.weight": [d + 2 * head, d],
                       b + "attn.Wqkv.bias": [d + 2 * head],
                       b + "attn.out_proj.weight": [d, d], b + "attn.out_proj.bias": [d]})
        if i % 2 == 0:
            c = b + "cross_attn."
            shapes.update({c + "null_kv": [2, 64], c + "norm.weight": [d], c + "norm.bias": [d],
                           c + "to_q.weight": [inner, d], c + "to_kv.weight": [2 * inner, d],
                           c + "to_out.0.weight": [d, inner], c + "to_out.1.weight": [d],
                           c + "to_out.1.bias": [d]})
        shapes.update({b + "projection.0.weight": [d], b + "projection.0.bias": [d],
                       b + "projection.1.weight": [hidden, d], b + "projection.1.bias": [hidden],
                       b + "projection.3.weight": [d, hidden], b + "projection.3.bias": [d]})
    dd, dh = s["dec_dim"], int(s["dec_dim"] * s["dec_mlp"])
    shapes["decoder.cls_token"] = [1, 1, dd]
    if s["dec_regs"]:
        shapes["decoder.reg_tokens"] = [1, s["dec_regs"], dd]
    shapes["decoder.decoder_pos_embed"] = [1, s["dec_grid"] ** 2, dd]
    shapes["decoder.decoder_embed.weight"] = [dd, d]
    shapes["decoder.decoder_embed.bias"] = [dd]
    for i in range(s["dec_depth"]):
        b = f"decoder.decoder_blocks.{i}."
        shapes.update({b + "norm1.weight": [dd], b + "norm1.bias": [dd],
                       b + "attn.qkv.weight": [3 * dd, dd], b + "attn.qkv.bias": [3 * dd],
                       b + "attn.proj.weight": [dd, dd], b + "attn.proj.bias": [dd],
                       b + "norm2.weight": [dd], b + "norm2.bias": [dd],
                       b + "mlp.fc1.weight": [dh, dd], b + "mlp.fc1.bias": [dh],
                       b + "mlp.fc2.weight": [dd, dh], b + "mlp.fc2.bias": [dd]})
    shapes["decoder.decoder_norm.weight"] = [dd]
    shapes["decoder.decoder_norm.bias"] = [dd]
    p = s["dec_patch"]
    shapes["decoder.decoder_prediction.weight"] = [3 * p * p, dd]
    shapes["decoder.decoder_prediction.bias"] = [3 * p * p]
    return shapes


def make_state(shapes, random, seed=0):
    """Encoder tensors hold one stored element (exact shape, tiny file); the trained ones are
    random where `random`, else one stored zero too."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        if random and not name.startswith("encoders.0.model."):
            state[name] = torch.randn(*shape, generator=gen)
        else:
            state[name] = torch.zeros(1).expand(*shape)
    return state


def importer(*args):
    r = subprocess.run([sys.executable, str(IMPORTER), *map(str, args), *NO_EXPORT],
                       capture_output=True, text=True)
    print(f"$ import_reference.py {' '.join(map(str, args))} -> {r.returncode}")
    if r.stdout.strip():
        print(r.stdout.strip())
    if r.stderr.strip():
        print(r.stderr.strip())
    return r


def qfae_config(folder):
    """qfae config on an imported folder: (accepted, printed config)."""
    if not os.access(qfae, os.X_OK):
        check(False, f"the qfae binary {qfae} exists")
        return False, ""
    r = subprocess.run([qfae, "config", "--config", str(folder / "config.yaml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"qfae accepts {folder.name}/config.yaml: {r.stderr.strip()}")
    return r.returncode == 0, r.stdout


def refused(r, *words):
    """Exit 2 and one '[import] error: ...' line on stderr holding every word."""
    lines = r.stderr.strip().splitlines()
    ok = r.returncode == 2 and len(lines) == 1 and lines[0].startswith("[import] error: ")
    return ok and all(w in lines[0] for w in words)


# The released checkpoints' hyper-parameters, as the four released configs give them (all four
# share the model: brain.ini's values, the shapes of tests/fixtures/reference_brain_keys.json).
RELEASED_SHAPES = {"enc_dim": 1024, "enc_depth": 24, "enc_patch": 14, "enc_grid": 16,
                   "enc_regs": 4, "dim": 768, "queries": 784, "q_blocks": 1, "q_heads": 8,
                   "q_mlp": 4, "dec_dim": 768, "dec_depth": 6, "dec_mlp": 4, "dec_patch": 8,
                   "dec_grid": 28, "dec_regs": 4}
# config.yaml as each .ini's text says it must be (keys: the qfae config written by the import).
COMMON = {
    "data.image_size": 224,                                            # RESIZE = 224
    "backbone.encoders": ["encoder.pt"], "backbone.perceptual": "",
    "backbone.encoder_model": "vit_large_patch14_reg4_dinov2.lvd142m",  # MODEL_NAME
    "backbone.encoder_dim": 1024,                                      # FINAL_PROJ_IN_FEATURES
    "backbone.taps": [-2, -4],                                         # USE_HIDDEN_STATE
    "model.dim": 768, "model.queries": 784, "model.qformer_depth": 1,  # JUNCTION_*
    "model.qformer_heads": 8, "model.cross_heads": 8, "model.cross_head_dim": 64,
    "model.qformer_mlp_ratio": 4, "model.decoder_dim": 768, "model.decoder_depth": 6,
    "model.decoder_heads": 12, "model.decoder_mlp_ratio": 4,           # DECODER_*
    "model.decoder_patch": 8, "model.decoder_registers": 4,
    "loss.patch_sizes": [32, 56], "loss.layers": [15, 19],             # PERCEPTUAL_*_TRAIN
    "train.seed": 42, "train.epochs": 300, "train.batch_size": 64, "train.lr": 0.00008,
    "eval.layers": [11, 15, 19],                                       # [TESTING] HSTATE_VAL
}
RELEASED = {  # [TESTING] PERCEPTUAL_PATCH_SIZE_VAL, IMAGE_REDUCTION, IMAGE_MULTI_HSTATE_REDUCTION
    "brain": {"name": "Brain_AD", "eval.patch_sizes": [16, 32, 56],
              "eval.pixel_reduction": "max", "eval.layer_reduction": "mean"},
    "chest": {"name": "Chest_AD", "eval.patch_sizes": [16, 32, 56],
              "eval.pixel_reduction": "mean", "eval.layer_reduction": "max"},
    "liver": {"name": "Liver_AD", "eval.patch_sizes": [8, 16],
              "eval.pixel_reduction": "max", "eval.layer_reduction": "mean"},
    "resc": {"name": "RESC_AD", "eval.patch_sizes": [16, 32, 56],
             "eval.pixel_reduction": "max", "eval.layer_reduction": "mean"},
}

# A small model whose decoder is 64 wide with 4 heads (width / 64 would say 1), every value apart
# from the released ones: encoder 32 wide, 6 blocks, 4 x 14 px; Q-Former 64 wide, 4 heads, MLP
# ratio 2; decoder 2 blocks, MLP ratio 3, 7 x 8 px, 2 registers: 56 px images.
SMALL_SHAPES = {"enc_dim": 32, "enc_depth": 6, "enc_patch": 14, "enc_grid": 4, "enc_regs": 4,
                "dim": 64, "queries": 49, "q_blocks": 1, "q_heads": 4, "q_mlp": 2,
                "dec_dim": 64, "dec_depth": 2, "dec_mlp": 3, "dec_patch": 8, "dec_grid": 7,
                "dec_regs": 2}
SMALL_MODEL = """MODEL_NAME = vit_small_test
N_PATCHES = 4
PATCH_SIZE = 14
N_REG_TOKENS = 4
ADDITIONAL_BLOCK_DIM =
ADDITIONAL_BLOCK_NUM_HEADS =
ADDITIONAL_BLOCK_MLP_RATIO =
FINAL_PROJ_IN_FEATURES = 32
FINAL_PROJ_OUT_FEATURES = 64
USE_HIDDEN_STATE = -1
JUNCTION_N_BLOCKS = 1
JUNCTION_DIM = 64
JUNCTION_OUTPUT_DIM = 64
JUNCTION_N_QUERIES = 49
JUNCTION_HEADS = 4
JUNCTION_MLP_RATIO = 2
DECODER_DIM = 64
DECODER_N_PATCHES = 7
DECODER_PATCH_SIZE = 8
DECODER_N_REG_TOKENS = 2
DECODER_DEPTH = 2
DECODER_NUM_HEADS = 4
DECODER_MLP_RATIO = 3
DECODER_OUT_CHANNELS = 3
RESIZE = 56
"""
SMALL_INI = f"""[TRAINING]
SEED = 7
EXPERIMENT_NAME = small run
{SMALL_MODEL}
CRITERION_TRAIN = PERCEPTUAL_VIT_mae_multi
PERCEPTUAL_METRIC_TRAIN = cosine
PERCEPTUAL_HSTATE_TRAIN = -1, 7
PERCEPTUAL_PATCH_SIZE_TRAIN = 14, 56
BATCH_SIZE_TRAIN = 3
LR = 0.001
N_EPOCHS = 5

[TESTING]
SEED = 7
{SMALL_MODEL}
CRITERION_VAL = PERCEPTUAL_VIT_mae_multi
PERCEPTUAL_METRIC_VAL = cosine
PERCEPTUAL_HSTATE_VAL = 3, 5
PERCEPTUAL_PATCH_SIZE_VAL = 8, 28
IMAGE_REDUCTION = mean
IMAGE_MULTI_HSTATE_REDUCTION = max
PIXEL_MULTI_HSTATE_REDUCTION = mean
"""
SMALL_EXPECTED = {
    "name": "small_run", "data.image_size": 56,
    "backbone.encoders": ["encoder.pt"], "backbone.perceptual": "",
    "backbone.encoder_model": "vit_small_test", "backbone.encoder_dim": 32,
    "backbone.taps": [-1],  # "-1": the reference's last hidden state
    "model.dim": 64, "model.queries": 49, "model.qformer_depth": 1, "model.qformer_heads": 4,
    "model.cross_heads": 4, "model.cross_head_dim": 64, "model.qformer_mlp_ratio": 2,
    "model.decoder_dim": 64, "model.decoder_depth": 2, "model.decoder_heads": 4,
    "model.decoder_mlp_ratio": 3, "model.decoder_patch": 8, "model.decoder_registers": 2,
    "loss.patch_sizes": [14, 56], "loss.layers": [23, 7],  # -1: block 23 of the MAE's 24
    "train.seed": 7, "train.epochs": 5, "train.batch_size": 3, "train.lr": 0.001,
    "eval.patch_sizes": [8, 28], "eval.layers": [3, 5], "eval.pixel_reduction": "mean",
    "eval.layer_reduction": "max",
}


def variant(text, old, new):
    """SMALL_INI with `old` replaced (in both sections where it is in both)."""
    assert old in text, old
    return text.replace(old, new)


brain_keys = json.loads((repo / "tests/fixtures/reference_brain_keys.json").read_text())
check(reference_shapes(RELEASED_SHAPES) == brain_keys,
      "the released hyper-parameters give exactly the released brain checkpoint's names/shapes")

with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    # --- one checkpoint per released config ------------------------------------------------------
    for name, own in RELEASED.items():
        shapes = reference_shapes(RELEASED_SHAPES)
        state = make_state(shapes, random=(name == "brain"))
        ckpt = tmp / f"{name}_last_ckpt.pth"
        torch.save({"model": state, "epoch": 299, "optimizer": {}}, ckpt)
        out = tmp / name
        r = importer(ckpt, "--ini", INI_DIR / f"{name}.ini", "--out", out)
        check(r.returncode == 0, f"{name}: import with --ini exits 0")
        ckpt.unlink()
        if r.returncode != 0:
            continue
        got = flatten(read_yaml(out / "config.yaml"))
        expected = dict(COMMON, **own)
        for key in sorted(set(got) | set(expected)):
            check(got.get(key) == expected.get(key),
                  f"{name}: {key} is {expected.get(key)!r} (config.yaml: {got.get(key)!r})")
        state_json = json.loads((out / "state.json").read_text())
        check(state_json.get("ini") == str((INI_DIR / f"{name}.ini").resolve()),
              f"{name}: state.json names the ini")
        sources = state_json.get("sources", {})
        check(sources.get("model.decoder_heads", "").startswith("ini: ")
              and "DECODER_NUM_HEADS" in sources.get("model.decoder_heads", ""),
              f"{name}: state.json says the decoder heads came from the ini")
        check(sources.get("model.queries", "").startswith("checkpoint: junction.queries"),
              f"{name}: state.json says the queries came from the checkpoint")
        check(sources.get("eval.patch_sizes", "").startswith("ini: [TESTING]"),
              f"{name}: state.json says the test patch sizes came from [TESTING]")
        accepted, printed = qfae_config(out)
        if name == "brain":
            tensors, _ = safetensors_lite.load_file(str(out / "model.safetensors"))
            trained = {k for k in brain_keys if not k.startswith("encoders.0.model.")}
            check(set(tensors) == trained,
                  "brain: model.safetensors holds exactly the trained names")
            for key in trained & set(tensors):
                if list(tensors[key].shape) != brain_keys[key] or \
                        not torch.equal(tensors[key], state[key]):
                    check(False, f"brain: {key} is copied exactly")
                    break
            n = sum(t.numel() for k, t in tensors.items() if k != "decoder.decoder_pos_embed")
            print(f"trainable parameters: {n}")
            check(n == 52289024, "brain: the reference's 52,289,024 trainable parameters")
            if not HAS_TIMM:
                check("timm is not installed" in r.stderr and "--image-size 224" in r.stderr
                      and "--blocks 23" in r.stderr,
                      "brain: a missing timm is said clearly, with the export's size and blocks "
                      "(taps -2/-4 of 24 blocks: 23)")
            for expect in ("dim: 768", "queries: 784", "qformer_heads: 8", "cross_heads: 8",
                           "cross_head_dim: 64", "decoder_depth: 6", "decoder_heads: 12",
                           "decoder_patch: 8", "image_size: 224", "encoder_dim: 1024",
                           "decoder_registers: 4", "qformer_depth: 1"):
                check(not accepted or expect in printed, f"brain: qfae's config has '{expect}'")
        del state

    # --- a decoder 64 wide with 4 heads ----------------------------------------------------------
    small = tmp / "small_last_ckpt.pth"
    torch.save({"model": make_state(reference_shapes(SMALL_SHAPES), random=True, seed=1)}, small)
    ini = tmp / "small.ini"
    ini.write_text(SMALL_INI)
    r = importer(small, "--ini", ini, "--out", tmp / "small")
    check(r.returncode == 0, "small: import with --ini exits 0")
    if r.returncode == 0:
        got = flatten(read_yaml(tmp / "small/config.yaml"))
        for key in sorted(set(got) | set(SMALL_EXPECTED)):
            check(got.get(key) == SMALL_EXPECTED.get(key),
                  f"small: {key} is {SMALL_EXPECTED.get(key)!r} (config.yaml: {got.get(key)!r})")
        if not HAS_TIMM:  # taps [-1] of 6 blocks: all 6 blocks, at 56 px
            check("--image-size 56" in r.stderr and "--blocks 6" in r.stderr,
                  "small: the encoder export is asked for 56 px and 6 blocks")
        accepted, printed = qfae_config(tmp / "small")
        check(not accepted or "decoder_heads: 4" in printed, "small: qfae's config has 4 "
              "decoder heads")

    r = importer(small, "--out", tmp / "small_no_ini")
    check(refused(r, "decoder heads", "DECODER_NUM_HEADS", "(192, 64)"),
          "small without --ini: exit 2, one line naming the decoder heads and their tensor")
    check(refused(r, "taps", "USE_HIDDEN_STATE", "encoder model", "MODEL_NAME"),
          "small without --ini: the same line names the taps and the encoder model too")
    check(not (tmp / "small_no_ini/config.yaml").exists(), "a refused import writes no config")
    r = importer(small, "--out", tmp / "small_flags", "--decoder-heads", "4", "--taps", "-2",
                 "--encoder-model", "vit_small_test", "--model-only", "--skip-encoder")
    check(r.returncode == 0, "small without --ini but with the flags and --model-only exits 0")
    if r.returncode == 0:
        got = flatten(read_yaml(tmp / "small_flags/config.yaml"))
        check(got.get("model.decoder_heads") == 4 and got.get("backbone.taps") == [-2]
              and got.get("data.image_size") == 56 and got.get("model.decoder_mlp_ratio") == 3,
              "small with flags: decoder_heads 4, taps [-2], 56 px, decoder MLP ratio 3")
        check(not any(k.split(".")[0] in ("loss", "train", "eval") for k in got),
              "small with --model-only: no loss/train/eval settings")
        sources = json.loads((tmp / "small_flags/state.json").read_text())["sources"]
        check(sources.get("model.decoder_heads") == "flag: --decoder-heads 4",
              "small with flags: state.json says the decoder heads came from the flag")

    # --- refusals --------------------------------------------------------------------------------
    def refused_ini(what, text, *words):
        bad = tmp / "bad.ini"
        bad.write_text(text)
        r = importer(small, "--ini", bad, "--out", tmp / "refused")
        check(refused(r, *words), f"{what}: exit 2, one line naming {', '.join(words)}")

    refused_ini("queries disagree", variant(SMALL_INI, "JUNCTION_N_QUERIES = 49",
                                            "JUNCTION_N_QUERIES = 64"),
                "JUNCTION_N_QUERIES = 64", "junction.queries (1, 49, 64)", "49")
    refused_ini("decoder MLP ratio disagrees", variant(SMALL_INI, "DECODER_MLP_RATIO = 3",
                                                       "DECODER_MLP_RATIO = 4"),
                "DECODER_MLP_RATIO = 4", "decoder.decoder_blocks.0.mlp.fc1.weight (192, 64)")
    refused_ini("Q-Former heads disagree", variant(SMALL_INI, "JUNCTION_HEADS = 4",
                                                   "JUNCTION_HEADS = 8"),
                "JUNCTION_HEADS = 8", "junction.blocks.0.attn.Wqkv.weight (96, 64)")
    refused_ini("image size disagrees", variant(SMALL_INI, "RESIZE = 56", "RESIZE = 224"),
                "RESIZE = 224", "56")
    refused_ini("USE_HIDDEN_STATE missing", variant(SMALL_INI, "USE_HIDDEN_STATE = -1\n", ""),
                "taps", "USE_HIDDEN_STATE")
    refused_ini("DECODER_NUM_HEADS empty", variant(SMALL_INI, "DECODER_NUM_HEADS = 4",
                                                   "DECODER_NUM_HEADS ="),
                "decoder heads", "DECODER_NUM_HEADS")
    refused_ini("sections disagree", SMALL_INI.replace("DECODER_NUM_HEADS = 4",
                                                       "DECODER_NUM_HEADS = 8", 1),
                "[TRAINING] DECODER_NUM_HEADS = 8", "[TESTING] DECODER_NUM_HEADS = 4")
    refused_ini("heads not dividing the width", variant(SMALL_INI, "DECODER_NUM_HEADS = 4",
                                                        "DECODER_NUM_HEADS = 6"),
                "decoder heads", "6")
    refused_ini("test patch sizes missing", variant(SMALL_INI, "PERCEPTUAL_PATCH_SIZE_VAL = 8, 28",
                                                    ""),
                "eval.patch_sizes", "PERCEPTUAL_PATCH_SIZE_VAL")
    refused_ini("an image reduction qfae lacks", variant(SMALL_INI, "IMAGE_REDUCTION = mean",
                                                         "IMAGE_REDUCTION = pixelwise_mean_max"),
                "eval.pixel_reduction", "IMAGE_REDUCTION = pixelwise_mean_max")
    refused_ini("pixel maps reduced by max over layers",
                variant(SMALL_INI, "PIXEL_MULTI_HSTATE_REDUCTION = mean",
                        "PIXEL_MULTI_HSTATE_REDUCTION = max"),
                "PIXEL_MULTI_HSTATE_REDUCTION = max")
    refused_ini("an additional encoder block",
                variant(SMALL_INI, "ADDITIONAL_BLOCK_DIM =\nADDITIONAL_BLOCK_NUM_HEADS =\n"
                        "ADDITIONAL_BLOCK_MLP_RATIO =",
                        "ADDITIONAL_BLOCK_DIM = 32\nADDITIONAL_BLOCK_NUM_HEADS = 4\n"
                        "ADDITIONAL_BLOCK_MLP_RATIO = 4"),
                "ADDITIONAL_BLOCK")
    r = importer(small, "--ini", ini, "--decoder-heads", "2", "--out", tmp / "refused")
    check(refused(r, "--decoder-heads 2", "DECODER_NUM_HEADS = 4"),
          "a flag disagreeing with the ini: exit 2 naming both")

    # A file that is not a QFAE checkpoint is refused by name.
    bad = tmp / "bad.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    r = importer(bad, "--ini", INI_DIR / "brain.ini", "--out", tmp / "bad")
    check(r.returncode == 2 and "bad.pth" in r.stderr, "a foreign checkpoint is refused by name")

print(f"{0 if failures else 1} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
