// What an exported backbone says about itself: the qfae.json inside the TorchScript file of
// scripts/export_backbone.py, read and checked in one place for the loader and the FLOP count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qfae::backbone {

struct BackboneDescription {
  std::string model;                 // timm name, e.g. "vit_large_patch14_reg4_dinov2.lvd142m"
  int64_t image_size = 0;            // input side the position embeddings were built for
  std::vector<int64_t> patch_sizes;  // the first is the default (patch_size 0)
  std::vector<int64_t> grids;        // image_size / patch size, one per patch size
  int64_t num_prefix = 0;            // P
  int64_t width = 0;                 // D
  int64_t depth = 0;                 // blocks of the full model (negative taps count from here)
  int64_t blocks = 0;                // blocks held by the file (the first `blocks` of `depth`)
  std::vector<double> mean, std;     // normalisation the weights were trained with (recorded only)
};

// Reads the qfae.json record of the TorchScript file at `path` without loading its weights, and
// checks it: the format version, every field, grids = image_size / patch size, blocks <= depth.
// Throws UserError naming the file when it is missing, not TorchScript, or lacks a valid qfae.json.
BackboneDescription read_description(const std::string& path);

}  // namespace qfae::backbone
