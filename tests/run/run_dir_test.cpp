// The run lock (one writer per run folder, released when its process ends, a folder that went
// away noticed) and truncate_metrics_after (a resumed run drops the events of later steps),
// checked against flock(2) held by another process and against hand-written metrics files.
#include "qfae/run/run_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "../support/run_binary.h"
#include "../support/user_error.h"

namespace fs = std::filesystem;
using qfae::run::RunLock;
using qfae::test::TempDir;

namespace {

ino_t inode_of(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

TEST(RunLock, ASecondLockOnTheFolderIsRefusedNamingItAndThePid) {
  TempDir dir;
  const auto run = dir.path() / "run";
  fs::create_directories(run);
  {
    RunLock first(run.string());
    // flock(2) locks belong to an open file description, so a second open in this same process
    // conflicts as another process's would.
    const auto error = qfae::test::user_error([&] { RunLock second(run.string()); });
    const std::string expected = "run folder '" + run.string() +
                                 "' is being written by another qfae process (pid " +
                                 std::to_string(::getpid()) + ")";
    EXPECT_NE(error.find(expected), std::string::npos) << error;
  }
  // The first lock is gone with its object: the folder can be locked again.
  EXPECT_EQ(qfae::test::user_error([&] { RunLock again(run.string()); }), "");
}

TEST(RunLock, ALockHeldByAnotherProcessIsRefusedUntilThatProcessIsKilled) {
  TempDir dir;
  const auto run = dir.path() / "run";
  fs::create_directories(run);
  const std::string lock_path = (run / ".lock").string();
  std::ofstream(lock_path) << "";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // only async-signal-safe calls here: the parent has LibTorch's threads
    const int fd = ::open(lock_path.c_str(), O_RDWR);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    [[maybe_unused]] const auto n = ::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child could not lock " << lock_path;
  ::close(ready[0]);
  const auto error = qfae::test::user_error([&] { RunLock mine(run.string()); });
  EXPECT_NE(error.find("is being written by another qfae process"), std::string::npos) << error;
  // SIGKILL gives the process no chance to unlock: the kernel releases the lock as it exits.
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(qfae::test::user_error([&] { RunLock mine(run.string()); }), "");
}

TEST(RunLock, CheckPassesWhileTheFolderIsThereAndNamesWhatHappenedOtherwise) {
  TempDir dir;
  const auto run = dir.path() / "run";
  const auto moved = dir.path() / "moved";
  {  // untouched
    fs::create_directories(run);
    RunLock lock(run.string());
    EXPECT_EQ(qfae::test::user_error([&] { lock.check(); }), "");
    fs::rename(run, moved);  // moved away (as `rm -r` or `mv` would)
    const auto error = qfae::test::user_error([&] { lock.check(); });
    EXPECT_NE(error.find("run folder '" + run.string() + "' was deleted or moved"),
              std::string::npos)
        << error;
    fs::create_directories(run);  // another folder of the same name in its place
    const auto replaced = qfae::test::user_error([&] { lock.check(); });
    EXPECT_NE(replaced.find("was replaced by another folder"), std::string::npos) << replaced;
  }
  fs::remove_all(run);
  fs::remove_all(moved);
  {  // replaced by a link to another folder
    fs::create_directories(run);
    RunLock lock(run.string());
    fs::rename(run, moved);
    fs::create_directory_symlink(moved, run);
    const auto error = qfae::test::user_error([&] { lock.check(); });
    EXPECT_NE(error.find("was replaced by a link"), std::string::npos) << error;
  }
  fs::remove(run);
  fs::remove_all(moved);
  {  // emptied: the folder stays, its .lock is removed
    fs::create_directories(run);
    RunLock lock(run.string());
    fs::remove(run / ".lock");
    const auto error = qfae::test::user_error([&] { lock.check(); });
    EXPECT_NE(error.find("was emptied (its .lock is gone)"), std::string::npos) << error;
  }
}

TEST(RunLock, AFolderThatDoesNotExistIsAUserErrorNamingIt) {
  TempDir dir;
  const auto missing = dir.path() / "nowhere";
  const auto error = qfae::test::user_error([&] { RunLock lock(missing.string()); });
  EXPECT_NE(error.find("run folder '" + missing.string() + "'"), std::string::npos) << error;
}

TEST(TruncateMetrics, DropsLaterStepsAndALastLineCutShortKeepsTheRest) {
  TempDir dir;
  // A run killed after logging step 5 and half a line, resumed from the checkpoint at step 3.
  const auto path = dir.write("metrics.jsonl",
                              "{\"event\":\"start\",\"steps\":5}\n"
                              "{\"event\":\"train\",\"step\":1,\"loss\":0.5}\n"
                              "{\"event\":\"train\",\"step\":2,\"loss\":0.4}\n"
                              "{\"event\":\"train\",\"step\":3,\"loss\":0.3}\n"
                              "{\"event\":\"val\",\"step\":3,\"auroc\":0.7}\n"
                              "{\"event\":\"train\",\"step\":4,\"loss\":0.2}\n"
                              "{\"event\":\"resumed\",\"note\":\"no step\"}\n"
                              "{\"event\":\"train\",\"step\":5,\"loss\":0.1}\n"
                              "{\"event\":\"train\",\"st");
  qfae::run::truncate_metrics_after(path.string(), 3);
  EXPECT_EQ(qfae::test::read_text(path),
            "{\"event\":\"start\",\"steps\":5}\n"
            "{\"event\":\"train\",\"step\":1,\"loss\":0.5}\n"
            "{\"event\":\"train\",\"step\":2,\"loss\":0.4}\n"
            "{\"event\":\"train\",\"step\":3,\"loss\":0.3}\n"
            "{\"event\":\"val\",\"step\":3,\"auroc\":0.7}\n"
            "{\"event\":\"resumed\",\"note\":\"no step\"}\n");
}

TEST(TruncateMetrics, AFileWithNothingToDropIsNotRewrittenAndNoFileIsNotCreated) {
  TempDir dir;
  const std::string text =
      "{\"event\":\"train\",\"step\":1,\"loss\":0.5}\n{\"event\":\"train\",\"step\":2}\n";
  const auto path = dir.write("metrics.jsonl", text);
  const auto before = inode_of(path);
  qfae::run::truncate_metrics_after(path.string(), 2);
  EXPECT_EQ(qfae::test::read_text(path), text);
  EXPECT_EQ(inode_of(path), before);  // write_file_atomic would have made a new file

  const auto missing = dir.path() / "none.jsonl";
  qfae::run::truncate_metrics_after(missing.string(), 0);
  EXPECT_FALSE(fs::exists(missing));
}
