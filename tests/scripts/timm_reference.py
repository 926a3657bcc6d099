"""Shared by the script tests that need PyPI's torch with timm (test_export_roundtrip.py,
test_brain_config_run.py, test_import_reference_timm.py): the cache of full-size exports, timm's
own forward as the reference, and running the ExportRoundTrip GoogleTests on timm's outputs."""
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile

SKIP = 77  # CTest's SKIP_RETURN_CODE for these tests
REPO = pathlib.Path(__file__).resolve().parents[2]
ENCODER_MODEL = "vit_large_patch14_reg4_dinov2.lvd142m"
PERCEPTUAL_MODEL = "vit_large_patch16_224.mae"
IMAGE_SIZE = 224
# The cached exports (the names are shared with the FLOP test): the brain config's encoder taps
# -2/-4 of 24 blocks need 23 blocks, its deepest perceptual layer (19, train or eval) needs 20.
EXPORTS = {
    "dinov2_vitl14_reg4_224_b23.pt": {"model": ENCODER_MODEL, "patch_sizes": [14], "blocks": 23},
    "mae_vitl16_224_p16-32-56_b20.pt": {"model": PERCEPTUAL_MODEL, "patch_sizes": [16, 32, 56],
                                        "blocks": 20},
}
ENCODER_FILE, PERCEPTUAL_FILE = EXPORTS
EXPORT_SEED = 0  # export_backbone.py's default --seed
FAILURES = []  # what check() found wrong; the test exits non-zero when it is not empty


def check(cond, what):
    """One assertion of a script test: prints ok/FAIL and remembers the failures."""
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def require_timm():
    """Exits with SKIP and one line saying why when this python lacks torch, timm or safetensors."""
    for module in ("torch", "timm", "safetensors", "yaml"):
        try:
            __import__(module)
        except Exception as e:  # ImportError, or a library that fails to load
            print(f"SKIP: {sys.executable} cannot import {module} ({type(e).__name__}); these "
                  "tests need the environment of scripts/install-torch.sh (torch, timm)")
            sys.exit(SKIP)


def brain_config():
    """configs/brats.yaml's encoder taps and the union of its train/eval perceptual settings."""
    import yaml

    cfg = yaml.safe_load((REPO / "configs/brats.yaml").read_text())
    return {"taps": [int(t) for t in cfg["backbone"]["taps"]],
            "patch_sizes": sorted({int(p) for p in cfg["loss"]["patch_sizes"]
                                   + cfg["eval"]["patch_sizes"]}),
            "layers": sorted({int(layer) for layer in cfg["loss"]["layers"]
                              + cfg["eval"]["layers"]})}


