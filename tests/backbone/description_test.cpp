// backbone::read_description, the one reader of a backbone's qfae.json: the values of the tiny
// fixtures (scripts/fixtures/make_test_backbones.py), and every bad file refused with a UserError
// naming it.
#include "qfae/backbone/description.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <string>

#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/util/error.h"

using qfae::backbone::read_description;
using qfae::test::TempDir;

namespace {

std::string description_fixture(const std::string& name) {
  return std::string(QFAE_TEST_FIXTURES) + "/backbones/" + name;
}

// tiny_dino.pt's module saved again with `json` as its qfae.json.
std::string with_description(const TempDir& dir, const std::string& name,
                             const std::string& json) {
  auto module = torch::jit::load(description_fixture("tiny_dino.pt"));
  const auto path = (dir.path() / name).string();
  module.save(path, {{"qfae.json", json}});
  return path;
}

void expect_description_refused(const std::string& path, const std::string& why) {
  const auto msg = qfae::test::user_error([&] { read_description(path); });
  ASSERT_FALSE(msg.empty()) << path << ": expected a UserError";
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(why), std::string::npos) << msg;
}

}  // namespace

TEST(BackboneDescription, ReadsTheTinyMaeWithoutLoadingTheWeights) {
  const auto d = read_description(description_fixture("tiny_mae.pt"));
  EXPECT_EQ(d.model, "test_tiny_mae");
  EXPECT_EQ(d.image_size, 32);
  EXPECT_EQ(d.patch_sizes, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(d.grids, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(d.num_prefix, 1);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.depth, 4);
  EXPECT_EQ(d.blocks, 4);
  EXPECT_EQ(d.mean.size(), 3u);
  EXPECT_EQ(d.std.size(), 3u);
  // A file cut to the first 2 of 4 blocks says so.
  const auto cut = read_description(description_fixture("tiny_dino_blocks2.pt"));
  EXPECT_EQ(cut.depth, 4);
  EXPECT_EQ(cut.blocks, 2);
}

TEST(BackboneDescription, BadFilesAreRefusedNamingTheFile) {
  TempDir dir;
  expect_description_refused((dir.path() / "nowhere.pt").string(), "not found");
  expect_description_refused(dir.write("garbage.pt", "this is not a zip archive\n").string(),
                 "not a TorchScript file");
  // TorchScript, but not from the exporter.
  expect_description_refused(description_fixture("tiny_reference.pt"), "no qfae.json");
  expect_description_refused(with_description(dir, "cut.pt", R"({"format": 1, "model": )"),
                 "malformed qfae.json");
  expect_description_refused(with_description(dir, "format2.pt", R"({"format": 2})"), "format 2");
}

// The FLOP count read qfae.json with a parser of its own that checked nothing: these files were
// counted as if they were right.
TEST(BackboneDescription, InconsistentDescriptionsAreRefused) {
  TempDir dir;
  const std::string fields = R"("model": "m", "image_size": 32, "num_prefix": 5, "width": 32,
      "depth": 4, "mean": [0, 0, 0], "std": [1, 1, 1])";
  expect_description_refused(with_description(dir, "grid.pt", R"({"format": 1, "patch_sizes": [8],
      "grids": [5], "blocks": 4, )" + fields + "}"),
                 "grid 5 for patch size 8");
  expect_description_refused(with_description(dir, "blocks.pt", R"({"format": 1, "patch_sizes": [8],
      "grids": [4], "blocks": 5, )" + fields + "}"),
                 "inconsistent qfae.json");
  expect_description_refused(with_description(dir, "no_sizes.pt", R"({"format": 1, "patch_sizes": [],
      "grids": [], "blocks": 4, )" + fields + "}"),
                 "inconsistent qfae.json");
  expect_description_refused(with_description(dir, "no_std.pt", R"({"format": 1, "model": "m",
      "image_size": 32, "patch_sizes": [8], "grids": [4], "num_prefix": 5, "width": 32,
      "depth": 4, "blocks": 4, "mean": [0, 0, 0]})"),
                 "malformed qfae.json");
}
