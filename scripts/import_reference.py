#!/usr/bin/env python3
"""Turns a checkpoint of the reference QFAE code (last_ckpt.pth) into a qfae model folder:

  OUT/model.safetensors   the trained parts (projection, Q-Former, decoder) under the reference's
                          own names, float32; Python reads it with safetensors.torch.load_file
  OUT/encoder.pt          the DINOv2 encoder stored in the same checkpoint, exported as a qfae
                          TorchScript backbone (needs timm; skipped with a message without it)
  OUT/config.yaml         a qfae config of exactly the checkpoint's model and the ini's settings
  OUT/state.json          what was imported, from where: the source of every value written
  OUT/checksums.sha256    the SHA-256 of each file above, as sha256sum writes them; qfae checks
                          them when it loads the folder

Usage: python3 scripts/import_reference.py last_ckpt.pth --ini configs/brain.ini --out models/brain
         [--perceptual backbones/mae.pt]
Nothing is downloaded. Nothing is guessed: a value that neither the checkpoint nor the ini holds
is an error (exit 2) naming it and where it would come from.

--ini is the reference's config file of the run (configparser, [TRAINING] and [TESTING]).

From the checkpoint's tensor shapes, checked against the ini keys where it gives them (a
disagreement is an error):
  backbone.encoder_dim      encoders.0.final_projection.weight       FINAL_PROJ_IN_FEATURES
  model.dim                 junction.queries, final_projection       JUNCTION_DIM,
                                                                     FINAL_PROJ_OUT_FEATURES,
                                                                     JUNCTION_OUTPUT_DIM
  model.queries             junction.queries                         JUNCTION_N_QUERIES
  model.qformer_depth       junction.blocks.*                        JUNCTION_N_BLOCKS
  model.qformer_heads       attn.Wqkv rows = dim + 2 * dim / heads   JUNCTION_HEADS
  model.cross_heads         cross_attn.to_q rows / head width        JUNCTION_HEADS
  model.cross_head_dim      cross_attn.null_kv width                 -
  model.qformer_mlp_ratio   projection.1 rows / dim                  JUNCTION_MLP_RATIO
  model.decoder_dim         decoder.decoder_pos_embed                DECODER_DIM
  model.decoder_depth       decoder.decoder_blocks.*                 DECODER_DEPTH
  model.decoder_mlp_ratio   decoder_blocks.0.mlp.fc1 rows / width    DECODER_MLP_RATIO
  model.decoder_patch       decoder.decoder_prediction rows = 3 p^2  DECODER_PATCH_SIZE,
                                                                     DECODER_OUT_CHANNELS
  model.decoder_registers   decoder.reg_tokens                       DECODER_N_REG_TOKENS
  data.image_size           decoder grid x decoder patch             RESIZE, DECODER_N_PATCHES
  (encoder, when stored)    patch_embed, pos_embed, reg_token        PATCH_SIZE, N_PATCHES,
                                                                     N_REG_TOKENS
Only from the ini (the checkpoint cannot tell them), or from the flag named:
  model.decoder_heads       DECODER_NUM_HEADS                        --decoder-heads
  backbone.taps             USE_HIDDEN_STATE ("-1": the last block)  --taps
  backbone.encoder_model    MODEL_NAME                               --encoder-model
  loss.layers, patch_sizes  [TRAINING] PERCEPTUAL_HSTATE_TRAIN, PERCEPTUAL_PATCH_SIZE_TRAIN
  eval.layers, patch_sizes  [TESTING] PERCEPTUAL_HSTATE_VAL, PERCEPTUAL_PATCH_SIZE_VAL
  eval.pixel_reduction      [TESTING] IMAGE_REDUCTION (else REDUCTION, as run_test.py reads it)
  eval.layer_reduction      [TESTING] IMAGE_MULTI_HSTATE_REDUCTION (else MULTI_HSTATE_REDUCTION)
  train.batch_size, lr,     [TRAINING] BATCH_SIZE_TRAIN, LR, N_EPOCHS, SEED
    epochs, seed
The model keys are read from [TRAINING] and [TESTING]; where both give one, they must agree. An
empty value is unset. Settings qfae cannot reproduce are refused: another criterion or metric
than PERCEPTUAL_VIT_mae_multi / cosine, a pixel map not averaged over layers
(PIXEL_MULTI_HSTATE_REDUCTION), an additional encoder block, several encoders. Negative
perceptual layers count from the 24 blocks of the reference's MAE ViT-L/16.

Without --ini, the flags above give the model's unknowns and --model-only writes no loss, train
or eval settings (qfae's defaults then apply, and state.json says so).
"""
import argparse
import configparser
import hashlib
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
import safetensors_lite  # noqa: E402

