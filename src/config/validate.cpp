// Config validation: every key checked before anything heavy loads, one clear message per problem.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include "fields.h"
#include "qfae/config/config.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::config {
namespace {

template <class T>
std::string show(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}
template <class T>
std::string show(const std::vector<T>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}
std::string show(const std::string& value) { return "'" + value + "'"; }

// Upper bounds on sizes: far above any real model, low enough that nothing overflows.
constexpr int64_t kMaxWidth = 65536, kMaxDepth = 1024, kMaxHeads = 1024, kMaxImageSize = 8192;
constexpr double kMaxMlpRatio = 64;

class Checker {
 public:
  explicit Checker(const Sources& sources) : sources_(sources) {}

  template <class T>
  void require(bool ok, const std::string& key, const T& value, const std::string& expected) const {
    if (ok) return;
    auto it = sources_.find(key.substr(0, key.find('[')));  // "backbone.encoders[1]": the list's
    const std::string from = it == sources_.end() ? "default" : it->second;
    throw UserError(key + ": " + show(value) + " (from " + from + ") is not valid; expected " +
                    expected);
  }

  template <class T>
  void positive(const std::string& key, const T& value) const {
    require(value > 0, key, value, "a value > 0");
  }
  // Sizes that allocate: bounded, so that a typo fails here instead of in the allocator.
  void size(const std::string& key, int64_t value, int64_t max) const {
    require(value > 0 && value <= max, key, value, "a size in [1, " + std::to_string(max) + "]");
  }
  template <class T>
  void non_negative(const std::string& key, const T& value) const {
    require(value >= 0, key, value, "a value >= 0");
  }
  void unit(const std::string& key, double value, bool include_one) const {
    require(value >= 0 && (include_one ? value <= 1 : value < 1), key, value,
            include_one ? "a value in [0, 1]" : "a value in [0, 1)");
  }
  void one_of(const std::string& key, const std::string& value,
              const std::vector<std::string>& choices) const {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    require(std::find(choices.begin(), choices.end(), value) != choices.end(), key, value,
            "one of " + list);
  }
  void patch_sizes(const std::string& key, const std::vector<int64_t>& sizes,
                   int64_t image_size) const {
    require(!sizes.empty(), key, sizes, "at least one patch size");
    distinct(key, sizes);
    for (auto p : sizes) {
      require(p > 0 && image_size % p == 0, key, sizes,
              "patch sizes that divide data.image_size (" + std::to_string(image_size) + ")");
    }
  }
  // A value listed twice is a mistake (a tap or a layer counted twice weighs double).
  void distinct(const std::string& key, const std::vector<int64_t>& values) const {
    for (size_t i = 0; i < values.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        require(values[i] != values[j], key, values,
                "each value once (" + std::to_string(values[i]) + " is listed twice)");
      }
    }
  }
  void layers(const std::string& key, const std::vector<int64_t>& layers) const {
    require(!layers.empty(), key, layers, "at least one layer");
    distinct(key, layers);
    for (auto l : layers) {
      require(l >= 0 && l < kMaxDepth, key, layers,
              "0-based block indices in [0, " + std::to_string(kMaxDepth - 1) + "]");
    }
  }
  void file(const std::string& key, const std::string& path) const {
    require(!path.empty(), key, path, "a path to an existing file");
    std::error_code ec;  // a name too long for the system is an answer too, not an exception
    const auto status = fs::status(path, ec);
    require(!fs::is_directory(status), key, path, "a file (this is a folder)");
    require(fs::is_regular_file(status), key, path,
            ec && ec != std::errc::no_such_file_or_directory
                ? "an existing file (" + ec.message() + ")"
                : "an existing file (it does not exist)");
  }

 private:
  const Sources& sources_;
};

// Every float key, lists included: NaN and infinity are never a setting (and YAML has no way to
// write them back into a run's config.yaml that every reader accepts).
void require_finite(const Config& config, const Checker& c) {
  Config copy = config;  // fields_of wants mutable pointers; only read through them
  for (const auto& f : detail::fields_of(copy)) {
    if (const auto* p = std::get_if<double*>(&f.ptr)) {
      c.require(std::isfinite(**p), f.key, **p, "a finite number");
    } else if (const auto* v = std::get_if<std::vector<double>*>(&f.ptr)) {
      for (double x : **v) c.require(std::isfinite(x), f.key, **v, "finite numbers");
    }
  }
}

