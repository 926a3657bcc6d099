// qfae eval and infer outputs are whole and distinct ("nothing lost, nothing silent"): several
// runs of one config get their own folders, a re-run or a stop signal never leaves a mixture,
// CSV fields read back per RFC 4180, a full disk is a one-line error with nothing half-written,
// and keys fixed by training cannot be changed at eval or infer time.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include "../support/csv_rfc4180.h"
#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "qfae/cli/common.h"
#include "qfae/data/synthetic.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::parse_csv_rfc4180;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::tiny_sets;

namespace reliability_eval_cli_test {

// One shell word for any text (single quotes; a quote inside becomes '\'').
std::string shq(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::vector<std::string>> csv_of(const fs::path& path) {
  return parse_csv_rfc4180(read_text(path));
}

// Every file under `dir` (relative path -> contents).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().lexically_relative(dir).string()] = read_text(e.path());
  }
  return out;
}

size_t overlays_in(const fs::path& dir) {
  size_t n = 0;
  if (!fs::exists(dir / "maps")) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "maps")) n += e.is_regular_file();
  return n;
}

// Siblings of `final` that a whole-or-absent write may leave behind (it must leave none).
std::vector<std::string> leftovers_beside(const fs::path& final) {
  std::vector<std::string> out;
  const std::string prefix = final.filename().string() + ".";
  for (const auto& e : fs::directory_iterator(final.parent_path())) {
    const auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

// Starts `qfae <args>` without waiting; stderr goes to `err`.
pid_t spawn_qfae(const std::string& args, const fs::path& err) {
  const std::string cmd = "exec " + shq(QFAE_BINARY) + " " + args + " >/dev/null 2>" +
                          shq(err.string()) + " </dev/null";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Sends `signal` to `pid` as soon as a "<final>.partial-*" folder appears (the output is being
// written), then returns the exit code; -1 when the process ended first or never started.
int signal_while_writing(pid_t pid, const fs::path& final, int signal) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  const std::string prefix = final.filename().string() + ".partial-";
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return -1;  // finished before the signal
    bool writing = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(final.parent_path(), ec)) {
      writing = writing || e.path().filename().string().rfind(prefix, 0) == 0;
    }
    if (writing) {
      ::kill(pid, signal);
      ::waitpid(pid, &status, 0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// Two runs of one config (both named "demo", seeds 1 and 2), the tiny data set (4 + 4 test
// images), a smaller one (2 + 2) and a larger one (120 + 120, slow enough to be interrupted).
class ReliabilityEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    qfae::test::tiny_config(data());
    qfae::data::write_synthetic_dataset(small().string(), 32, 4, 2, 2, 2, /*seed=*/11);
    qfae::data::write_synthetic_dataset(big().string(), 32, 4, 2, 120, 120, /*seed=*/13);
    for (int seed : {1, 2}) {
      const auto r = run_qfae("train -q --seed " + std::to_string(seed) + " -o " +
                              shq((dir_->path() / "runs").string()) +
                              tiny_sets(data(), {"name=demo"}));
      ASSERT_EQ(r.code, 0) << r.err;
    }
    for (const auto& e : fs::directory_iterator(dir_->path() / "runs" / "demo")) {
      if (!e.is_symlink()) runs_.push_back(e.path());
    }
    std::sort(runs_.begin(), runs_.end());
    ASSERT_EQ(runs_.size(), 2u);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
    runs_.clear();
  }
  static fs::path data() { return dir_->path() / "data"; }
  static fs::path small() { return dir_->path() / "small"; }
  static fs::path big() { return dir_->path() / "big"; }
  static const fs::path& run(size_t i) { return runs_.at(i); }
  static TempDir* dir_;
  static std::vector<fs::path> runs_;
};
TempDir* ReliabilityEval::dir_ = nullptr;
std::vector<fs::path> ReliabilityEval::runs_;

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

TEST_F(ReliabilityEval, CsvFieldsWithCommasQuotesAndNewlinesReadBack) {
  TempDir dir;
  // A copy of the data whose first normal test image is renamed.
  const auto odd = dir.path() / "odd";
  fs::copy(data(), odd, fs::copy_options::recursive);
  const auto folder = odd / "test" / "good" / "img";
  std::vector<fs::path> pngs;
  for (const auto& e : fs::directory_iterator(folder)) pngs.push_back(e.path());
  std::sort(pngs.begin(), pngs.end());
  const std::string name = "scan, left \"L2\"\nslice.png";
  const auto renamed = folder / name;
  fs::rename(pngs.front(), renamed);

  // eval: scores.csv
  auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " +
                    shq((dir.path() / "eval").string()) + " --set data.root=" + shq(odd.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = csv_of(dir.path() / "eval" / "scores.csv");
  ASSERT_EQ(rows.size(), 9u);
  int found = 0;
  for (const auto& row : rows) {
    EXPECT_EQ(row.size(), rows[0].size());
    found += fs::path(row[0]).filename() == name;
  }
  EXPECT_EQ(found, 1);

  // infer: path and overlay columns, and the overlay is where the CSV says.
  r = run_qfae("infer -q --checkpoint " + shq(run(0).string()) + " -o " +
               shq((dir.path() / "infer").string()) + " " + shq(renamed.string()) + " " +
               shq(pngs.back().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  rows = csv_of(dir.path() / "infer" / "scores.csv");
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(rows[0], (std::vector<std::string>{"path", "score", "anomalous", "overlay", "error"}));
  EXPECT_EQ(rows[1][0], renamed.string());
  EXPECT_EQ(rows[1][3], "maps/scan, left \"L2\"\nslice.png");
  EXPECT_TRUE(fs::is_regular_file(dir.path() / "infer" / rows[1][3]));
  EXPECT_EQ(rows[2][0], pngs.back().string());

  // summary.csv: checkpoints under a folder whose name has a comma and a quote.
  const auto copied = dir.path() / "runs, \"copied\"" / "demo-copy";
  fs::create_directories(copied.parent_path());
  fs::copy(run(0), copied, fs::copy_options::recursive);
  r = run_qfae("eval -q --checkpoint " + shq(copied.string()) + " --checkpoint " +
               shq(run(1).string()) + " -o " + shq((dir.path() / "summary").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  rows = csv_of(dir.path() / "summary" / "summary.csv");
  ASSERT_GE(rows.size(), 3u);
  EXPECT_EQ(rows[1][3], (copied / "checkpoints" / "last").string());
  EXPECT_EQ(rows[1].back(), "demo-demo-copy-test-last");
  for (const auto& row : rows) EXPECT_EQ(row.size(), rows[0].size());
}

// `qfae <args>` with file writes limited to `kib` KiB and SIGXFSZ ignored, so a write past the
// limit fails with EFBIG as on a full disk.
qfae::test::RunResult run_with_file_limit(int kib, const std::string& args) {
  TempDir io;
  const std::string script = "trap '' XFSZ; ulimit -f " + std::to_string(kib) + "; exec " +
                             shq(QFAE_BINARY) + " " + args;
  const std::string cmd = "bash -c " + shq(script) + " >" + shq((io.path() / "out").string()) +
                          " 2>" + shq((io.path() / "err").string()) + " </dev/null";
  const int status = std::system(cmd.c_str());
  qfae::test::RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(io.path() / "out");
  r.err = read_text(io.path() / "err");
  return r;
}

// One line "qfae: error: cannot ..." naming a file inside `path` whose name holds `file`, and
// no crash.
void expect_one_line_error(const qfae::test::RunResult& r, const fs::path& path,
                           const std::string& file, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << "\n" << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << what << "\n" << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << what << "\n" << r.err;
  const auto at = r.err.find("qfae: error: ");
  ASSERT_NE(at, std::string::npos) << what << "\n" << r.err;
  const auto line = r.err.substr(at, r.err.find('\n', at) - at);
  EXPECT_NE(line.find(path.string()), std::string::npos) << what << ": " << line;
  EXPECT_NE(line.find("cannot"), std::string::npos) << what << ": " << line;
  EXPECT_NE(line.find(file), std::string::npos) << what << ": " << line;
}

TEST_F(ReliabilityEval, AFullDiskIsAOneLineErrorAndLeavesNoPartialFolder) {
  TempDir dir;
  const auto out = dir.path() / "out";
  // An earlier complete result, which every failed attempt below must leave as it is.
  auto r = run_qfae("eval -q --checkpoint " + shq(run(0).string()) + " -o " + shq(out.string()) +
                    " --set data.root=" + shq(small().string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = snapshot(out);
  size_t largest_overlay = 0, spill = 4 * 32 * 32 * 8;  // 4 images, 8 bytes a pixel
  for (const auto& e : fs::recursive_directory_iterator(out / "maps")) {
    if (e.is_regular_file()) largest_overlay = std::max<size_t>(largest_overlay, e.file_size());
  }
  const size_t curves = std::max(fs::file_size(out / "roc.png"), fs::file_size(out / "pr.png"));
  ASSERT_LT(spill / 1024 + 1, largest_overlay / 1024) << "the limits below rely on this";
  ASSERT_LT(spill / 1024 + 1, curves / 1024) << "the limits below rely on this";
  const std::string eval = "eval -q --checkpoint " + shq(run(0).string()) + " -o " +
                           shq(out.string()) + " --set data.root=" + shq(small().string());
  // Each limit stops a different writer: the map spill file, an overlay PNG, a curve plot.
  const int spill_fits = static_cast<int>(spill / 1024 + 1);
  const std::vector<std::tuple<int, std::string, std::string>> faults = {
      {2, "", ".maps.tmp"},
      {spill_fits, "", "/maps/"},
      {spill_fits, " --set eval.save_maps=false", "roc.png"}};
  for (const auto& [kib, extra, file] : faults) {
    const std::string what = "ulimit -f " + std::to_string(kib) + extra;
    r = run_with_file_limit(kib, eval + extra);
    expect_one_line_error(r, out, file, what);
    EXPECT_EQ(snapshot(out), before) << what;
    EXPECT_TRUE(leftovers_beside(out).empty()) << what;
  }
  // infer: an overlay PNG, then (--no-maps) scores.csv itself, into a folder that did not exist.
  // Eight images under a long folder name make a scores.csv of more than 1 KiB.
  const auto images = dir.path() / std::string(200, 'x');
  fs::create_directories(images);
  for (const char* split : {"good", "Ungood"}) {
    for (const auto& e : fs::directory_iterator(data() / "test" / split / "img")) {
      fs::copy_file(e.path(), images / (std::string(split) + e.path().filename().string()));
    }
  }
  const auto fresh = dir.path() / "infer";
  for (const std::string extra : {"", " --no-maps"}) {
    r = run_with_file_limit(1, "infer -q --checkpoint " + shq(run(0).string()) + " -o " +
                                   shq(fresh.string()) + extra + " " + shq(images.string()));
    expect_one_line_error(r, fresh, extra.empty() ? "/maps/" : "scores.csv", "infer" + extra);
    EXPECT_FALSE(fs::exists(fresh)) << extra;
    EXPECT_TRUE(leftovers_beside(fresh).empty()) << extra;
  }
}

TEST_F(ReliabilityEval, KeysFixedByTrainingCannotChangeAtEvalOrInfer) {
  TempDir dir;
  const auto ckpt = shq(run(0).string());
  const auto image = shq((data() / "test" / "good" / "img").string());
  // eval: one architecture key by --set
  auto r = run_qfae("eval -q --checkpoint " + ckpt + " -o " + shq((dir.path() / "a").string()) +
                    " --set model.residual=true");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.residual: trained with false, given true (--set)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("fixed by training"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "a"));
  // eval: the input size (with the query count it implies) and a normalisation by a --config file
  const auto extra = dir.path() / "other.yaml";
  std::ofstream(extra) << "data:\n  std: 0.5\nbackbone:\n  taps: [-1, -2]\n";
  r = run_qfae("eval -q --checkpoint " + ckpt + " --config " + shq(extra.string()) +
               " --set data.image_size=64 --set model.queries=64");
  EXPECT_EQ(r.code, 2) << r.err;
  const std::vector<std::string> named = {
      "data.image_size: trained with 32, given 64 (--set)",
      "data.std: trained with 0.226, given 0.5 (" + extra.string() + ")",
      "backbone.taps: trained with [-1, -3], given [-1, -2]",
      "model.queries: trained with 16, given 64"};
  for (const auto& key : named) {
    EXPECT_NE(r.err.find(key), std::string::npos) << key << "\n" << r.err;
  }
  // Settings of the evaluation itself, and keys that do not shape the trained network, are free.
  r = run_qfae("eval -q --checkpoint " + ckpt + " -o " + shq((dir.path() / "b").string()) +
               " --set eval.smoothing_sigma=1 --set model.dropout=0.2 --set device=cpu"
               " --set threads=2 --set data.root=" + shq(small().string()));
  EXPECT_EQ(r.code, 0) << r.err;
  // batch: the changed run fails by name, the other is still evaluated
  r = run_qfae("eval -q --checkpoint " + ckpt + " --checkpoint " + shq(run(1).string()) +
               " --config " + shq(extra.string()) + " --config " +
               shq((run(1) / "config.yaml").string()) + " -o " +
               shq((dir.path() / "c").string()));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("data.std: trained with 0.226, given 0.5"), std::string::npos) << r.err;
  EXPECT_EQ(csv_of(dir.path() / "c" / "summary.csv").size(), 2u) << "header and the other run";
  // infer: the same check
  r = run_qfae("infer -q --checkpoint " + ckpt + " -o " + shq((dir.path() / "d").string()) +
               " --set model.residual=true " + image);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.residual: trained with false, given true"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "d"));
  r = run_qfae("infer -q --checkpoint " + ckpt + " -o " + shq((dir.path() / "e").string()) +
               " --set eval.smoothing_sigma=1 " + image);
  EXPECT_EQ(r.code, 0) << r.err;
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

}  // namespace reliability_eval_cli_test
