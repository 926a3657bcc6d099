// Streaming pixel metrics pooled over a whole test set: pixel AUROC, AP, best (pooled) Dice with
// its threshold, per-image Dice at that threshold, and AUPRO up to an FPR limit.
//
// Memory: scores are binned into a fixed histogram over [lo, hi] given up front (from the config
// or a first pass with ScoreRange), so no map is kept at full precision. Exactness: thresholds are
// restricted to bin lower edges e_k = lo + k (hi - lo) / bins, a pixel being anomalous when its
// bin index is >= k; every metric is then the exact sklearn-style value for the binned scores
// (each score replaced by its bin's lower edge, ties grouped). With scores that are exact bin
// edges inside [lo, hi) the results equal the unbinned values. For AUROC the binning error is at
// most auroc_bin_error_bound = 0.5 * sum_k pos_k neg_k / (P N) (pairs sharing a bin become ties);
// scores outside [lo, hi] are clamped into the end bins and counted in `clamped`, which voids the
// bound. Per-image Dice keeps, for each image with a non-empty mask only, its pixels' 16-bit bin
// indices (2 bytes a pixel; bins <= 65536). Images with empty masks contribute normal pixels only.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "qfae/metrics/binary_curve.h"

namespace qfae::metrics {

struct PixelCurveOptions {
  std::int64_t bins = 65536;  // 2 .. 65536
  double lo = 0.0;            // score range binned; scores outside are clamped
  double hi = 1.0;
  double fpr_limit = 0.3;      // AUPRO integrates FPR in [0, fpr_limit] and divides by it
  bool per_image_dice = true;  // keep 16-bit bins of anomalous images for per-image Dice
};

struct PixelMetrics {
  double auroc = 0;
  double ap = 0;
  double best_dice = 0;            // max over thresholds of pooled 2TP / (2TP + FP + FN)
  double best_dice_threshold = 0;  // bin edge: pixel anomalous when score >= it (after binning)
  std::int64_t best_dice_bin = 0;  // its bin index (for image_dice)
  double per_image_dice = 0;       // mean over images with non-empty masks; NaN when disabled
  double aupro = 0;                // normalised by fpr_limit
  double auroc_bin_error_bound = 0;
  std::int64_t positives = 0;  // anomalous pixels
  std::int64_t negatives = 0;  // normal pixels
  std::int64_t regions = 0;    // connected mask components (8-connectivity)
  std::int64_t anomalous_images = 0;
  std::int64_t clamped = 0;  // scores outside [lo, hi]
};

class PixelCurveAccumulator {
 public:
  // Throws qfae::UserError for bins outside [2, 65536], non-finite or empty ranges, or a
  // fpr_limit outside (0, 1].
  explicit PixelCurveAccumulator(const PixelCurveOptions& options = {});

  // maps: (B, H, W) or (H, W) floating scores, any device; masks: same shape, a value > 0.5 is
  // anomalous. Throws qfae::UserError naming the image when a map holds NaN or infinity.
  void add(const torch::Tensor& maps, const torch::Tensor& masks);

  // Throws qfae::UserError when there are no anomalous pixels (all masks empty) or no normal ones.
  PixelMetrics compute() const;

  // Dice of each image added so far (in order) when pixels in bins >= `bin` count as anomalous;
  // NaN for images whose mask is empty (Dice is undefined there). Needs per_image_dice.
  std::vector<double> image_dice(std::int64_t bin) const;

  // The binned curve (thresholds are bin edges, only occupied bins), for ROC/PR plots.
  BinaryCurve curve() const;
  double bin_edge(std::int64_t k) const;

  // The q-quantile (q in [0, 1]) of all pixel scores added so far, at bin resolution: the upper
  // edge of the bin that holds the ceil(q * n)-th smallest score (at least the first). It is
  // >= the exact quantile and less than one bin width above it. `hi` when nothing was added.
  double quantile(double q) const;
  std::int64_t images() const { return images_; }

 private:
  std::int64_t bin_of(double score) const;
  double dice_of_image(size_t image, std::int64_t k) const;

  struct ImageBins {
    std::vector<std::uint16_t> inside;   // sorted bins of mask pixels
    std::vector<std::uint16_t> outside;  // sorted bins of the other pixels
  };

  PixelCurveOptions options_;
  double scale_ = 0;                 // bins / (hi - lo)
  std::vector<std::int64_t> pos_;    // anomalous pixels per bin
  std::vector<std::int64_t> neg_;    // normal pixels per bin
  std::vector<double> region_mass_;  // sum over anomalous pixels of 1 / (area of its region)
  std::vector<ImageBins> anomalous_;
  std::vector<std::int64_t> anomalous_image_;  // index (order of add) of each anomalous_ entry
  std::int64_t regions_ = 0;
  std::int64_t anomalous_images_ = 0;
  std::int64_t images_ = 0;
  std::int64_t clamped_ = 0;
};

}  // namespace qfae::metrics
