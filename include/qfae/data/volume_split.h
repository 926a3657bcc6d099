// Train / val / test assignment for volume datasets: whole subjects when there are several, or
// blocks of neighbouring slices with a gap between splits when there is one (ch2bet).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qfae::data {

enum class Split { kTrain, kVal, kTest, kNone };

// "train", "valid", "test" (the BMAD folder names) or "none".
const char* split_name(Split split);

// How many of n items go to val and test: round(n * ratio / sum of ratios) each, at least 1 when
// its ratio is > 0 and n >= 3, and never so many that train is left empty. Train gets the rest.
std::array<int64_t, 3> split_counts(int64_t n, const std::array<double, 3>& ratios);

// n subjects: split_counts of them to each split, chosen by a permutation seeded with `seed`.
std::vector<Split> split_subjects(int64_t n, const std::array<double, 3>& ratios, uint64_t seed);

// The slices of one subject, `kept` = their indices in increasing order. The range from the first
// to the last kept slice is cut into blocks of `block` neighbouring slices; split_counts(blocks)
// of them go to val and test, chosen spread out rather than at random: blocks are ordered by the
// fractional part of u + b * 0.618... (golden ratio, u drawn from `seed`) and the first ones in
// that order are held out, so held-out blocks lie all over the range with training blocks above
// and below them (the test sees every level of the anatomy that training sees, without sharing a
// slice). A slice within `gap` slices of a block of another split becomes kNone (dropped), so no
// image of one split is a near copy of its neighbour in another: slices of different splits are
// more than 2 * gap apart. Returns one Split per entry of `kept`.
std::vector<Split> split_slices(const std::vector<int64_t>& kept,
                                const std::array<double, 3>& ratios, int64_t block, int64_t gap,
                                uint64_t seed);

}  // namespace qfae::data
