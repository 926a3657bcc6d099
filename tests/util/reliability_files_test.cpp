// Staged folders (StagedDir, whole or by parts), checked file writes and CSV/TSV quoting: the
// building blocks that keep eval, infer and prepare outputs complete or absent, never half-written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "../support/csv_rfc4180.h"
#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using qfae::test::read_text;
using qfae::test::TempDir;
using qfae::test::user_error;

namespace reliability_files_test {

// Names in `dir`, sorted.
std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

void put_file(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "x";
}

TEST(ReliabilityStagedDir, CommitReplacesTheEarlierFolderWhole) {
  TempDir dir;
  const auto out = dir.path() / "out";
  dir.write("out/metrics.json", "old");
  dir.write("out/maps/stale.png", "an overlay of an image the new run does not have");
  {
    qfae::StagedDir staged(out.string(), "metrics.json");
    EXPECT_EQ(staged.path(), out.string() + ".partial-" + std::to_string(::getpid()));
    std::ofstream(fs::path(staged.path()) / "metrics.json") << "new";
    EXPECT_EQ(read_text(out / "metrics.json"), "old") << "nothing changes before commit()";
    staged.commit();
  }
  EXPECT_EQ(read_text(out / "metrics.json"), "new");
  EXPECT_FALSE(fs::exists(out / "maps")) << "no stale file of the earlier result survives";
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out"});
}

TEST(ReliabilityStagedDir, WithoutCommitTheEarlierFolderStaysAndTheTemporaryGoes) {
  TempDir dir;
  dir.write("out/metrics.json", "old");
  {
    qfae::StagedDir staged((dir.path() / "out").string(), "metrics.json");
    std::ofstream(fs::path(staged.path()) / "metrics.json") << "half";
  }  // an exception or a stop signal leaves the scope like this
  EXPECT_EQ(read_text(dir.path() / "out" / "metrics.json"), "old");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out"});
  {
    qfae::StagedDir staged((dir.path() / "new").string(), "metrics.json");
  }
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out"}) << "absent stays absent";
}

TEST(ReliabilityStagedDir, RefusesToReplaceWhatIsNotAnEarlierResult) {
  TempDir dir;
  dir.write("home/thesis.tex", "months of work");
  const auto msg =
      user_error([&] { qfae::StagedDir((dir.path() / "home").string(), "metrics.json"); });
  EXPECT_NE(msg.find("no metrics.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir.path() / "home").string()), std::string::npos) << msg;
  EXPECT_EQ(read_text(dir.path() / "home" / "thesis.tex"), "months of work");
  dir.write("file", "x");
  EXPECT_NE(user_error([&] { qfae::StagedDir((dir.path() / "file").string(), "m"); })
                .find("not a folder"),
            std::string::npos);
  // An empty folder (a fresh TempDir given as -o) and "dir/" with a slash are fine.
  fs::create_directories(dir.path() / "empty");
  qfae::StagedDir ok((dir.path() / "empty").string() + "/", "metrics.json");
  EXPECT_EQ(ok.final_path(), (dir.path() / "empty").string());
}

TEST(ReliabilityStagedDir, RemovesPartialFoldersOfDeadProcessesOnly) {
  TempDir dir;
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const auto out = dir.path() / "out";
  dir.write("out.partial-" + std::to_string(dead) + "/metrics.json", "killed -9");
  dir.write("out.partial-1/metrics.json", "pid 1 runs");       // alive (or not ours)
  dir.write("out.partial-abc/keep", "not a pid");
  dir.write("other.partial-" + std::to_string(dead) + "/x", "another folder's");
  { qfae::StagedDir staged(out.string(), "metrics.json"); }
  EXPECT_EQ(names_in(dir.path()),
            (std::vector<std::string>{"other.partial-" + std::to_string(dead), "out.partial-1",
                                      "out.partial-abc"}));
}

// parts_of: an uncommitted one leaves nothing behind, a committed one replaces only the parts it
// names, and a file where the folder should be is an error naming it.
TEST(ReliabilityStagedDir, PartsUncommittedLeaveNothingCommittedReplaceOnlyThem) {
  TempDir dir;
  const auto root = dir.path() / "out";
  {
    auto staged = qfae::StagedDir::parts_of(root.string(), {"train", "test"});
    EXPECT_EQ(staged.path(), (root / ".partial").string());
    put_file(fs::path(staged.path()) / "train" / "x.png");
  }
  EXPECT_FALSE(fs::exists(root)) << "created by the staged folder, removed with it";

  put_file(root / "train" / "old.png");
  put_file(root / "test" / "old.png");
  put_file(root / "mine.txt");
  put_file(root / ".partial" / "train" / "killed.png");  // a run killed while it wrote
  {
    auto staged = qfae::StagedDir::parts_of(root.string(), {"train", "test"});
    EXPECT_FALSE(fs::exists(fs::path(staged.path()) / "train")) << "the leftover is gone";
    put_file(fs::path(staged.path()) / "train" / "new.png");
    EXPECT_TRUE(fs::exists(root / "train" / "old.png")) << "nothing changes before commit()";
    staged.commit();
  }
  EXPECT_TRUE(fs::exists(root / "train" / "new.png"));
  EXPECT_FALSE(fs::exists(root / "train" / "old.png"));
  EXPECT_FALSE(fs::exists(root / "test")) << "replaced by nothing: the new dataset has none";
  EXPECT_TRUE(fs::exists(root / "mine.txt")) << "what is not ours stays";
  EXPECT_FALSE(fs::exists(root / ".partial"));

  const auto file = (dir.path() / "a-file").string();
  put_file(file);
  EXPECT_NE(user_error([&] { qfae::StagedDir::parts_of(file, {"train"}); }).find(file),
            std::string::npos);
}

TEST(ReliabilityFiles, WriteFailuresNameThePathAndLeaveNoTemporaryFile) {
  TempDir dir;
  auto msg = user_error(
      [&] { qfae::write_file_atomic((dir.path() / "missing" / "a.csv").string(), "x"); });
  EXPECT_NE(msg.find((dir.path() / "missing" / "a.csv").string()), std::string::npos) << msg;
  // The target is a folder: the rename fails, the temporary file is removed.
  fs::create_directories(dir.path() / "taken" / "inside");
  msg = user_error([&] { qfae::write_file_atomic((dir.path() / "taken").string(), "x"); });
  EXPECT_NE(msg.find((dir.path() / "taken").string()), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir.path() / "taken.tmp"));
  dir.write("plain", "x");
  msg = user_error([&] { qfae::make_dirs((dir.path() / "plain" / "sub").string()); });
  EXPECT_NE(msg.find("plain"), std::string::npos) << msg;
}

TEST(ReliabilityFiles, CsvFieldsReadBackPerRfc4180) {
  const std::vector<std::string> texts = {
      "plain", "", "a,b", "say \"hi\"", "two\nlines", "cr\r\nlf", "\"", ",", "trailing,"};
  std::string line;
  for (size_t i = 0; i < texts.size(); ++i) line += (i ? "," : "") + qfae::csv_field(texts[i]);
  const auto rows = qfae::test::parse_csv_rfc4180(line + "\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], texts);
}

// By hand: each escape is a backslash and a letter; nothing else changes.
TEST(ReliabilityFiles, TsvFieldsNeverSplitARowOrAColumn) {
  EXPECT_EQ(qfae::tsv_field("plain name.png"), "plain name.png");
  EXPECT_EQ(qfae::tsv_field("a\tb"), "a\\tb");
  EXPECT_EQ(qfae::tsv_field("two\nlines\r"), "two\\nlines\\r");
  EXPECT_EQ(qfae::tsv_field("C:\\x"), "C:\\\\x");
  EXPECT_EQ(qfae::tsv_field("a,\"b\""), "a,\"b\"");
}

}  // namespace reliability_files_test