TRAINED_PREFIXES = ("encoders.", "junction.", "decoder.")
ENCODER_PREFIX = "encoders.0.model."
MODEL_SECTIONS = ("TRAINING", "TESTING")
CRITERION = "PERCEPTUAL_VIT_mae_multi"  # the only criterion qfae computes
MAE_DEPTH = 24  # blocks of vit_large_patch16_224.mae, the reference's fixed perceptual network


class ImportFailure(Exception):
    """One or more problems that stop the import; main() prints them on one line, exits 2."""


def fail(message):
    raise ImportFailure(message)


def shape_of(t):
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


# --- the reference's config file ----------------------------------------------------------------

def as_int(text):
    return int(text)


def as_float(text):
    return float(text)


def as_ints(text):
    return [int(x.strip()) for x in text.split(",")]


def as_str(text):
    return text.strip()


KINDS = {as_int: "an integer", as_float: "a number", as_ints: "comma-separated integers",
         as_str: "a word"}


class Ini:
    """The reference's .ini, read as its run_training.py / run_test.py read it (configparser)."""

    def __init__(self, path):
        self.path = path
        self.parser = configparser.ConfigParser()
        if not os.path.isfile(path):
            fail(f"--ini '{path}' does not exist")
        try:
            self.parser.read(path)
        except configparser.Error as e:
            fail(f"--ini '{path}' is not a config file: {' '.join(str(e).split())}")
        if not any(self.parser.has_section(s) for s in MODEL_SECTIONS):
            fail(f"--ini '{path}' has neither a [TRAINING] nor a [TESTING] section")

    def raw(self, section, key):
        """The text of section/key, or None where the section or key is absent or empty."""
        if not self.parser.has_section(section):
            return None
        try:
            text = self.parser.get(section, key, fallback=None)
        except configparser.Error as e:
            fail(f"ini [{section}] {key}: {' '.join(str(e).split())}")
        return text.strip() if text is not None and text.strip() else None

    def value(self, section, key, parse):
        """(value, "[SECTION] KEY = text") or None when unset."""
        text = self.raw(section, key)
        if text is None:
            return None
        try:
            return parse(text), f"[{section}] {key} = {text}"
        except ValueError:
            fail(f"ini [{section}] {key} = {text}: expected {KINDS[parse]}")

    def model_value(self, key, parse):
        """A model key from [TRAINING] and/or [TESTING]; the two must agree where both give it."""
        found = [(s, v) for s in MODEL_SECTIONS if (v := self.value(s, key, parse))]
        if len(found) == 2 and found[0][1][0] != found[1][1][0]:
            fail(f"the ini's sections disagree: {found[0][1][1]} but {found[1][1][1]}; the "
                 "checkpoint was trained with one model")
        if not found:
            return None
        value, said = found[0][1]
        if len(found) == 2:
            said = said.replace("[TRAINING]", "[TRAINING]/[TESTING]", 1)
        return value, said


