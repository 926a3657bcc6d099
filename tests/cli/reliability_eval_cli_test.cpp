// qfae eval and infer outputs are whole and distinct ("nothing lost, nothing silent"): several
// runs of one config get their own folders, and neither a re-run nor a stop signal ever leaves
// a mixture of two evaluations. Bad input and faults: reliability_eval_faults_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../support/reliability_runs.h"
#include "../support/user_error.h"
#include "qfae/cli/common.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;

namespace reliability_eval_cli_test {

using namespace qfae::test::reliability;  // the ReliabilityEval fixture and its helpers

TEST_F(ReliabilityEval, TwoRunsOfOneConfigGetTwoFolders) {
  TempDir out;
  // The second run through its "latest" link: its folder is still named after the run.
  const auto latest = dir_->path() / "runs" / "demo" / "latest";
  ASSERT_EQ(fs::canonical(latest), fs::canonical(run(1)));
  const auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " --checkpoint " +
                          shq(latest.string()) + " -o " + shq(out.path().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> folders = {
      "demo-" + run(0).filename().string() + "-test-last",
      "demo-" + run(1).filename().string() + "-test-last"};
  const auto rows = csv_of(out.path() / "summary.csv");
  ASSERT_GE(rows.size(), 3u);
  ASSERT_EQ(rows[0].back(), "results");
  for (size_t i = 0; i < 2; ++i) {
    const auto m = json::parse(read_text(out.path() / folders[i] / "metrics.json"));
    EXPECT_EQ(fs::path(m["checkpoint"].get<std::string>()).parent_path().parent_path().filename(),
              run(i).filename())
        << "each folder holds its own run's results";
    ASSERT_EQ(rows[1 + i].size(), rows[0].size());
    EXPECT_EQ(rows[1 + i].back(), folders[i]) << "the summary points at the run's own folder";
    EXPECT_EQ(rows[1 + i][3], m["checkpoint"].get<std::string>());
  }
  EXPECT_NE(read_text(out.path() / "summary.md").find(folders[1]), std::string::npos);
}

TEST_F(ReliabilityEval, TheSameRunGivenTwiceGetsTwoFolders) {
  TempDir out;
  const auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " --checkpoint " +
                          shq(run(0).string()) + " -o " + shq(out.path().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string base = "demo-" + run(0).filename().string() + "-test-last";
  EXPECT_TRUE(fs::is_regular_file(out.path() / (base + "-1") / "metrics.json"));
  EXPECT_TRUE(fs::is_regular_file(out.path() / (base + "-2") / "metrics.json"));
  const auto rows = csv_of(out.path() / "summary.csv");
  EXPECT_EQ(rows.at(1).back(), base + "-1");
  EXPECT_EQ(rows.at(2).back(), base + "-2");
}

TEST_F(ReliabilityEval, ARerunWithFewerImagesLeavesNoStaleOverlays) {
  TempDir dir;
  const auto out = dir.path() / "out";
  auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(overlays_in(out), 8u);
  r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()) +
               " --set data.root=" + shq(small().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(overlays_in(out), 4u) << "only the new evaluation's overlays";
  EXPECT_EQ(csv_of(out / "scores.csv").size(), 5u);
  EXPECT_EQ(json::parse(read_text(out / "metrics.json"))["dataset"]["images"], 4);
  EXPECT_TRUE(leftovers_beside(out).empty());
  // The run's own eval folder (no -o) is replaced the same way.
  r = run_qfae("eval -q --checkpoint " + shq(run(0).string()));
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " --set data.root=" +
               shq(small().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(overlays_in(run(0) / "eval" / "test-last"), 4u);
  EXPECT_TRUE(leftovers_beside(run(0) / "eval" / "test-last").empty());
}

TEST_F(ReliabilityEval, SigintDuringEvalKeepsTheEarlierResultAndWritesNothing) {
  TempDir dir;
  const auto out = dir.path() / "out";
  auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = snapshot(out);
  const pid_t pid =
      spawn_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()) +
                     " --set data.root=" + shq(big().string()) + " --set eval.bootstrap=0",
                 dir.path() / "err");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(signal_while_writing(pid, out, SIGINT), 130)
      << "-1: eval ended before the signal\n" << read_text(dir.path() / "err");
  EXPECT_EQ(snapshot(out), before) << "the earlier result is untouched";
  EXPECT_TRUE(leftovers_beside(out).empty());
  const auto err = read_text(dir.path() / "err");
  EXPECT_NE(err.find("nothing was written to " + out.string()), std::string::npos) << err;
  EXPECT_EQ(err.find("terminate"), std::string::npos) << err;
  // With no earlier result the folder stays absent.
  const auto fresh = dir.path() / "fresh";
  const pid_t again =
      spawn_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(fresh.string()) +
                     " --set data.root=" + shq(big().string()),
                 dir.path() / "err2");
  EXPECT_EQ(signal_while_writing(again, fresh, SIGTERM), 143) << read_text(dir.path() / "err2");
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_TRUE(leftovers_beside(fresh).empty());
}

TEST_F(ReliabilityEval, SigintDuringABatchKeepsFinishedRunsAndWritesNoSummary) {
  TempDir dir;
  const auto out = dir.path() / "out";
  auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " --checkpoint " +
                    shq(run(1).string()) + " -o " + shq(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::is_regular_file(out / "summary.csv"));
  // Again, the second run on the large data set (its own --config), stopped while it is written.
  const auto on_big = dir.path() / "big.yaml";
  std::ofstream(on_big) << "data:\n  root: " << big().string() << "\n";
  const auto own = run(0) / "checkpoints" / "last" / "config.yaml";
  const auto second = out / ("demo-" + run(1).filename().string() + "-test-last");
  const auto second_before = snapshot(second);
  const pid_t pid = spawn_qfae("eval -q --checkpoint " + shq(run(0).string()) + " --checkpoint " +
                                   shq(run(1).string()) + " --config " + shq(own.string()) +
                                   " --config " + shq(on_big.string()) + " -o " +
                                   shq(out.string()),
                               dir.path() / "err");
  EXPECT_EQ(signal_while_writing(pid, second, SIGINT), 130) << read_text(dir.path() / "err");
  const auto err = read_text(dir.path() / "err");
  EXPECT_NE(err.find("the 1 run(s) evaluated before are complete"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out / "summary.csv")) << "no summary of folders that were replaced";
  EXPECT_FALSE(fs::exists(out / "summary.md"));
  EXPECT_EQ(snapshot(second), second_before) << "the stopped run's earlier folder is as it was";
  EXPECT_TRUE(fs::is_regular_file(
      out / ("demo-" + run(0).filename().string() + "-test-last") / "metrics.json"));
  EXPECT_TRUE(leftovers_beside(second).empty());
}

TEST_F(ReliabilityEval, SigtermDuringInferKeepsTheEarlierResultAndWritesNothing) {
  TempDir dir;
  const auto out = dir.path() / "out";
  const auto images = big() / "test" / "good" / "img";
  auto r = run_qfae("infer -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()) +
                    " " + shq((data() / "test" / "good" / "img").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = snapshot(out);
  const pid_t pid = spawn_qfae("infer -q --checkpoint " + shq(run(0).string()) + " -o " +
                                   shq(out.string()) + " " + shq(images.string()),
                               dir.path() / "err");
  EXPECT_EQ(signal_while_writing(pid, out, SIGTERM), 143) << read_text(dir.path() / "err");
  EXPECT_EQ(snapshot(out), before);
  EXPECT_TRUE(leftovers_beside(out).empty());
  EXPECT_NE(read_text(dir.path() / "err").find("nothing was written"), std::string::npos);
  // The default folder, <run>/infer/<timestamp>, appears only once complete.
  const auto infer_dir = run(1) / "infer";
  const pid_t again = spawn_qfae("infer -q --checkpoint " + shq(run(1).string()) + " " +
                                     shq(images.string()),
                                 dir.path() / "err2");
  ASSERT_GT(again, 0);
  // Its temporary folder is "<timestamp>.partial-<pid>" inside <run>/infer.
  int code = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(again, &status, WNOHANG) == again) break;
    bool writing = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(infer_dir, ec)) {
      writing = writing || e.path().filename().string().find(".partial-") != std::string::npos;
    }
    if (writing) {
      ::kill(again, SIGINT);
      ::waitpid(again, &status, 0);
      code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(code, 130) << read_text(dir.path() / "err2");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(infer_dir)) left.push_back(e.path().string());
  EXPECT_TRUE(left.empty()) << left.front();
}

TEST(ReliabilityEvalNames, OutputFoldersAreNamedWithoutTheOldSuffix) {
  using qfae::cli::checkpoint_label;
  using qfae::cli::run_folder_of;
  EXPECT_EQ(checkpoint_label("runs/demo/1/checkpoints/last"), "last");
  EXPECT_EQ(checkpoint_label("runs/demo/1/checkpoints/last.old"), "last");
  EXPECT_EQ(checkpoint_label("runs/demo/1/checkpoints/best.old/"), "best");
  EXPECT_EQ(checkpoint_label("exported/my.model"), "my.model");
  EXPECT_EQ(checkpoint_label(".old"), ".old");
  EXPECT_EQ(run_folder_of("runs/demo/1/checkpoints/last.old"), "runs/demo/1");
  EXPECT_EQ(run_folder_of("runs/demo/1/checkpoints/last/"), "runs/demo/1");
  EXPECT_EQ(run_folder_of("exported/model"), "exported/model");
}

// eval and infer find what --checkpoint names alike: a run folder's checkpoints/<which> (the
// ".old" copy a crash left included), its config.yaml and run folder; a checkpoint folder without
// its config.yaml is refused by name.
TEST(ReliabilityEvalNames, CheckpointArgumentsFindTheFoldersOrNameWhatIsMissing) {
  TempDir dir;
  dir.write("runs/demo/1/checkpoints/last.old/model.safetensors", "weights");
  dir.write("runs/demo/1/checkpoints/last.old/config.yaml", "name: demo\n");
  const auto run = (dir.path() / "runs" / "demo" / "1").string();
  const auto found = qfae::cli::find_checkpoint_paths(run, "last");
  EXPECT_EQ(found.checkpoint, run + "/checkpoints/last.old");
  EXPECT_EQ(found.config, run + "/checkpoints/last.old/config.yaml");
  EXPECT_EQ(found.run, run);
  const auto exported = dir.write("exported/model.safetensors", "weights").parent_path().string();
  EXPECT_EQ(qfae::test::user_error([&] { qfae::cli::find_checkpoint_paths(exported, "best"); }),
            "--checkpoint " + exported + ": " + exported + " has no config.yaml");
}

}  // namespace reliability_eval_cli_test
