"""The config of a tiny 32 px model on the committed tiny backbones, for the Python end-to-end
tests (the same model as tests/support/tiny_run.h's)."""
import pathlib


def tiny_config(name, data, train, repo_root):
    """YAML text for `name`; `data` and `train` are those sections' bodies in flow style,
    e.g. "root: /x, layout: bmad, image_size: 32"."""
    fx = pathlib.Path(repo_root) / "tests" / "fixtures" / "backbones"
    return f"""name: {name}
data: {{{data}}}
backbone: {{encoders: [{fx / 'tiny_dino.pt'}], encoder_model: test_tiny_dinov2_reg,
           encoder_dim: 32, taps: [-1, -3], perceptual: {fx / 'tiny_mae.pt'},
           perceptual_model: test_tiny_mae}}
model: {{dim: 32, queries: 16, qformer_heads: 4, cross_heads: 2, cross_head_dim: 16,
        decoder_dim: 32, decoder_depth: 1, decoder_heads: 4}}
loss: {{patch_sizes: [8, 16], layers: [1, 3]}}
eval: {{patch_sizes: [8, 16], layers: [1, 2, 3], batch_size: 4}}
train: {{{train}}}
"""
