// Subject- and slice-level split assignment for volume datasets (see volume_split.h).
#include "qfae/data/volume_split.h"

#include <algorithm>
#include <cmath>

#include "qfae/data/random.h"

namespace qfae::data {

const char* split_name(Split split) {
  switch (split) {
    case Split::kTrain:
      return "train";
    case Split::kVal:
      return "valid";
    case Split::kTest:
      return "test";
    default:
      return "none";
  }
}

std::array<int64_t, 3> split_counts(int64_t n, const std::array<double, 3>& ratios) {
  const double sum = ratios[0] + ratios[1] + ratios[2];
  std::array<int64_t, 3> c{n, 0, 0};
  if (n <= 0 || !(sum > 0)) return c;
  for (int s = 1; s < 3; ++s) {
    c[s] = std::llround(static_cast<double>(n) * ratios[s] / sum);
    if (ratios[s] > 0 && n >= 3) c[s] = std::max<int64_t>(c[s], 1);
  }
  // Train keeps at least one item (when its ratio asks for any): take back from test, then val.
  const int64_t train_min = ratios[0] > 0 ? 1 : 0;
  for (int s = 2; s >= 1; --s) {
    while (c[1] + c[2] > n - train_min && c[s] > 0) --c[s];
  }
  c[0] = n - c[1] - c[2];
  return c;
}

std::vector<Split> split_subjects(int64_t n, const std::array<double, 3>& ratios, uint64_t seed) {
  const auto c = split_counts(n, ratios);
  const auto order = permutation(n, mix_seed(seed ^ 0x5b117ULL));
  std::vector<Split> out(static_cast<size_t>(n), Split::kTrain);
  for (int64_t r = 0; r < n; ++r) {
    out[order[r]] = r < c[1] ? Split::kVal : (r < c[1] + c[2] ? Split::kTest : Split::kTrain);
  }
  return out;
}

std::vector<Split> split_slices(const std::vector<int64_t>& kept,
                                const std::array<double, 3>& ratios, int64_t block, int64_t gap,
                                uint64_t seed) {
  if (kept.empty()) return {};
  block = std::max<int64_t>(1, block);
  const int64_t first = kept.front(), last = kept.back();
  const int64_t blocks = (last - first) / block + 1;
  // Blocks in golden-ratio order from a seeded start: the first ones in that order are spread
  // evenly over the range (three-distance theorem), so held-out blocks never bunch together.
  const auto c = split_counts(blocks, ratios);
  const double start = Rng(mix_seed(seed ^ 0x51ce5ULL)).uniform();
  std::vector<std::pair<double, int64_t>> order;
  for (int64_t b = 0; b < blocks; ++b) {
    const double phase = start + 0.6180339887498949 * static_cast<double>(b);
    order.push_back({phase - std::floor(phase), b});
  }
  std::sort(order.begin(), order.end());
  std::vector<Split> block_split(static_cast<size_t>(blocks), Split::kTrain);
  for (int64_t r = 0; r < c[1] + c[2]; ++r) {
    block_split[order[r].second] = r < c[1] ? Split::kVal : Split::kTest;
  }
  auto split_at = [&](int64_t k) { return block_split[(k - first) / block]; };
  std::vector<Split> out;
  out.reserve(kept.size());
  for (int64_t k : kept) {
    Split s = split_at(k);
    for (int64_t q = std::max(first, k - gap); q <= std::min(last, k + gap); ++q) {
      if (split_at(q) != split_at(k)) s = Split::kNone;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace qfae::data
