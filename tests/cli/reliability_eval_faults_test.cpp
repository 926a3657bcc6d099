// qfae eval and infer on bad input and faults: file names with commas, quotes and newlines
// (CSV read back per RFC 4180), a full disk (a one-line error, nothing half-written), and keys
// fixed by training given at eval or infer time (refused by name).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>
#include <vector>

#include "../support/reliability_runs.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;

namespace reliability_eval_faults_test {

using namespace qfae::test::reliability;  // the ReliabilityEval fixture and its helpers

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

}  // namespace reliability_eval_faults_test
