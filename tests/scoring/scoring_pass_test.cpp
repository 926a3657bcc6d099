// The scoring pass with a stand-in scorer: the finiteness rule, position order, map maxima, the
// display images and masks handed to the caller, and images that could not be read.
#include "qfae/scoring/scoring_pass.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../support/run_binary.h"
#include "../support/tree_util.h"

namespace fs = std::filesystem;
using qfae::anomaly::AnomalyOutput;
using qfae::anomaly::PendingOutput;
using qfae::scoring::PassOptions;
using qfae::scoring::RoundBatch;
using qfae::scoring::ScoredRows;
using qfae::test::TempDir;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

qfae::config::DataConfig data_config(int64_t side) {
  qfae::config::DataConfig data;
  data.image_size = side;
  data.mean = 0.5;
  data.std = 0.25;
  return data;
}

// Rounds given as a list, one after the other.
std::function<bool(RoundBatch&)> rounds_of(std::vector<RoundBatch> rounds) {
  auto next = std::make_shared<size_t>(0);
  return [rounds = std::move(rounds), next](RoundBatch& out) {
    if (*next >= rounds.size()) return false;
    out = rounds[(*next)++];
    return true;
  };
}

}  // namespace

// Each image's map is filled with its first pixel's value; the score is that value too, except
// where a test plants NaN or infinity.
TEST(ScoringPass, RowsSayWhichMapsAreFiniteAndCarryTheirMaxima) {
  const int64_t s = 2;
  const auto data = data_config(s);
  // Round 0: images at positions 0 and 1; round 1: position 2.
  RoundBatch a, b;
  a.images = torch::zeros({2, 3, s, s});
  a.images[0].fill_(1.0);   // display: (1 * 0.25 + 0.5) * 255 = 191.25 -> 191
  a.images[1].fill_(-3.0);  // -0.25 -> clamped to 0
  a.masks = torch::zeros({2, 1, s, s});
  a.masks[0][0][0][0] = 0.7;  // above one half: in the mask
  a.masks[0][0][1][1] = 0.2;
  a.positions = {0, 1};
  b.images = torch::full({1, 3, s, s}, 0.5);  // (0.5 * 0.25 + 0.5) * 255 = 159.375 -> 159
  b.positions = {2};
  int submitted = 0;
  const auto submit = [&](const torch::Tensor& images) {
    AnomalyOutput out;
    const int64_t n = images.size(0);
    out.maps = torch::zeros({n, s, s});
    out.scores = torch::zeros({n}, torch::kDouble);
    if (submitted == 0) {
      out.maps[0].fill_(0.25);
      out.maps[0][1][0] = 4.0;  // the maximum of map 0
      out.scores[0] = 1.5;
      out.maps[1].fill_(0.5);
      out.maps[1][0][1] = kNaN;  // one value is enough
      out.scores[1] = 2.0;
    } else {
      out.maps[0].fill_(-1.0);
      out.scores[0] = kInf;
    }
    ++submitted;
    return PendingOutput(out);
  };
  PassOptions po;
  po.images = true;
  po.stoppable = false;
  std::vector<ScoredRows> filed;
  qfae::scoring::score_rounds(rounds_of({a, b}), submit, data, nullptr, po, 3,
                              [&](const ScoredRows& r) { filed.push_back(r); });
  ASSERT_EQ(filed.size(), 2u);
  ASSERT_EQ(filed[0].rows.size(), 2u);
  ASSERT_EQ(filed[1].rows.size(), 1u);
  const auto& r0 = filed[0].rows;
  EXPECT_EQ(r0[0].position, 0);
  EXPECT_TRUE(r0[0].finite);
  EXPECT_DOUBLE_EQ(r0[0].score, 1.5);
  EXPECT_DOUBLE_EQ(r0[0].map_max, 4.0);
  EXPECT_EQ(r0[1].position, 1);
  EXPECT_FALSE(r0[1].finite) << "a NaN in the map, though the score is finite";
  const auto& r2 = filed[1].rows[0];
  EXPECT_EQ(r2.position, 2);
  EXPECT_FALSE(r2.finite) << "an infinite score, though the map is finite";
  EXPECT_DOUBLE_EQ(r2.map_max, -1.0);

  EXPECT_EQ(filed[0].display[0][1][0][0].item<uint8_t>(), 191);
  EXPECT_EQ(filed[0].display[1][2][1][1].item<uint8_t>(), 0);
  EXPECT_EQ(filed[1].display[0][0][0][0].item<uint8_t>(), 159);
  EXPECT_EQ(filed[0].masks[0][0][0].item<uint8_t>(), 1);
  EXPECT_EQ(filed[0].masks[0][1][1].item<uint8_t>(), 0);
  EXPECT_EQ(filed[1].masks.sum().item<int64_t>(), 0) << "a batch without masks: all zero";
  EXPECT_FLOAT_EQ(filed[0].maps[0][1][0].item<float>(), 4.0f);
}

