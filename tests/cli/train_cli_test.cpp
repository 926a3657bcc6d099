// The real binary's prepare and train subcommands: files written, and bad input refused with one
// clear line and exit code 2 before anything heavy runs.
#include <gtest/gtest.h>

#include <filesystem>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::tiny_sets;

namespace {
size_t count_files(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

}  // namespace

TEST(PrepareCli, WritesASyntheticBmadTreeOnce) {
  TempDir dir;
  const auto root = dir.path() / "demo";
  auto r = run_qfae("prepare --synthetic '" + root.string() +
                    "' --image-size 32 --train 5 --val 2 --test-normal 3 --test-anomalous 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 5u);
  EXPECT_EQ(count_files(root / "valid" / "good" / "img"), 2u);
  EXPECT_EQ(count_files(root / "test" / "good" / "img"), 3u);
  EXPECT_EQ(count_files(root / "test" / "Ungood" / "img"), 4u);
  EXPECT_EQ(count_files(root / "test" / "Ungood" / "label"), 4u);
  r = run_qfae("prepare --synthetic '" + root.string() + "' --train 9");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 5u);  // kept without --force
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
}

TEST(TrainCli, RefusesBadInputWithOneLine) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);  // writes the dataset
  struct Case {
    std::vector<std::string> sets;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"data.root=" + (dir.path() / "nowhere").string()}, "data.root"},
      {{"backbone.encoder_dim=64"}, "backbone.encoder_dim"},
      {{"backbone.perceptual=" + qfae::test::fixture("backbones/tiny_dino.pt")},
       "backbone.perceptual_model"},
      {{"loss.layers=[9]"}, "loss.layers"},
      {{"train.batch_size=100"}, "train.batch_size"},
      {{"backbone.encoders=[" + (dir.path() / "missing.pt").string() + "]"}, "missing.pt"},
  };
  for (const auto& c : cases) {
    const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                            tiny_sets(data, c.sets));
    EXPECT_EQ(r.code, 2) << c.expect << ": " << r.err;
    const auto last_line = r.err.substr(r.err.rfind("qfae: "));
    EXPECT_NE(last_line.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(last_line.begin(), last_line.end(), '\n'), 1) << r.err;
  }
}
