// A seeded percentile-bootstrap confidence interval for image AUROC.
#pragma once
#include <cstdint>
#include <vector>

namespace qfae::metrics {

struct BootstrapOptions {
  int resamples = 1000;      // resamples drawn (with replacement, same size as the test set)
  double confidence = 0.95;  // central interval mass
  std::uint64_t seed = 0;    // std::mt19937_64 seed; same seed, same interval on every platform
};

struct BootstrapInterval {
  double estimate = 0;     // AUROC on the full test set
  double lower = 0;        // (1 - confidence) / 2 percentile of the resampled AUROCs
  double upper = 0;        // (1 + confidence) / 2 percentile
  int resamples_used = 0;  // resamples holding both classes
  int resamples_skipped = 0;
};

// Percentiles use linear interpolation between order statistics (numpy's default). Resamples that
// draw only one class have no AUROC and are skipped (counted in resamples_skipped), as is common
// practice. Indices are drawn with an unbiased rejection sampler over mt19937_64, so results do not
// depend on the standard library. Throws qfae::UserError for bad inputs (as auroc()), for
// resamples < 1 or confidence outside (0, 1), and when every resample is skipped.
BootstrapInterval bootstrap_auroc(const std::vector<double>& scores, const std::vector<int>& labels,
                                  const BootstrapOptions& options = {});

}  // namespace qfae::metrics