// A round in which this process has nothing to score submits nothing and files no row.
TEST(ScoringPass, AnEmptyRoundIsPassedThrough) {
  const auto data = data_config(2);
  RoundBatch empty, one;
  one.images = torch::zeros({1, 3, 2, 2});
  one.positions = {5};
  int submitted = 0;
  const auto submit = [&](const torch::Tensor& images) {
    ++submitted;
    AnomalyOutput out;
    out.maps = torch::zeros({images.size(0), 2, 2});
    out.scores = torch::zeros({images.size(0)}, torch::kDouble);
    return PendingOutput(out);
  };
  PassOptions po;
  po.stoppable = false;
  std::vector<int64_t> positions;
  qfae::scoring::score_rounds(rounds_of({empty, one, empty}), submit, data, nullptr, po, 1,
                              [&](const ScoredRows& r) {
                                for (const auto& row : r.rows) positions.push_back(row.position);
                                EXPECT_FALSE(r.maps.defined()) << "images were not asked for";
                              });
  EXPECT_EQ(submitted, 1);
  EXPECT_EQ(positions, std::vector<int64_t>{5});
}

// Samples through the loader in batches of 2: rows come in position order, each row is its
// image (the stand-in score is the mean of the normalised image: (k / 255 - 0.5) / 0.25 for an
// image of grey level k), and an unreadable image is reported with its position and reason.
TEST(ScoringPass, SamplesComeOutInOrderAndTheUnreadableAreNamed) {
  TempDir dir;
  const std::vector<int> levels = {20, 60, 0, 100, 140};  // position 2: a broken file
  std::vector<qfae::data::Sample> samples;
  for (size_t i = 0; i < levels.size(); ++i) {
    qfae::data::Sample sample;
    const auto path = dir.path() / ("i" + std::to_string(i) + ".png");
    sample.image = i == 2 ? qfae::test::text(path, "not a png")
                          : qfae::test::grey_png(path, 4, levels[i] / 255.0);
    samples.push_back(sample);
  }
  auto data = data_config(4);
  data.on_bad_image = "skip";
  qfae::data::LoaderOptions lo;
  lo.batch_size = 2;
  lo.workers = 2;
  qfae::scoring::ScoringPass pass(samples, data, lo, nullptr);
  const auto submit = [](const torch::Tensor& images) {
    AnomalyOutput out;
    out.maps = images.mean(1);
    out.scores = images.mean({1, 2, 3}).to(torch::kDouble);
    return PendingOutput(out);
  };
  PassOptions po;
  po.stoppable = false;
  for (int run = 0; run < 2; ++run) {  // a pass can be run again (validation does)
    std::vector<int64_t> positions;
    std::vector<double> scores;
    const auto unread = pass.run(submit, po, [&](const ScoredRows& r) {
      for (const auto& row : r.rows) {
        positions.push_back(row.position);
        scores.push_back(row.score);
      }
    });
    EXPECT_EQ(positions, (std::vector<int64_t>{0, 1, 3, 4}));
    ASSERT_EQ(scores.size(), 4u);
    for (size_t k = 0; k < positions.size(); ++k) {
      const double expected = (levels[positions[k]] / 255.0 - 0.5) / 0.25;
      EXPECT_NEAR(scores[k], expected, 1e-6) << "position " << positions[k];
    }
    ASSERT_EQ(unread.size(), 1u);
    EXPECT_EQ(unread[0].position, 2);
    EXPECT_NE(unread[0].reason.find("i2.png"), std::string::npos) << unread[0].reason;
  }
  EXPECT_EQ(pass.skipped().size(), 1u);
}
