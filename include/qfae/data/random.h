// Seeded randomness for data: a generator with our own uniform mappings (the std distributions
// differ between standard libraries), per-sample seeds and permutations. Same seed, same numbers,
// on every platform and thread.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qfae::data {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t next() { return gen_(); }
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t below(int64_t n) {  // [0, n), unbiased
    const uint64_t un = static_cast<uint64_t>(n);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t r;
    do r = gen_();
    while (r >= limit);
    return static_cast<int64_t>(r % un);
  }
  double normal() {  // Box-Muller, standard normal
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::mt19937_64 gen_;
};

// SplitMix64 finaliser: decorrelates nearby seeds.
inline uint64_t mix_seed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Per-sample seed from the run seed, the epoch and the sample's index in its dataset, so that
// augmentation depends neither on thread scheduling nor on the shuffled order.
inline uint64_t sample_seed(uint64_t run_seed, int64_t epoch, int64_t index) {
  return mix_seed(mix_seed(mix_seed(run_seed) ^ static_cast<uint64_t>(epoch)) ^
                  static_cast<uint64_t>(index));
}

// A permutation of 0..n-1 (Fisher-Yates with Rng(seed)).
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(i + 1)]);
  return p;
}

}  // namespace qfae::data