// About how many parameters the trainable model has (the big matrices; the exact count is
// `qfae config --summary`), so that a model that cannot fit in memory fails before it allocates.
long double approx_trainable_parameters(const Config& cfg) {
  const auto& m = cfg.model;
  const long double d = m.dim, dd = m.decoder_dim;
  const long double r = m.qformer_mlp_ratio, rd = m.decoder_mlp_ratio;
  const long double cross = static_cast<long double>(m.cross_heads) * m.cross_head_dim;
  const long double encoders = std::max<size_t>(cfg.backbone.encoders.size(), 1);
  const long double projection = encoders * cfg.backbone.encoder_dim * d;
  const long double qformer = m.qformer_depth * (4 * d * d + 2 * r * d * d + 4 * d * cross) +
                              static_cast<long double>(m.queries) * d;
  const long double patch = static_cast<long double>(m.decoder_patch) * m.decoder_patch * 3;
  const long double decoder = m.decoder_depth * (4 * dd * dd + 2 * rd * dd * dd) +
                              (static_cast<long double>(m.queries) + m.decoder_registers) * dd +
                              dd * patch + d * dd;
  return projection + qformer + decoder;
}

void require_fits_in_memory(const Config& cfg, const Checker& c) {
  const long double pages = static_cast<long double>(::sysconf(_SC_PHYS_PAGES));
  const long double memory = pages * static_cast<long double>(::sysconf(_SC_PAGESIZE));
  const long double weight_bytes = approx_trainable_parameters(cfg) * 4;  // float32
  if (memory <= 0 || weight_bytes <= memory) return;
  std::ostringstream expected;
  expected.precision(3);
  expected << "a model that fits in memory: these sizes give about "
           << static_cast<double>(weight_bytes / 4) << " parameters, "
           << static_cast<double>(weight_bytes / (1ull << 30)) << " GiB of float32 weights "
           << "alone, and this machine has " << static_cast<double>(memory / (1ull << 30))
           << " GiB";
  c.require(false, "model.decoder_dim", cfg.model.decoder_dim, expected.str() +
            " (see also model.dim, model.decoder_depth, model.qformer_depth, "
            "model.qformer_mlp_ratio, model.decoder_mlp_ratio)");
}

void validate_data(const DataConfig& d, const Checker& c) {
  c.one_of("data.layout", d.layout, {"auto", "bmad", "resc", "isic", "rsna", "rsna-dicom", "brats", "folder"});
  c.size("data.image_size", d.image_size, kMaxImageSize);
  c.one_of("data.resize_on", d.resize_on, {"uint8", "float"});
  c.one_of("data.dicom_window", d.dicom_window, {"file", "percentiles", "stored", "fixed"});
  if (d.dicom_window == "fixed") {
    c.require(d.dicom_range.size() == 2 && d.dicom_range[0] < d.dicom_range[1], "data.dicom_range",
              std::to_string(d.dicom_range.size()) + " values",
              "[lo, hi] with lo < hi (data.dicom_window: fixed)");
  }
  c.one_of("data.rsna_abnormal", d.rsna_abnormal, {"lung_opacity", "not_normal"});
  for (const auto& [key, sizes] : {std::pair{"data.val_size", &d.val_size},
                                   std::pair{"data.test_size", &d.test_size}}) {
    std::string shown = "[";
    for (size_t i = 0; i < sizes->size(); ++i) {
      shown += (i ? ", " : "") + std::to_string((*sizes)[i]);
    }
    c.require(sizes->size() == 2 && (*sizes)[0] >= 0 && (*sizes)[1] >= 0, key, shown + "]",
              "[normal, anomalous] patient counts >= 0 (data.layout: rsna-dicom)");
  }
  c.positive("data.std", d.std);
  c.require(d.workers >= 0 && d.workers <= 1024, "data.workers", d.workers,
            "a number of threads in [0, 1024]");
  c.unit("data.val_ratio", d.val_ratio, /*include_one=*/false);
  c.one_of("data.on_bad_image", d.on_bad_image, {"fail", "skip"});
  c.unit("data.mask_threshold", d.mask_threshold, /*include_one=*/false);
  c.require(d.crop_scale_min > 0 && d.crop_scale_min <= 1, "data.crop_scale_min", d.crop_scale_min,
            "a value in (0, 1]");
  c.require(d.crop_scale_max >= d.crop_scale_min && d.crop_scale_max <= 1, "data.crop_scale_max",
            d.crop_scale_max, "a value in [data.crop_scale_min, 1]");
  c.positive("data.crop_ratio_min", d.crop_ratio_min);
  c.require(d.crop_ratio_max >= d.crop_ratio_min, "data.crop_ratio_max", d.crop_ratio_max,
            "a value >= data.crop_ratio_min");
  c.require(d.rotation_deg >= 0 && d.rotation_deg <= 180, "data.rotation_deg", d.rotation_deg,
            "degrees in [0, 180]");
  c.unit("data.vflip_prob", d.vflip_prob, /*include_one=*/true);
  c.unit("data.brightness", d.brightness, /*include_one=*/true);
  c.unit("data.contrast", d.contrast, /*include_one=*/true);
  c.unit("data.normal_test_ratio", d.normal_test_ratio, /*include_one=*/false);
  c.require(d.layout != "folder" || !d.normal_dir.empty(), "data.normal_dir", d.normal_dir,
            "a folder of normal images (required by data.layout: folder)");
}

