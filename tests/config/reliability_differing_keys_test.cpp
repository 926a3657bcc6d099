// differing_keys: what eval and infer compare between a checkpoint's config and the one they
// resolved, to refuse changes to keys fixed by training.
#include <gtest/gtest.h>

#include "qfae/config/loader.h"

namespace reliability_config_test {

TEST(ReliabilityConfig, DifferingKeysSelectsSectionsAndSingleKeys) {
  qfae::config::Config a, b;
  b.model.residual = true;
  b.model.dim = 64;
  b.data.image_size = 448;
  b.data.root = "/elsewhere";  // not selected
  b.eval.smoothing_sigma = 4;  // not selected
  const auto d = qfae::config::differing_keys(a, b, {"model.", "data.image_size", "data.std"});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].key, "data.image_size");
  EXPECT_EQ(d[0].a, "224");
  EXPECT_EQ(d[0].b, "448");
  EXPECT_EQ(d[1].key, "model.dim");
  EXPECT_EQ(d[2].key, "model.residual");
  EXPECT_EQ(d[2].a, "false");
  EXPECT_EQ(d[2].b, "true");
  EXPECT_TRUE(qfae::config::differing_keys(a, a, {"model."}).empty());
  // "model" without the dot is a key of its own, not the section.
  EXPECT_TRUE(qfae::config::differing_keys(a, b, {"model"}).empty());
}

}  // namespace reliability_config_test
