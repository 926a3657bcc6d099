// Typed configuration: one struct per area with every default of the published model
// (docs/model.md). Precedence: defaults < --config files in order < --set flags.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qfae::config {

// Each struct lists its fields once, in visit(); loading, --set, printing and validation all walk
// that list, so a key is never spelled twice. `path` fields are resolved against the folder of the
// config file that set them.
struct DataConfig {
  std::string root;                      // dataset root folder
  std::string layout = "auto";           // auto|bmad|resc|isic|rsna|rsna-dicom|brats|folder
  int64_t image_size = 224;              // model input side in pixels
  // uint8: 8-bit pictures are resized as 8-bit values and rounded, as the published code does
  // (torchvision's Resize of a uint8 tensor): this reproduces its numbers. float: resized as
  // floats, no rounding. Images deeper than 8 bits are always resized as floats.
  std::string resize_on = "uint8";
  double mean = 0.449;                   // normalisation, every channel
  double std = 0.226;
  int64_t workers = 0;                   // loader threads, 0 = one per core the process has
  double val_ratio = 0.1;                // taken from training normals when the layout has no val
  std::string on_bad_image = "fail";     // fail|skip
  double mask_threshold = 0.01;          // mask pixel > threshold (after scaling to [0,1]) = anomaly
  bool augment = true;
  double crop_scale_min = 0.9, crop_scale_max = 1.0;
  double crop_ratio_min = 0.8, crop_ratio_max = 1.2;
  double rotation_deg = 10.0;
  double vflip_prob = 0.5;
  double brightness = 0.1, contrast = 0.1;
  // layout "folder": sub-folders of root (or absolute paths). Normal images train; when
  // normal_test_dir is empty, a seeded normal_test_ratio of them is held out for the test set.
  std::string normal_dir, abnormal_dir, normal_test_dir, mask_dir;
  double normal_test_ratio = 0.2;
  // DICOM files: how the modality's values become the [0, 1] image, the same in train, eval and
  // infer (kept in float, no 8-bit rounding). file: the file's first VOI window (WindowCenter /
  // WindowWidth), or `percentiles` when it has none; percentiles: the image's 0.5th to 99.5th
  // percentile; stored: the range the stored integers can take (0 to 255 for 8-bit files such
  // as RSNA's, read as a PNG export of them would be); fixed: data.dicom_range, e.g.
  // [-160, 240] Hounsfield units for liver CT.
  std::string dicom_window = "file";
  std::vector<double> dicom_range;
  // layout "rsna-dicom" (the RSNA Pneumonia Detection Challenge as distributed): which class is
  // anomalous besides "Lung Opacity". lung_opacity: "No Lung Opacity / Not Normal" is left out;
  // not_normal: it counts as anomalous too. The split is drawn by patient with the seed: test and
  // val take these many [normal, anomalous] patients, train every other normal one.
  std::string rsna_abnormal = "lung_opacity";
  std::vector<int64_t> val_size = {100, 100};
  std::vector<int64_t> test_size = {1000, 1000};

  template <class V>
  void visit(V& v) {
    v.path("root", root);
    v("layout", layout);
    v("image_size", image_size);
    v("resize_on", resize_on);
    v("mean", mean);
    v("std", std);
    v("workers", workers);
    v("val_ratio", val_ratio);
    v("on_bad_image", on_bad_image);
    v("mask_threshold", mask_threshold);
    v("augment", augment);
    v("crop_scale_min", crop_scale_min);
    v("crop_scale_max", crop_scale_max);
    v("crop_ratio_min", crop_ratio_min);
    v("crop_ratio_max", crop_ratio_max);
    v("rotation_deg", rotation_deg);
    v("vflip_prob", vflip_prob);
    v("brightness", brightness);
    v("contrast", contrast);
    v("normal_dir", normal_dir);
    v("abnormal_dir", abnormal_dir);
    v("normal_test_dir", normal_test_dir);
    v("mask_dir", mask_dir);
    v("normal_test_ratio", normal_test_ratio);
    v("dicom_window", dicom_window);
    v("dicom_range", dicom_range);
    v("rsna_abnormal", rsna_abnormal);
    v("val_size", val_size);
    v("test_size", test_size);
  }
};