void validate_model(const Config& cfg, const Checker& c) {
  const auto& m = cfg.model;
  c.require(!cfg.backbone.taps.empty(), "backbone.taps", cfg.backbone.taps, "at least one block");
  c.distinct("backbone.taps", cfg.backbone.taps);
  for (auto t : cfg.backbone.taps) {
    c.require(t >= -kMaxDepth && t < kMaxDepth, "backbone.taps", cfg.backbone.taps,
              "block indices in [" + std::to_string(-kMaxDepth) + ", " +
                  std::to_string(kMaxDepth - 1) + "] (negative ones count from the last block)");
  }
  c.size("backbone.encoder_dim", cfg.backbone.encoder_dim, kMaxWidth);
  c.size("model.dim", m.dim, kMaxWidth);
  c.size("model.qformer_depth", m.qformer_depth, kMaxDepth);
  c.size("model.qformer_heads", m.qformer_heads, kMaxHeads);
  c.require(m.dim % m.qformer_heads == 0, "model.qformer_heads", m.qformer_heads,
            "a divisor of model.dim (" + std::to_string(m.dim) + ")");
  c.size("model.cross_heads", m.cross_heads, kMaxHeads);
  c.size("model.cross_head_dim", m.cross_head_dim, kMaxWidth);
  c.require(m.qformer_mlp_ratio > 0 && m.qformer_mlp_ratio <= kMaxMlpRatio,
            "model.qformer_mlp_ratio", m.qformer_mlp_ratio, "a value in (0, 64]");
  c.require(m.decoder_mlp_ratio > 0 && m.decoder_mlp_ratio <= kMaxMlpRatio,
            "model.decoder_mlp_ratio", m.decoder_mlp_ratio, "a value in (0, 64]");
  c.unit("model.dropout", m.dropout, /*include_one=*/false);
  c.positive("model.query_init_std", m.query_init_std);
  c.size("model.decoder_dim", m.decoder_dim, kMaxWidth);
  c.require(m.decoder_dim % 4 == 0, "model.decoder_dim", m.decoder_dim,
            "a multiple of 4 (the decoder's sine-cosine position embedding has four parts)");
  c.size("model.decoder_depth", m.decoder_depth, kMaxDepth);
  c.size("model.decoder_heads", m.decoder_heads, kMaxHeads);
  c.require(m.decoder_dim % m.decoder_heads == 0, "model.decoder_heads", m.decoder_heads,
            "a divisor of model.decoder_dim (" + std::to_string(m.decoder_dim) + ")");
  c.require(m.decoder_registers >= 0 && m.decoder_registers <= kMaxWidth,
            "model.decoder_registers", m.decoder_registers, "a number of tokens in [0, 65536]");
  c.require(m.decoder_checkpoint >= 0 && m.decoder_checkpoint <= m.decoder_depth,
            "model.decoder_checkpoint", m.decoder_checkpoint,
            "a number of decoder blocks in [0, model.decoder_depth]");
  c.require(m.decoder_patch > 0 && cfg.data.image_size % m.decoder_patch == 0,
            "model.decoder_patch", m.decoder_patch,
            "a divisor of data.image_size (" + std::to_string(cfg.data.image_size) + ")");
  const int64_t grid = cfg.decoder_grid();
  c.require(m.queries == grid * grid, "model.queries", m.queries,
            "(data.image_size / model.decoder_patch)^2 = " + std::to_string(grid * grid) +
                ": the queries are the decoder's token grid");
}

