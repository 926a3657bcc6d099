// StagedFolder: an uncommitted one leaves nothing behind, a committed one replaces only the parts
// it names, and a file where the folder should be is an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/util/staged_folder.h"

namespace fs = std::filesystem;
using qfae::test::TempDir;
using qfae::test::user_error;

namespace reliability_staged_folder {

void put_file(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "x";
}

TEST(ReliabilityStagedFolder, UncommittedLeavesNothingCommittedReplaces) {
  TempDir dir;
  const auto root = dir.path() / "out";
  {
    qfae::StagedFolder staged(root.string());
    put_file(fs::path(staged.path()) / "train" / "x.png");
  }
  EXPECT_FALSE(fs::exists(root)) << "created by the staged folder, removed with it";

  put_file(root / "train" / "old.png");
  put_file(root / "test" / "old.png");
  put_file(root / "mine.txt");
  {
    qfae::StagedFolder staged(root.string());
    put_file(fs::path(staged.path()) / "train" / "new.png");
    staged.commit({"train", "test"});
  }
  EXPECT_TRUE(fs::exists(root / "train" / "new.png"));
  EXPECT_FALSE(fs::exists(root / "train" / "old.png"));
  EXPECT_FALSE(fs::exists(root / "test")) << "replaced by nothing: the new dataset has none";
  EXPECT_TRUE(fs::exists(root / "mine.txt")) << "what is not ours stays";
  EXPECT_FALSE(fs::exists(root / ".partial"));

  const auto file = (dir.path() / "a-file").string();
  put_file(file);
  EXPECT_NE(user_error([&] { qfae::StagedFolder staged(file); }).find(file), std::string::npos);
}

}  // namespace reliability_staged_folder