# --- the checkpoint -----------------------------------------------------------------------------

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
    encoder = {k: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    trained = {k: v for k, v in state.items()
               if k.startswith(TRAINED_PREFIXES) and not k.startswith(ENCODER_PREFIX)}
    unknown = sorted(k for k in state if k not in encoder and k not in trained)
    return encoder, trained, unknown


def count_blocks(state, prefix):
    idx = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(idx) + 1 if idx else 0


def square_side(n):
    side = math.isqrt(n)
    return side if side * side == n else None


def ratio_for(hidden, width):
    """An MLP ratio r with int(r * width) == hidden, as qfae computes the hidden width."""
    r = hidden / width
    while int(r * width) < hidden:
        r = math.nextafter(r, math.inf)
    return r


class Resolver:
    """Settles each config value from the checkpoint, the ini and the flags, recording its source
    and collecting every problem, so that one run names all of them."""

    def __init__(self, ini):
        self.ini = ini
        self.sources = {}
        self.problems = []

    def problem(self, message):
        self.problems.append(message)

    def ini_model(self, key, parse=as_int):
        return self.ini.model_value(key, parse) if self.ini else None

    def from_checkpoint(self, qkey, what, value, evidence, ini_key=None, parse=as_int):
        """A value the checkpoint's shapes give; the ini's key, when set, must agree."""
        got = self.ini_model(ini_key, parse) if ini_key else None
        if got and got[0] != value:
            self.problem(f"{what}: the ini's {got[1]} disagrees with the checkpoint, whose "
                         f"{evidence} gives {value}")
        self.sources[qkey] = f"checkpoint: {evidence}" + (f"; ini {got[1]} agrees" if got else "")
        return value

    def check_ini(self, what, ini_key, value, evidence, parse=as_int):
        """A shape value qfae does not store but the ini may state: it must match."""
        got = self.ini_model(ini_key, parse)
        if got and got[0] != value:
            self.problem(f"{what}: the ini's {got[1]} disagrees with the checkpoint, whose "
                         f"{evidence} gives {value}")
        return got[0] if got else None

    def unknowable(self, qkey, what, ini_key, flag, flag_value, why, parse=as_int, them="them"):
        """A value only the ini or a flag can give; both given must agree; neither is an error."""
        got = self.ini_model(ini_key, parse)
        given = " ".join(map(str, flag_value)) if isinstance(flag_value, list) else flag_value
        if got and flag_value is not None and got[0] != flag_value:
            self.problem(f"{what}: {flag} {given} disagrees with the ini's {got[1]}")
            return None
        if got:
            self.sources[qkey] = f"ini: {got[1]}"
            return got[0]
        if flag_value is not None:
            self.sources[qkey] = f"flag: {flag} {given}"
            return flag_value
        where = f"the ini {self.ini.path} has no {ini_key}" if self.ini else "no --ini"
        self.problem(f"{what}: the checkpoint cannot tell {them} ({why}) and {where}; give --ini "
                     f"with {ini_key}, or {flag}")
        return None

    def setting(self, qkey, section, keys, parse, allowed=None):
        """A training or test-time setting from the ini's `section`: the first of `keys` set (a
        later key is the reference's own fallback)."""
        for key in keys:
            got = self.ini.value(section, key, parse)
            if got:
                if allowed and got[0] not in allowed:
                    self.problem(f"{qkey}: the ini's {got[1]} is not one qfae computes "
                                 f"({' or '.join(allowed)})")
                    return None
                self.sources[qkey] = f"ini: {got[1]}"
                return got[0]
        names = " or ".join(keys)
        self.problem(f"{qkey}: the ini {self.ini.path} has no [{section}] {names}")
        return None


def need(trained, name, checkpoint):
    if name not in trained:
        fail(f"'{checkpoint}' has no '{name}': not a QFAE checkpoint of the reference")
    return trained[name]


def derive_model(r, trained, encoder, args):
    """The qfae data/backbone/model sections from the checkpoint, the ini and the flags."""
    ck = args.checkpoint
    queries = need(trained, "junction.queries", ck)
    proj = need(trained, "encoders.0.final_projection.weight", ck)
    wqkv = need(trained, "junction.blocks.0.attn.Wqkv.weight", ck)
    fc1 = need(trained, "junction.blocks.0.projection.1.weight", ck)
    pos = need(trained, "decoder.decoder_pos_embed", ck)
    embed = need(trained, "decoder.decoder_embed.weight", ck)
    pred = need(trained, "decoder.decoder_prediction.weight", ck)
    dec_qkv = need(trained, "decoder.decoder_blocks.0.attn.qkv.weight", ck)
    dec_fc1 = need(trained, "decoder.decoder_blocks.0.mlp.fc1.weight", ck)
    null_kv = need(trained, "junction.blocks.0.cross_attn.null_kv", ck)
    to_q = need(trained, "junction.blocks.0.cross_attn.to_q.weight", ck)

    # Setups qfae has no counterpart for.
    extra = sorted({k.split(".")[1] for k in trained if k.startswith("encoders.")} - {"0"})
    if extra:
        r.problem(f"the checkpoint has {len(extra) + 1} encoders (encoders.{extra[0]}.*): qfae "
                  "imports one")
    if any(k.startswith("encoders.0.additional_block.") for k in trained):
        r.problem("the checkpoint has an additional encoder block (encoders.0.additional_block.*)"
                  ": qfae has none")
    if r.ini:
        for section in MODEL_SECTIONS:
            block = [r.ini.raw(section, k) for k in ("ADDITIONAL_BLOCK_DIM",
                                                     "ADDITIONAL_BLOCK_NUM_HEADS",
                                                     "ADDITIONAL_BLOCK_MLP_RATIO")]
            if all(block):  # the reference builds the block only when all three are set
                r.problem(f"the ini's [{section}] ADDITIONAL_BLOCK_* set an additional encoder "
                          "block: qfae has none")
        got = r.ini_model("DECODER_OUT_CHANNELS")
        if got and got[0] != 3:
            r.problem(f"the ini's {got[1]}: qfae's decoder predicts 3 channels")

    model = {}
    dim = r.from_checkpoint("model.dim", "Q-Former width", queries.shape[2],
                            f"junction.queries {shape_of(queries)}", "JUNCTION_DIM")
    model["dim"] = dim
    if proj.shape[0] != dim:
        r.problem(f"the checkpoint's encoders.0.final_projection.weight {shape_of(proj)} writes "
                  f"{proj.shape[0]} features but junction.queries {shape_of(queries)} is {dim} "
                  "wide")
    r.check_ini("projection width", "FINAL_PROJ_OUT_FEATURES", proj.shape[0],
                f"encoders.0.final_projection.weight {shape_of(proj)}")
    out_dim = embed.shape[1]
    r.check_ini("Q-Former output width", "JUNCTION_OUTPUT_DIM", out_dim,
                f"decoder.decoder_embed.weight {shape_of(embed)}")
    if out_dim != dim:
        r.problem(f"the Q-Former writes {out_dim} features (decoder.decoder_embed.weight "
                  f"{shape_of(embed)}) from {dim}-wide queries: qfae's Q-Former keeps model.dim")
    model["queries"] = r.from_checkpoint("model.queries", "queries", queries.shape[1],
                                         f"junction.queries {shape_of(queries)}",
                                         "JUNCTION_N_QUERIES")
    model["qformer_depth"] = r.from_checkpoint(
        "model.qformer_depth", "Q-Former blocks", count_blocks(trained, "junction.blocks."),
        "the junction.blocks.* count", "JUNCTION_N_BLOCKS")

    # Multi-query self-attention: Wqkv holds dim query rows and one key and one value head.
    head_rows = wqkv.shape[0] - dim
    if head_rows <= 0 or head_rows % 2 or dim % (head_rows // 2):
        fail(f"junction.blocks.0.attn.Wqkv.weight {shape_of(wqkv)} is not dim + 2 x head width "
             f"for dim {dim}")
    model["qformer_heads"] = r.from_checkpoint(
        "model.qformer_heads", "Q-Former self-attention heads", dim // (head_rows // 2),
        f"junction.blocks.0.attn.Wqkv.weight {shape_of(wqkv)} (= {dim} + 2 x {head_rows // 2})",
        "JUNCTION_HEADS")
    head_dim = null_kv.shape[1]
    if to_q.shape[0] % head_dim:
        fail(f"junction.blocks.0.cross_attn.to_q.weight {shape_of(to_q)} is not a whole number "
             f"of {head_dim}-wide heads (cross_attn.null_kv {shape_of(null_kv)})")
    model["cross_heads"] = r.from_checkpoint(
        "model.cross_heads", "Q-Former cross-attention heads", to_q.shape[0] // head_dim,
        f"junction.blocks.0.cross_attn.to_q.weight {shape_of(to_q)} / null_kv width "
        f"{head_dim}", "JUNCTION_HEADS")
    model["cross_head_dim"] = head_dim
    r.sources["model.cross_head_dim"] = (f"checkpoint: junction.blocks.0.cross_attn.null_kv "
                                         f"{shape_of(null_kv)}")
    model["qformer_mlp_ratio"] = mlp_ratio(r, "model.qformer_mlp_ratio", "Q-Former MLP ratio",
                                           "JUNCTION_MLP_RATIO", fc1, dim,
                                           "junction.blocks.0.projection.1.weight")

    dec_dim = r.from_checkpoint("model.decoder_dim", "decoder width", pos.shape[2],
                                f"decoder.decoder_pos_embed {shape_of(pos)}", "DECODER_DIM")
    model["decoder_dim"] = dec_dim
    model["decoder_depth"] = r.from_checkpoint(
        "model.decoder_depth", "decoder blocks", count_blocks(trained, "decoder.decoder_blocks."),
        "the decoder.decoder_blocks.* count", "DECODER_DEPTH")
    heads = r.unknowable("model.decoder_heads", "decoder heads", "DECODER_NUM_HEADS",
                         "--decoder-heads", args.decoder_heads,
                         f"decoder.decoder_blocks.0.attn.qkv.weight is {shape_of(dec_qkv)} for any "
                         "head count")
    if heads is not None and (heads <= 0 or dec_dim % heads):
        r.problem(f"decoder heads: {heads} does not divide the decoder width {dec_dim}")
    model["decoder_heads"] = heads
    model["decoder_mlp_ratio"] = mlp_ratio(r, "model.decoder_mlp_ratio", "decoder MLP ratio",
                                           "DECODER_MLP_RATIO", dec_fc1, dec_dim,
                                           "decoder.decoder_blocks.0.mlp.fc1.weight")
    patch = square_side(pred.shape[0] // 3) if pred.shape[0] % 3 == 0 else None
    if patch is None:
        fail(f"decoder.decoder_prediction.weight {shape_of(pred)} is not 3 x patch^2 rows: qfae's "
             "decoder predicts 3 channels")
    model["decoder_patch"] = r.from_checkpoint(
        "model.decoder_patch", "decoder patch", patch,
        f"decoder.decoder_prediction.weight {shape_of(pred)} (= 3 x {patch}^2)",
        "DECODER_PATCH_SIZE")
    reg = trained.get("decoder.reg_tokens")
    model["decoder_registers"] = r.from_checkpoint(
        "model.decoder_registers", "decoder registers", reg.shape[1] if reg is not None else 0,
        f"decoder.reg_tokens {shape_of(reg)}" if reg is not None else "no decoder.reg_tokens",
        "DECODER_N_REG_TOKENS")

    grid = square_side(pos.shape[1])
    if grid is None:
        fail(f"decoder.decoder_pos_embed {shape_of(pos)} is not a square grid of tokens")
    r.check_ini("decoder grid", "DECODER_N_PATCHES", grid,
                f"decoder.decoder_pos_embed {shape_of(pos)} ({grid} x {grid})")
    if model["queries"] != grid * grid:
        r.problem(f"junction.queries {shape_of(queries)} holds {model['queries']} queries but "
                  f"the decoder's grid is {grid} x {grid} (decoder.decoder_pos_embed "
                  f"{shape_of(pos)})")
    image_size = r.from_checkpoint(
        "data.image_size", "image size", grid * patch,
        f"decoder grid {grid} x decoder patch {patch}", "RESIZE")

    # The encoder: its own shapes, where the checkpoint stores it.
    enc_dim = r.from_checkpoint("backbone.encoder_dim", "encoder width", proj.shape[1],
                                f"encoders.0.final_projection.weight {shape_of(proj)}",
                                "FINAL_PROJ_IN_FEATURES")
    depth = count_blocks(encoder, ENCODER_PREFIX + "blocks.")
    if encoder:
        enc_patch = encoder.get(ENCODER_PREFIX + "patch_embed.proj.weight")
        enc_pos = encoder.get(ENCODER_PREFIX + "pos_embed")
        if enc_patch is None or enc_pos is None or depth == 0:
            fail(f"'{ck}' stores an encoder without patch_embed, pos_embed or blocks")
        if enc_patch.shape[0] != enc_dim:
            r.problem(f"the encoder is {enc_patch.shape[0]} wide ({ENCODER_PREFIX}patch_embed."
                      f"proj.weight {shape_of(enc_patch)}) but the projection reads {enc_dim}")
        p = enc_patch.shape[-1]
        r.check_ini("encoder patch", "PATCH_SIZE", p,
                    f"{ENCODER_PREFIX}patch_embed.proj.weight {shape_of(enc_patch)}")
        tokens = enc_pos.shape[1]
        n = square_side(tokens) or square_side(tokens - 1)  # without or with a class position
        if n is None:
            fail(f"{ENCODER_PREFIX}pos_embed {shape_of(enc_pos)} is not a square grid")
        r.check_ini("encoder grid", "N_PATCHES", n,
                    f"{ENCODER_PREFIX}pos_embed {shape_of(enc_pos)} ({n} x {n})")
        enc_reg = encoder.get(ENCODER_PREFIX + "reg_token")
        r.check_ini("encoder registers", "N_REG_TOKENS",
                    enc_reg.shape[1] if enc_reg is not None else 0,
                    f"{ENCODER_PREFIX}reg_token {shape_of(enc_reg)}" if enc_reg is not None
                    else f"no {ENCODER_PREFIX}reg_token")
    else:
        got_p, got_n = r.ini_model("PATCH_SIZE"), r.ini_model("N_PATCHES")
        p, n = (got_p[0] if got_p else None), (got_n[0] if got_n else None)
    if p and n and p * n != image_size:
        r.problem(f"the encoder sees {n} x {p} = {n * p} px but the decoder writes {image_size} px")

    model_name = r.unknowable("backbone.encoder_model", "encoder model", "MODEL_NAME",
                              "--encoder-model", args.encoder_model,
                              "it holds the encoder's weights, not timm's name for them",
                              parse=as_str, them="it")
    if model_name and "," in model_name:
        r.problem(f"encoder model: the ini names several encoders ({model_name}): qfae imports "
                  "one")
    taps = r.unknowable("backbone.taps", "taps", "USE_HIDDEN_STATE", "--taps", args.taps,
                        f"the tapped blocks' tokens are concatenated before "
                        f"encoders.0.final_projection.weight {shape_of(proj)}, for any taps",
                        parse=as_ints)
    blocks = None
    if taps is not None and depth:
        bad = [t for t in taps if not -depth <= t < depth]
        if bad:
            r.problem(f"taps {taps}: the checkpoint's encoder has {depth} blocks")
        else:
            blocks = max(t % depth for t in taps) + 1  # negative taps count from the last block
    return {
        "data": {"image_size": image_size},
        "backbone": {"encoders": ["encoder.pt"], "encoder_model": model_name,
                     "encoder_dim": enc_dim, "taps": taps, "perceptual": args.perceptual},
        "model": model,
    }, depth, blocks


def mlp_ratio(r, qkey, what, ini_key, fc1, width, name):
    """The MLP ratio: the ini's (the reference builds int(width * ratio) hidden units), checked
    against the checkpoint's hidden width; without the ini, hidden / width."""
    hidden = fc1.shape[0]
    got = r.ini_model(ini_key, as_float)
    evidence = f"{name} {shape_of(fc1)} ({hidden} hidden units for width {width})"
    if got and int(got[0] * width) != hidden:
        r.problem(f"{what}: the ini's {got[1]} gives {int(got[0] * width)} hidden units but the "
                  f"checkpoint's {evidence}")
        return None
    if got:
        r.sources[qkey] = f"ini: {got[1]}; agrees with checkpoint: {evidence}"
        return got[0]
    r.sources[qkey] = f"checkpoint: {evidence}"
    return ratio_for(hidden, width)


def perceptual_layers(r, qkey, layers):
    """Negative layers count from the MAE's last block, as Python indexing did in the reference."""
    if layers is None:
        return None
    out = [layer + MAE_DEPTH if layer < 0 else layer for layer in layers]
    if any(not 0 <= layer < MAE_DEPTH for layer in out):
        r.problem(f"{qkey}: {layers} are not blocks of the reference's {MAE_DEPTH}-block MAE")
    return out


def derive_settings(r, image_size):
    """The qfae loss/train/eval sections from the ini's [TRAINING] and [TESTING]."""
    ini = r.ini
    for section, crit, metric in (("TRAINING", "CRITERION_TRAIN", "PERCEPTUAL_METRIC_TRAIN"),
                                  ("TESTING", "CRITERION_VAL", "PERCEPTUAL_METRIC_VAL")):
        got = ini.value(section, crit, as_str)
        if got and got[0] != CRITERION:
            r.problem(f"the ini's {got[1]}: qfae computes only {CRITERION}")
        got = ini.value(section, metric, as_str)
        if got and got[0] != "cosine":
            r.problem(f"the ini's {got[1]}: qfae's perceptual distance is cosine")
    # qfae's pixel anomaly map is the mean over layers of the layer maps (the channel reduction
    # of run_test.py's pixel maps is moot with one channel, except downsample_8x8).
    got = ini.value("TESTING", "PIXEL_MULTI_HSTATE_REDUCTION", as_str) or \
        ini.value("TESTING", "MULTI_HSTATE_REDUCTION", as_str)
    if got and got[0] != "mean":
        r.problem(f"the ini's {got[1]} reduces the pixel maps over layers by {got[0]}: qfae's "
                  "pixel map is their mean")
    got = ini.value("TESTING", "PIXEL_REDUCTION", as_str) or \
        ini.value("TESTING", "REDUCTION", as_str)
    if got and got[0] not in ("mean", "max"):
        r.problem(f"the ini's {got[1]}: qfae's pixel maps are not pooled")

    loss = {"patch_sizes": r.setting("loss.patch_sizes", "TRAINING",
                                     ["PERCEPTUAL_PATCH_SIZE_TRAIN"], as_ints),
            "layers": perceptual_layers(r, "loss.layers", r.setting(
                "loss.layers", "TRAINING", ["PERCEPTUAL_HSTATE_TRAIN"], as_ints))}
    train = {"seed": r.setting("train.seed", "TRAINING", ["SEED"], as_int),
             "epochs": r.setting("train.epochs", "TRAINING", ["N_EPOCHS"], as_int),
             "batch_size": r.setting("train.batch_size", "TRAINING", ["BATCH_SIZE_TRAIN"], as_int),
             "lr": r.setting("train.lr", "TRAINING", ["LR"], as_float)}
    evaluation = {
        "patch_sizes": r.setting("eval.patch_sizes", "TESTING", ["PERCEPTUAL_PATCH_SIZE_VAL"],
                                 as_ints),
        "layers": perceptual_layers(r, "eval.layers", r.setting(
            "eval.layers", "TESTING", ["PERCEPTUAL_HSTATE_VAL"], as_ints)),
        "pixel_reduction": r.setting("eval.pixel_reduction", "TESTING",
                                     ["IMAGE_REDUCTION", "REDUCTION"], as_str, ("max", "mean")),
        "layer_reduction": r.setting("eval.layer_reduction", "TESTING",
                                     ["IMAGE_MULTI_HSTATE_REDUCTION", "MULTI_HSTATE_REDUCTION"],
                                     as_str, ("mean", "max"))}
    for qkey, sizes in (("loss.patch_sizes", loss["patch_sizes"]),
                        ("eval.patch_sizes", evaluation["patch_sizes"])):
        if sizes and any(p <= 0 or image_size % p for p in sizes):
            r.problem(f"{qkey}: {sizes} do not all divide the image size {image_size}")
    return {"loss": loss, "train": train, "eval": evaluation}


# --- writing ------------------------------------------------------------------------------------

def yaml_scalar(value):
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # 8e-05 -> 8.0e-05: a float in YAML 1.1 readers too
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    return json.dumps(value)


def to_yaml(cfg, indent=0):
    lines = []
    for key, value in cfg.items():
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(value, indent + 1))
        else:
            lines.append(f"{pad}{key}: {yaml_scalar(value)}")
    return "\n".join(lines)


def export_encoder(encoder_state, out_path, model_name, image_size, blocks):
    weights = {k[len(ENCODER_PREFIX):]: v for k, v in encoder_state.items()}
    args = ["--model", model_name, "--image-size", str(image_size), "--blocks", str(blocks)]
    try:
        import timm  # noqa: F401
    except ImportError:
        kept = os.path.splitext(out_path)[0] + "_weights.pth"
        torch.save(weights, kept)
        print("[import] timm is not installed: the encoder was NOT exported. Its weights are in "
              f"{kept}; on a machine with timm run scripts/export_backbone.py {' '.join(args)} "
              f"--weights {kept} --out {out_path}", file=sys.stderr)
        return False
    with tempfile.TemporaryDirectory() as tmp:
        w = os.path.join(tmp, "encoder.pth")
        torch.save(weights, w)
        script = pathlib.Path(__file__).resolve().parent / "export_backbone.py"
        # Blocks after the deepest tap are never used: the export keeps `blocks` of them.
        subprocess.run([sys.executable, str(script), *args, "--weights", w, "--out", out_path],
                       check=True)
    return True


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="reference checkpoint (last_ckpt.pth)")
    p.add_argument("--out", required=True, help="qfae model folder to write")
    p.add_argument("--ini", help="the reference's config file of the run (configs/brain.ini, ...)")
    p.add_argument("--perceptual", default="",
                   help="TorchScript MAE from scripts/export_backbone.py (written into the config)")
    p.add_argument("--encoder-model", help="timm name of the encoder, without --ini (MODEL_NAME)")
    p.add_argument("--decoder-heads", type=int,
                   help="decoder attention heads, without --ini (DECODER_NUM_HEADS)")
    p.add_argument("--taps", type=int, nargs="+",
                   help="encoder blocks fed to the Q-Former, without --ini (USE_HIDDEN_STATE), "
                        "e.g. --taps -2 -4")
    p.add_argument("--model-only", action="store_true",
                   help="write no loss/train/eval settings (qfae's defaults apply); needed "
                        "without --ini")
    p.add_argument("--skip-encoder", action="store_true", help="only convert the trained parts")
    return p.parse_args(argv)


def run(args):
    ini = Ini(args.ini) if args.ini else None
    if not os.path.isfile(args.checkpoint):
        fail(f"'{args.checkpoint}' does not exist")
    obj = torch.load(args.checkpoint, map_location="cpu")
    state = find_state_dict(obj)
    if state is None:
        fail(f"'{args.checkpoint}' holds no model state dict")
    encoder, trained, unknown = split_state(state)
    need(trained, "junction.queries", args.checkpoint)
    if unknown:
        print(f"[import] ignoring {len(unknown)} keys outside the model: {unknown[:5]}",
              file=sys.stderr)

    r = Resolver(ini)
    sections, depth, blocks = derive_model(r, trained, encoder, args)
    if ini and not args.model_only:
        sections.update(derive_settings(r, sections["data"]["image_size"]))
    elif not args.model_only:
        r.problem("loss, train and eval settings: the checkpoint does not hold them; give --ini "
                  "(its [TRAINING] and [TESTING]), or --model-only to keep qfae's defaults")
    if r.problems:
        fail("; ".join(r.problems))
    name = (ini and (ini.raw("TESTING", "EXPERIMENT_NAME") or ini.raw("TRAINING",
                                                                     "EXPERIMENT_NAME")))
    cfg = {"name": re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "imported"), **sections}

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trained = {k: v.float() for k, v in trained.items()}
    safetensors_lite.save_file(trained, str(out / "model.safetensors"),
                               {"source": os.path.abspath(args.checkpoint), "format": "qfae-1"})
    exported = False
    if encoder and not args.skip_encoder:
        exported = export_encoder(encoder, str(out / "encoder.pt"),
                                  cfg["backbone"]["encoder_model"], cfg["data"]["image_size"],
                                  blocks)
    header = "# imported from the reference checkpoint " + os.path.basename(args.checkpoint)
    if ini:
        header += " and " + os.path.basename(args.ini)
    (out / "config.yaml").write_text(header + "\n" + to_yaml(cfg) + "\n")
    # qfae eval / infer --checkpoint OUT read the progress fields (an import has taken no qfae step
    # and has no calibrated threshold); the rest records the import.
    (out / "state.json").write_text(json.dumps({
        "format": 1, "step": 0, "epoch": 0, "batch": 0,
        "imported_from": os.path.abspath(args.checkpoint),
        "ini": os.path.abspath(args.ini) if ini else None,
        "sources": r.sources,
        "defaults": [] if ini and not args.model_only else ["loss", "train", "eval"],
        "trained_tensors": len(trained), "encoder_tensors": len(encoder),
        "encoder_blocks": depth, "encoder_blocks_exported": blocks if exported else 0,
        "encoder_exported": exported}, indent=1))
    # Last, as qfae writes its checkpoints: the folder's files as written, checked on every load.
    lines = []
    for name in ("model.safetensors", "state.json", "config.yaml"):
        digest = hashlib.sha256()
        with open(out / name, "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                digest.update(piece)
        lines.append(f"{digest.hexdigest()}  {name}\n")
    (out / "checksums.sha256").write_text("".join(lines))
    print(f"[import] wrote {out} ({len(trained)} trained tensors"
          f"{', encoder exported' if exported else ''})")


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except ImportFailure as e:
        print(f"[import] error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