void validate_train(const TrainConfig& t, const Checker& c) {
  // Bounded so that epochs x steps per epoch always fits the step counter.
  c.size("train.epochs", t.epochs, 1'000'000);
  c.require(t.max_steps >= 0 && t.max_steps <= 1'000'000'000'000, "train.max_steps", t.max_steps,
            "a number of steps in [0, 1e12]");
  c.size("train.batch_size", t.batch_size, 1 << 20);
  c.positive("train.lr", t.lr);
  c.require(t.warmup > 0 && t.warmup < 1, "train.warmup", t.warmup, "a fraction in (0, 1)");
  c.positive("train.div_factor", t.div_factor);
  c.positive("train.final_div_factor", t.final_div_factor);
  c.unit("train.beta1_max", t.beta1_max, /*include_one=*/false);
  c.require(t.beta1_min >= 0 && t.beta1_min <= t.beta1_max, "train.beta1_min", t.beta1_min,
            "a value in [0, train.beta1_max]");
  c.unit("train.beta2", t.beta2, /*include_one=*/false);
  c.non_negative("train.weight_decay", t.weight_decay);
  c.one_of("train.precision", t.precision, {"fp32", "tf32", "bf16"});
  c.positive("train.log_every", t.log_every);
  c.non_negative("train.eval_every", t.eval_every);
  c.non_negative("train.checkpoint_every", t.checkpoint_every);
}

void validate_eval(const EvalConfig& e, int64_t image_size, const Checker& c) {
  c.patch_sizes("eval.patch_sizes", e.patch_sizes, image_size);
  c.layers("eval.layers", e.layers);
  c.one_of("eval.pixel_reduction", e.pixel_reduction, {"max", "mean"});
  c.one_of("eval.layer_reduction", e.layer_reduction, {"mean", "max"});
  c.require(e.smoothing_sigma >= 0 && e.smoothing_sigma <= image_size, "eval.smoothing_sigma",
            e.smoothing_sigma, "a sigma in pixels in [0, data.image_size = " +
                                   std::to_string(image_size) + "]");
  c.size("eval.batch_size", e.batch_size, 1 << 20);
  c.one_of("eval.precision", e.precision, {"fp32", "tf32", "bf16"});
  c.require(e.bootstrap >= 0 && e.bootstrap <= 10'000'000, "eval.bootstrap", e.bootstrap,
            "a number of resamples in [0, 1e7]");
  c.require(e.max_fpr > 0 && e.max_fpr <= 1, "eval.max_fpr", e.max_fpr, "a value in (0, 1]");
  c.require(e.threshold_percentile >= 0 && e.threshold_percentile <= 100,
            "eval.threshold_percentile", e.threshold_percentile, "a percentile in [0, 100]");
  c.require(e.overlay_percentile > 0 && e.overlay_percentile <= 100, "eval.overlay_percentile",
            e.overlay_percentile, "a percentile in (0, 100]");
}

}  // namespace

void validate(const Config& config, const Sources& sources, bool check_files) {
  const Checker c(sources);
  c.require(is_plain_name(config.name), "name",
            config.name.size() <= 200 ? config.name : config.name.substr(0, 40) + "...",
            "at most 200 letters, digits, '.', '_' or '-', not '.' or '..' (it names the run "
            "folder inside output_dir)");
  static const std::regex kDevice(R"(auto|cpu|cuda(:\d+)?)");
  c.require(std::regex_match(config.device, kDevice), "device", config.device,
            "auto, cpu, cuda or cuda:N");
  c.require(!config.output_dir.empty(), "output_dir", config.output_dir, "a folder");
  c.require(config.threads >= 0 && config.threads <= 1024, "threads", config.threads,
            "a number of threads in [0, 1024]");
  require_finite(config, c);
  validate_data(config.data, c);
  validate_model(config, c);
  require_fits_in_memory(config, c);
  c.patch_sizes("loss.patch_sizes", config.loss.patch_sizes, config.data.image_size);
  c.layers("loss.layers", config.loss.layers);
  c.positive("loss.weight", config.loss.weight);
  validate_train(config.train, c);
  validate_eval(config.eval, config.data.image_size, c);
  if (check_files) {
    std::error_code ec;
    c.require(!config.data.root.empty() && fs::is_directory(config.data.root, ec), "data.root",
              config.data.root, "an existing dataset folder");
    c.require(!config.backbone.encoders.empty(), "backbone.encoders", config.backbone.encoders,
              "at least one TorchScript encoder file");
    for (size_t i = 0; i < config.backbone.encoders.size(); ++i) {
      c.file("backbone.encoders[" + std::to_string(i) + "]", config.backbone.encoders[i]);
    }
    c.file("backbone.perceptual", config.backbone.perceptual);
  }
}

}  // namespace qfae::config