struct BackboneConfig {
  std::vector<std::string> encoders;  // TorchScript files from scripts/export_backbone.py
  std::string encoder_model = "vit_large_patch14_reg4_dinov2.lvd142m";  // "" accepts any
  int64_t encoder_dim = 1024;
  std::vector<int64_t> taps = {-2, -4};  // block outputs, python-style negative indices
  std::string perceptual;                // the frozen MAE, exported once for all patch sizes
  std::string perceptual_model = "vit_large_patch16_224.mae";
  // Under bf16 precision (CUDA or CPU), hold the frozen networks' weights in bf16 (false: float32
  // weights, cast by autocast at every call).
  bool frozen_bf16 = true;

  template <class V>
  void visit(V& v) {
    v.path("encoders", encoders);
    v("encoder_model", encoder_model);
    v("encoder_dim", encoder_dim);
    v("taps", taps);
    v.path("perceptual", perceptual);
    v("perceptual_model", perceptual_model);
    v("frozen_bf16", frozen_bf16);
  }
};

struct ModelConfig {
  int64_t dim = 768;             // projection and Q-Former width
  int64_t queries = 784;         // must equal (image_size / decoder_patch)^2
  int64_t qformer_depth = 1;
  int64_t qformer_heads = 8;     // self-attention query heads (one shared K/V head)
  int64_t cross_heads = 8;
  int64_t cross_head_dim = 64;
  double qformer_mlp_ratio = 4.0;  // MLP hidden width / model.dim in the Q-Former
  double decoder_mlp_ratio = 4.0;  // and / model.decoder_dim in the decoder blocks
                                   // (`model.mlp_ratio` in a file or --set sets both)
  double dropout = 0.01;
  double query_init_std = 1e-3;
  bool causal = true;                   // reference default, kept for checkpoint compatibility
  bool residual = false;                // the reference's blocks have no residual connections
  bool cross_attn_every_block = false;  // reference: cross-attention in blocks 0, 2, 4, ...
  int64_t decoder_dim = 768;
  int64_t decoder_depth = 6;
  int64_t decoder_heads = 12;
  int64_t decoder_patch = 8;
  int64_t decoder_registers = 4;
  int64_t decoder_checkpoint = 0;  // decoder blocks recomputed in backward instead of stored

  template <class V>
  void visit(V& v) {
    v("dim", dim);
    v("queries", queries);
    v("qformer_depth", qformer_depth);
    v("qformer_heads", qformer_heads);
    v("cross_heads", cross_heads);
    v("cross_head_dim", cross_head_dim);
    v("qformer_mlp_ratio", qformer_mlp_ratio);
    v("decoder_mlp_ratio", decoder_mlp_ratio);
    v("dropout", dropout);
    v("query_init_std", query_init_std);
    v("causal", causal);
    v("residual", residual);
    v("cross_attn_every_block", cross_attn_every_block);
    v("decoder_dim", decoder_dim);
    v("decoder_depth", decoder_depth);
    v("decoder_heads", decoder_heads);
    v("decoder_checkpoint", decoder_checkpoint);
    v("decoder_patch", decoder_patch);
    v("decoder_registers", decoder_registers);
  }
};

struct LossConfig {
  std::vector<int64_t> patch_sizes = {32, 56};  // perceptual MAE patch sizes in training
  std::vector<int64_t> layers = {15, 19};       // 0-based MAE block indices
  double weight = 1.0;

  template <class V>
  void visit(V& v) {
    v("patch_sizes", patch_sizes);
    v("layers", layers);
    v("weight", weight);
  }
};

