// In-process checks of data/listing.h: links that lead nowhere are listed (and indexed) like image
// files, and missing is told apart from "not a folder". Permission cases need a non-root process:
// see tests/cli/reliability_data_cli_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../support/run_binary.h"
#include "qfae/data/dataset.h"
#include "qfae/data/listing.h"
#include "../support/tree_util.h"

namespace fs = std::filesystem;
using qfae::test::TempDir;
using qfae::test::touch;
using qfae::test::user_error;

namespace reliability_listing {

std::vector<std::string> file_names(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(fs::path(p).filename().string());
  return out;
}

// dir: a.png (file), b.png -> nowhere, c.png -> itself (a loop), d.png -> a.png, e.png/ (a
// folder), notes.txt, sub/f.png.
void write_link_tree(const fs::path& dir) {
  touch(dir / "a.png");
  fs::create_symlink(dir / "nowhere.png", dir / "b.png");
  fs::create_symlink(dir / "c.png", dir / "c.png");
  fs::create_symlink(dir / "a.png", dir / "d.png");
  fs::create_directories(dir / "e.png");
  touch(dir / "notes.txt");
  touch(dir / "sub" / "f.png");
}

TEST(ReliabilityListing, BrokenLinksAreListedLikeImageFiles) {
  TempDir dir;
  write_link_tree(dir.path());
  using V = std::vector<std::string>;
  EXPECT_EQ(file_names(qfae::data::list_image_files(dir.path(), false)),
            (V{"a.png", "b.png", "c.png", "d.png"}));
  EXPECT_EQ(file_names(qfae::data::list_image_files(dir.path(), true)),
            (V{"a.png", "b.png", "c.png", "d.png", "f.png"}));
  EXPECT_EQ(file_names(qfae::data::list_images(dir.path().string())),
            (V{"a.png", "b.png", "c.png", "d.png"}));
  EXPECT_TRUE(qfae::data::is_broken_link(dir.path() / "b.png"));
  EXPECT_TRUE(qfae::data::is_broken_link(dir.path() / "c.png"));
  EXPECT_FALSE(qfae::data::is_broken_link(dir.path() / "d.png"));
  EXPECT_FALSE(qfae::data::is_broken_link(dir.path() / "a.png"));
}

TEST(ReliabilityListing, MissingIsNotUnreadable) {
  TempDir dir;
  touch(dir.path() / "file.png");
  using qfae::data::PathKind;
  EXPECT_EQ(qfae::data::path_kind(dir.path() / "none"), PathKind::kMissing);
  EXPECT_EQ(qfae::data::path_kind(dir.path() / "file.png" / "below"), PathKind::kMissing);
  EXPECT_EQ(qfae::data::path_kind(dir.path() / "file.png"), PathKind::kFile);
  EXPECT_EQ(qfae::data::path_kind(dir.path()), PathKind::kDirectory);
  EXPECT_TRUE(qfae::data::list_images((dir.path() / "none").string()).empty());
  const auto listing_a_file = user_error([&] { qfae::data::list_folder(dir.path() / "file.png"); });
  EXPECT_NE(listing_a_file.find((dir.path() / "file.png").string()), std::string::npos);
}

TEST(ReliabilityListing, InferInputsKeepBrokenLinksAndNameWhatIsMissing) {
  TempDir dir;
  write_link_tree(dir.path() / "in");
  fs::create_directories(dir.path() / "empty");
  std::vector<qfae::data::InputProblem> problems;
  const auto files = qfae::data::collect_images(
      {(dir.path() / "in").string(), (dir.path() / "in" / "b.png").string(),
       (dir.path() / "gone.png").string(), (dir.path() / "empty").string()},
      /*recursive=*/false, problems);
  EXPECT_EQ(file_names(files),
            (std::vector<std::string>{"a.png", "b.png", "c.png", "d.png", "b.png"}));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].input, (dir.path() / "gone.png").string());
  EXPECT_EQ(problems[0].reason, "no such file or folder");
  EXPECT_EQ(problems[1].input, (dir.path() / "empty").string());
  EXPECT_EQ(problems[1].reason, "folder holds no image files");
}

TEST(ReliabilityListing, ABrokenLinkInATestClassIsIndexedNotDropped) {
  TempDir dir;
  const fs::path root = dir.path();
  touch(root / "train" / "good" / "img" / "n1.png");
  touch(root / "train" / "good" / "img" / "n2.png");
  touch(root / "test" / "good" / "img" / "g1.png");
  fs::create_directories(root / "test" / "Ungood" / "img");
  fs::create_symlink(root / "gone.png", root / "test" / "Ungood" / "img" / "u1.png");
  qfae::config::DataConfig cfg;
  cfg.root = root.string();
  const auto index = qfae::data::index_dataset(cfg, /*seed=*/1);
  ASSERT_EQ(index.test.size(), 2u);
  EXPECT_EQ(fs::path(index.test[1].image).filename(), "u1.png");
  EXPECT_EQ(index.test[1].label, 1);
}

}  // namespace reliability_listing