def cache_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("QFAE_EXPORT_CACHE")
                        or pathlib.Path.home() / ".cache/qfae/exports").resolve()
    if path == REPO or REPO in path.parents:
        sys.exit(f"QFAE_EXPORT_CACHE={path} is inside the repository; give a folder outside it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def stale_reason(path: pathlib.Path, name: str) -> str:
    """Why a cached export cannot be reused ("" when it can), from its qfae.json and code only."""
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            meta_name = next(n for n in names if n.endswith("/extra/qfae.json"))
            meta = json.loads(archive.read(meta_name))
            code = b"".join(archive.read(n) for n in names if "/code/" in n and n.endswith(".py"))
    except (zipfile.BadZipFile, StopIteration, OSError, ValueError) as e:
        return f"unreadable ({e})"
    for key, value in dict(EXPORTS[name], image_size=IMAGE_SIZE).items():
        if meta.get(key) != value:
            return f"qfae.json has {key} {meta.get(key)}, expected {value}"
    if b"scaled_dot_product_attention" in code:
        return "exported with fused attention (LibTorch 1.13 cannot load it)"
    return ""


def cached_export(name: str) -> pathlib.Path:
    """The cached full-size --random-init export `name`, made now when absent or stale. Written to
    a temporary name in the cache folder and renamed, so concurrent users never see half a file."""
    path = cache_dir() / name
    why = stale_reason(path, name) if path.is_file() else "not cached yet"
    if not why:
        print(f"[export] reusing {path}")
        return path
    print(f"[export] exporting {path}: {why}", flush=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    spec = EXPORTS[name]
    try:
        subprocess.run([sys.executable, str(REPO / "scripts/export_backbone.py"),
                        "--model", spec["model"], "--image-size", str(IMAGE_SIZE),
                        "--patch-size", *[str(p) for p in spec["patch_sizes"]],
                        "--blocks", str(spec["blocks"]), "--random-init",
                        "--seed", str(EXPORT_SEED), "--out", str(tmp)], check=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def pin(path: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """A hard link to `path` inside `folder` (a temporary folder in the cache): a concurrent
    re-export that renames over the cached name cannot change the file under a running test."""
    linked = folder / path.name
    try:
        os.link(path, linked)
        return linked
    except OSError:
        return path


def seeded_timm_model(name: str):
    """timm's model with exactly the weights export_backbone.py --random-init gave the export
    `name` (same seed, same creation call, same visible LayerScale and prefix tokens)."""
    import timm
    import torch

    sys.path.insert(0, str(REPO / "scripts"))
    import export_backbone

    torch.manual_seed(EXPORT_SEED)
    model = timm.create_model(EXPORTS[name]["model"], pretrained=False, img_size=IMAGE_SIZE,
                              num_classes=0)
    export_backbone.make_random_init_visible(model)
    return model.eval()


def check_weights_match(model, exported: pathlib.Path):
    """The export holds the seeded model's blocks (the cache was made by this recipe); exits with
    a message naming the file when not."""
    import torch

    scripted = torch.jit.load(str(exported), map_location="cpu")
    params = dict(scripted.named_parameters())
    timm_params = dict(model.named_parameters())
    blocks = EXPORTS[exported.name]["blocks"]
    for key in ("blocks.0.attn.qkv.weight", f"blocks.{blocks - 1}.mlp.fc2.weight"):
        if not torch.equal(params[key], timm_params[key]):
            sys.exit(f"{exported.name}: {key} differs from timm's seeded model (made with another "
                     f"--seed or timm?): delete {cache_dir() / exported.name} to export it again")


def timm_outputs(model, x, indices):
    """Raw block outputs (B, P + g*g, D) at python-style `indices`, with timm's own
    forward_intermediates (no final norm), in the order given."""
    import torch

    depth = len(model.blocks)
    resolved = [i if i >= 0 else depth + i for i in indices]
    with torch.no_grad():
        found = model.forward_intermediates(x, indices=sorted(set(resolved)), stop_early=True,
                                            output_fmt="NLC", intermediates_only=True,
                                            return_prefix_tokens=True)
    by_block = {b: torch.cat([prefix, spatial], dim=1)
                for b, (spatial, prefix) in zip(sorted(set(resolved)), found)}
    return [by_block[b] for b in resolved]


def timm_at_patch_size(name: str, model, patch_size: int):
    """timm's model re-created at another patch size with the weights of `model`, resampled by
    timm's own checkpoint_filter_fn (FlexiViT patch embedding, bicubic position embedding), as
    timm.create_model(..., pretrained=True, patch_size=p) does with released weights."""
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    if model.patch_embed.proj.kernel_size[0] == patch_size:
        return model
    other = timm.create_model(name, pretrained=False, img_size=IMAGE_SIZE, patch_size=patch_size,
                              num_classes=0)
    other.load_state_dict(checkpoint_filter_fn(model.state_dict(), other), strict=True)
    return other.eval()


def fixed_input(batch: int = 2):
    import torch

    return torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))


def encoder_expected(model, x, taps):
    return {f"encoder/tap={t}": y.contiguous() for t, y in zip(taps, timm_outputs(model, x, taps))}


def perceptual_expected(name, model, x, patch_sizes, layers):
    out = {}
    for p in patch_sizes:
        at_p = timm_at_patch_size(name, model, p)
        for layer, y in zip(layers, timm_outputs(at_p, x, layers)):
            out[f"perceptual/patch={p}/layer={layer}"] = y.contiguous()
        del at_p
    return out


def write_expected(path: pathlib.Path, x, tensors: dict, metadata: dict):
    import timm
    import torch
    from safetensors.torch import save_file

    meta = {k: ",".join(str(v) for v in vals) if isinstance(vals, (list, tuple)) else str(vals)
            for k, vals in metadata.items()}
    meta["source"] = f"timm {timm.__version__}, torch {torch.__version__}"
    save_file({"input": x.contiguous(), **tensors}, str(path), metadata=meta)


def run_roundtrip_gtest(qfae_tests: str, expected: pathlib.Path, tests, encoder=None,
                        perceptual=None) -> str:
    """Runs the ExportRoundTrip `tests` (names) on the files; returns their output. Exits non-zero
    unless every one of them ran and passed (one skipped for a misspelt variable fails here)."""
    env = dict(os.environ, QFAE_ROUNDTRIP_EXPECTED=str(expected))
    for key, value in (("QFAE_ROUNDTRIP_ENCODER", encoder),
                       ("QFAE_ROUNDTRIP_PERCEPTUAL", perceptual)):
        env.pop(key, None)
        if value is not None:
            env[key] = str(value)
    names = ":".join(f"ExportRoundTrip.{t}" for t in tests)
    r = subprocess.run([qfae_tests, f"--gtest_filter={names}"], env=env, capture_output=True,
                       text=True)
    print(r.stdout[-20000:], r.stderr[-5000:])
    passed = re.search(r"\[  PASSED  \] (\d+) test", r.stdout)
    ran = int(passed[1]) if passed else 0
    if r.returncode != 0 or "[  SKIPPED ]" in r.stdout or ran != len(tests):
        sys.exit(f"{names} failed (exit {r.returncode}; expected {len(tests)} passing tests)")
    return r.stdout


def temp_folder(prefix: str):
    """A temporary folder in the export cache (same file system: hard links, big files)."""
    return tempfile.TemporaryDirectory(dir=cache_dir(), prefix=f".{prefix}-")