struct TrainConfig {
  int64_t seed = 42;
  int64_t epochs = 300;
  int64_t max_steps = 0;  // > 0 stops after this many steps (the schedule still spans epochs)
  int64_t batch_size = 64;
  double lr = 8e-5;       // OneCycle maximum
  double warmup = 0.15;   // fraction of steps rising to lr
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  double beta1_max = 0.95, beta1_min = 0.85;
  double beta2 = 0.999;
  double weight_decay = 0.0;
  std::string precision = "fp32";  // fp32|tf32|bf16 (tf32 on CUDA; bf16 on CUDA and bf16 CPUs)
  int64_t log_every = 10;          // steps
  int64_t eval_every = 10;         // epochs
  int64_t checkpoint_every = 1;    // epochs
  bool val_on_test = false;        // validate (and pick `best`) on the TEST split: only on request
  std::string init_from;  // start from these weights (a run, a checkpoint or imported model
                          // folder, a .safetensors file) with a fresh optimizer and schedule

  template <class V>
  void visit(V& v) {
    v("seed", seed);
    v("epochs", epochs);
    v("max_steps", max_steps);
    v("batch_size", batch_size);
    v("lr", lr);
    v("warmup", warmup);
    v("div_factor", div_factor);
    v("final_div_factor", final_div_factor);
    v("beta1_max", beta1_max);
    v("beta1_min", beta1_min);
    v("beta2", beta2);
    v("weight_decay", weight_decay);
    v("precision", precision);
    v("log_every", log_every);
    v("eval_every", eval_every);
    v("checkpoint_every", checkpoint_every);
    v("val_on_test", val_on_test);
    v.path("init_from", init_from);
  }
};

struct EvalConfig {
  std::vector<int64_t> patch_sizes = {16, 32, 56};
  std::vector<int64_t> layers = {11, 15, 19};
  std::string pixel_reduction = "max";  // image score: max|mean over pixels of each layer map
  std::string layer_reduction = "mean"; // then mean|max over layers
  double smoothing_sigma = 0.0;         // Gaussian sigma in pixels on the anomaly map, 0 = off
  int64_t batch_size = 32;
  std::string precision = "fp32";       // fp32|tf32|bf16 for maps and scores (as train.precision)
  bool save_maps = true;
  bool save_raw_maps = false;
  double overlay_percentile = 99.5;     // overlays' colour scale tops at this percentile of the
                                        // split's pooled map values (100: the largest)
  int64_t bootstrap = 1000;             // resamples for the image-AUROC interval, 0 = off
  double max_fpr = 0.3;                 // AUPRO integration limit
  double threshold_percentile = 99.0;   // calibrated threshold from validation normals

  template <class V>
  void visit(V& v) {
    v("patch_sizes", patch_sizes);
    v("layers", layers);
    v("pixel_reduction", pixel_reduction);
    v("layer_reduction", layer_reduction);
    v("smoothing_sigma", smoothing_sigma);
    v("batch_size", batch_size);
    v("precision", precision);
    v("save_maps", save_maps);
    v("save_raw_maps", save_raw_maps);
    v("overlay_percentile", overlay_percentile);
    v("bootstrap", bootstrap);
    v("max_fpr", max_fpr);
    v("threshold_percentile", threshold_percentile);
  }
};

struct Config {
  std::string name = "qfae";
  std::string device = "auto";  // auto|cpu|cuda|cuda:N
  std::string output_dir = "runs";
  int64_t threads = 0;          // CPU threads, 0 = one per core
  DataConfig data;
  BackboneConfig backbone;
  ModelConfig model;
  LossConfig loss;
  TrainConfig train;
  EvalConfig eval;

  template <class V>
  void visit(V& v) {
    v("name", name);
    v("device", device);
    v("output_dir", output_dir);  // relative to the working directory
    v("threads", threads);
    v.section("data", data);
    v.section("backbone", backbone);
    v.section("model", model);
    v.section("loss", loss);
    v.section("train", train);
    v.section("eval", eval);
  }

  // Side of the decoder's token grid: image_size / decoder_patch.
  int64_t decoder_grid() const { return data.image_size / model.decoder_patch; }
};

// Where each key's value came from ("configs/brats.yaml", "--set"); keys absent were defaults.
using Sources = std::map<std::string, std::string>;

// Checks every value before anything heavy loads; throws UserError naming the key path, the bad
// value, where it came from and what was expected. `check_files` also requires the data root and
// the backbone files to be set and to exist.
void validate(const Config& config, const Sources& sources = {}, bool check_files = false);

}  // namespace qfae::config
