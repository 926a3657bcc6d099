// Percentile bootstrap of image AUROC with a portable seeded sampler.
#include "qfae/metrics/bootstrap_auroc.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "qfae/metrics/binary_curve.h"
#include "qfae/util/error.h"
#include "qfae/util/math.h"

namespace qfae::metrics {
namespace {

// Uniform integer in [0, n) from raw mt19937_64 output (rejection removes modulo bias).
std::uint64_t draw_index(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t limit = std::mt19937_64::max() - std::mt19937_64::max() % n;
  std::uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

}  // namespace

BootstrapInterval bootstrap_auroc(const std::vector<double>& scores, const std::vector<int>& labels,
                                  const BootstrapOptions& options) {
  check_binary_inputs(scores, labels, "image AUROC bootstrap");
  if (options.resamples < 1) {
    throw UserError("image AUROC bootstrap: resamples must be >= 1, got " +
                    std::to_string(options.resamples));
  }
  if (!(options.confidence > 0 && options.confidence < 1)) {
    throw UserError("image AUROC bootstrap: confidence must be in (0, 1), got " +
                    std::to_string(options.confidence));
  }
  BootstrapInterval out;
  out.estimate = auroc_from_curve(binary_curve(scores, labels));

  const size_t n = scores.size();
  std::mt19937_64 rng(options.seed);
  std::vector<double> s(n);
  std::vector<int> l(n);
  std::vector<double> aurocs;
  aurocs.reserve(options.resamples);
  for (int r = 0; r < options.resamples; ++r) {
    int positives = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(draw_index(rng, n));
      s[i] = scores[k];
      l[i] = labels[k];
      positives += l[i];
    }
    if (positives == 0 || positives == static_cast<int>(n)) {
      ++out.resamples_skipped;
      continue;
    }
    aurocs.push_back(auroc_from_curve(binary_curve(s, l)));
  }
  if (aurocs.empty()) {
    throw UserError("image AUROC bootstrap: all " + std::to_string(options.resamples) +
                    " resamples held one class only; the test set is too small or too unbalanced");
  }
  out.resamples_used = static_cast<int>(aurocs.size());
  out.lower = quantile(aurocs, (1 - options.confidence) / 2);
  out.upper = quantile(aurocs, (1 + options.confidence) / 2);
  return out;
}

}  // namespace qfae::metrics
