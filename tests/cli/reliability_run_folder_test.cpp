// Run folders with the real binary: nothing is written outside the output folder, `latest` moves
// only to a run with a checkpoint (and a `latest` qfae cannot update is reported), a failed start
// leaves nothing behind, and a run folder that is deleted or replaced while training runs stops
// the job with exit 2 naming it, without re-creating any of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "../support/tiny_training.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::run_shell;
using qfae::test::TempDir;
using qfae::test::folder_entries;
using qfae::test::tiny_sets;

namespace {

std::string named_train_args(const TempDir& dir, const std::vector<std::string>& extra) {
  auto sets = extra;
  sets.push_back("name=tiny");
  return "train -o '" + (dir.path() / "runs").string() + "'" + tiny_sets(dir.path() / "data", sets);
}

// Starts a long training in the background, waits until its run folder has logged step 3, runs
// the shell commands `change` with $run set to the run folder, and waits for qfae to end. The
// result's `out` ends with "exit=<code>"; `err` is qfae's stderr.
qfae::test::RunResult change_while_training(const TempDir& dir, const std::string& change) {
  const auto runs = (dir.path() / "runs" / "tiny").string();
  const std::string script =
      "'" + std::string(QFAE_BINARY) + "' " +
      named_train_args(dir,
                       {"train.epochs=10000", "train.eval_every=0", "train.checkpoint_every=0"}) +
      " & pid=$!\n"
      "run=\n"
      "for i in $(seq 600); do\n"
      "  run=$(ls -d '" + runs + "'/2* 2>/dev/null | head -n 1)\n"
      "  [ -n \"$run\" ] && grep -q '\"step\":3[,}]' \"$run/metrics.jsonl\" 2>/dev/null && break\n"
      "  sleep 0.1\n"
      "done\n" +
      change + "\n"
      "code=0; wait $pid || code=$?\n"
      "echo \"run=$run\"; echo \"exit=$code\"";
  return run_shell(script);
}

std::string result_field(const std::string& out, const std::string& key) {
  const auto at = out.rfind(key + "=");
  if (at == std::string::npos) return "";
  const auto end = out.find('\n', at);
  return out.substr(at + key.size() + 1, end - at - key.size() - 1);
}

}  // namespace

TEST(ReliabilityRunFolder, NamesThatLeaveTheOutputFolderAreRefused) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto out = dir.path() / "deep" / "runs";
  for (const char* name : {"..", ".", "a/b", "", "../escape"}) {
    const auto r = run_qfae("train -o '" + out.string() + "'" +
                            tiny_sets(dir.path() / "data", {std::string("name=") + name}));
    EXPECT_EQ(r.code, 2) << "name '" << name << "': " << r.err;
    EXPECT_NE(r.err.find("name"), std::string::npos) << r.err;
  }
  EXPECT_EQ(folder_entries(dir.path()), (std::vector<std::string>{"data"}))
      << "nothing was written";
}

TEST(ReliabilityRunFolder, LatestMovesOnlyToARunWithACheckpoint) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto tiny = dir.path() / "runs" / "tiny";
  auto r = run_qfae(named_train_args(dir, {"train.max_steps=2"}));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto good = fs::canonical(tiny / "latest");
  ASSERT_TRUE(fs::exists(good / "checkpoints" / "last"));

  // Diverges at its first step, before any checkpoint: exit 4, `latest` stays on the good run,
  // and the diverged run keeps its metrics.jsonl saying so.
  r = run_qfae(named_train_args(dir, {"train.lr=1e30"}));
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(fs::canonical(tiny / "latest"), good);
  EXPECT_NE(r.err.find("`latest` did not move to it"), std::string::npos) << r.err;
  EXPECT_EQ(folder_entries(tiny).size(), 3u) << "good run, diverged run, latest";
}

TEST(ReliabilityRunFolder, AFailedFirstStartLeavesNoNameFolder) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  // config.yaml cannot be written (a file size limit of 0 blocks, as a full disk would): the run
  // fails after its folder was made, and the first run of a name leaves no runs/tiny/ behind.
  const auto r = run_qfae(named_train_args(dir, {}), "", "trap '' XFSZ; ulimit -f 0; exec");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "runs" / "tiny"))
      << "entries: " << folder_entries(dir.path() / "runs").size();
}

TEST(ReliabilityRunFolder, ALatestThatIsARealFolderIsReportedAndLeftAlone) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto latest = dir.path() / "runs" / "tiny" / "latest";
  dir.write("runs/tiny/latest/notes.txt", "mine");
  const auto r = run_qfae(named_train_args(dir, {"train.max_steps=1"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find(latest.string() + " is a real folder, not the link qfae keeps"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::is_symlink(latest));
  EXPECT_EQ(qfae::test::read_text(latest / "notes.txt"), "mine");
}

TEST(ReliabilityRunFolder, ARunFolderDeletedWhileTrainingStopsTheJob) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  // Gone at once, as the job sees it (rm -rf alone empties the folder file by file first).
  const auto r = change_while_training(dir, "mv \"$run\" \"$run.gone\" && rm -rf \"$run.gone\"");
  const auto run = result_field(r.out, "run");
  ASSERT_FALSE(run.empty()) << r.out << r.err;
  EXPECT_EQ(result_field(r.out, "exit"), "2") << r.err;
  EXPECT_NE(r.err.find("run folder '" + run + "' was deleted or moved"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("done:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run)) << "no part of the run was created again";
}

TEST(ReliabilityRunFolder, ARunFolderReplacedByALinkStopsTheJob) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  // In one step (renameat2's RENAME_EXCHANGE swaps the folder and a link made beside it), so that
  // the job never sees the folder merely gone between a move and a link.
  const auto r = change_while_training(
      dir,
      "ln -s \"$(basename \"$run\").moved\" \"$run.link\" && python3 -c '\n"
      "import ctypes, sys\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "AT_FDCWD, RENAME_EXCHANGE = -100, 2\n"
      "if libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(),\n"
      "                  RENAME_EXCHANGE):\n"
      "    sys.exit(ctypes.get_errno())' \"$run\" \"$run.link\" && "
      "mv \"$run.link\" \"$run.moved\"");
  const auto run = result_field(r.out, "run");
  ASSERT_FALSE(run.empty()) << r.out << r.err;
  EXPECT_EQ(result_field(r.out, "exit"), "2") << r.err;
  EXPECT_NE(r.err.find("was replaced by a link"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run + ".moved/checkpoints")) << "nothing written through the link";
}

TEST(ReliabilityRunFolder, AMetricsFileDeletedWhileTrainingStopsTheJob) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto r = change_while_training(dir, "rm \"$run/metrics.jsonl\"");
  const auto run = result_field(r.out, "run");
  ASSERT_FALSE(run.empty()) << r.out << r.err;
  EXPECT_EQ(result_field(r.out, "exit"), "2") << r.err;
  EXPECT_NE(r.err.find(run + "/metrics.jsonl' was deleted or replaced"), std::string::npos)
      << r.err;
}
