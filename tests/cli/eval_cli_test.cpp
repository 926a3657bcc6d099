// The real binary's eval and infer subcommands on tiny trained runs: every output written, the
// numbers consistent with independent recomputations, batch summaries, reproducibility, and bad
// input (a corrupt image, a one-class split, mismatched flags) handled without a crash.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "qfae/io/image.h"
#include "qfae/util/cpu_features.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::tiny_sets;

namespace {

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

size_t count_png(const fs::path& dir, const std::string& suffix = ".png") {
  size_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    n += e.is_regular_file() && name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return n;
}

// AUROC by counting pairs (Mann-Whitney), independent of qfae::metrics.
double pairwise_auroc(const std::vector<double>& s, const std::vector<int>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[i] == 1 && y[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
      }
    }
  }
  return wins / pairs;
}

// Three tiny runs trained once for the whole suite: seeds 1 and 2 (a sweep) and seed 1 again.
class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto data = dir_->path() / "data";
    qfae::test::tiny_config(data);  // writes the dataset
    const std::vector<std::pair<std::string, int>> runs = {
        {"tiny-seed1", 1}, {"tiny-seed2", 2}, {"again", 1}};
    for (const auto& [name, seed] : runs) {
      const auto r = run_qfae("train -q --seed " + std::to_string(seed) + " -o '" +
                              (dir_->path() / "runs").string() + "'" +
                              tiny_sets(data, {"name=" + name}));
      ASSERT_EQ(r.code, 0) << r.err;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path run(const std::string& name) { return dir_->path() / "runs" / name / "latest"; }
  static fs::path data() { return dir_->path() / "data"; }
  static TempDir* dir_;
};
TempDir* EvalCli::dir_ = nullptr;

TEST_F(EvalCli, WritesEveryOutputAndItsNumbersAgreeWithTheScores) {
  TempDir out;
  const auto r = run_qfae("eval --checkpoint '" + run("tiny-seed1").string() + "' -o '" +
                          out.path().string() + "' --set eval.save_raw_maps=true");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("image AUROC"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pixel AUROC"), std::string::npos) << r.out;

  const auto m = json::parse(read_text(out.path() / "metrics.json"));
  EXPECT_EQ(m["qfae_version"], QFAE_VERSION);
  EXPECT_EQ(m["config_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(m["precision"]["eval"], "fp32");  // the default, and all a CPU runs
  EXPECT_EQ(m["precision"]["frozen_weights"], "fp32");
  EXPECT_NE(m["checkpoint"].get<std::string>().find("checkpoints/last"), std::string::npos);
  EXPECT_EQ(m["dataset"]["images"], 8);
  EXPECT_EQ(m["dataset"]["anomalous"], 4);
  for (const char* k : {"auroc", "ap", "f1_max"}) {
    EXPECT_TRUE(m["image"][k].is_number()) << k;
  }
  ASSERT_TRUE(m["image"]["auroc_ci95"].is_array());
  EXPECT_LE(m["image"]["auroc_ci95"][0].get<double>(), m["image"]["auroc"].get<double>());
  EXPECT_GE(m["image"]["auroc_ci95"][1].get<double>(), m["image"]["auroc"].get<double>());
  for (const char* k : {"auroc", "ap", "best_dice", "per_image_dice", "aupro"}) {
    ASSERT_TRUE(m["pixel"][k].is_number()) << k;
    EXPECT_GE(m["pixel"][k].get<double>(), 0.0) << k;
    EXPECT_LE(m["pixel"][k].get<double>(), 1.0) << k;
  }
  EXPECT_TRUE(m["decisions"].is_object()) << "the checkpoint's calibrated threshold is applied";

  // scores.csv: one row per image; image AUROC recomputed by counting pairs.
  const auto rows = read_csv(out.path() / "scores.csv");
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "label", "score", "dice", "anomalous",
                                                "overlay"}));
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_TRUE(fs::is_regular_file(out.path() / rows[i][5])) << "overlay of row " << i;
  }
  std::vector<double> s;
  std::vector<int> y;
  double dice_sum = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    y.push_back(std::stoi(rows[i][1]));
    s.push_back(std::stod(rows[i][2]));
    if (y.back()) dice_sum += std::stod(rows[i][3]);
    else EXPECT_EQ(rows[i][3], "") << "normal images have no Dice";
  }
  EXPECT_NEAR(m["image"]["auroc"].get<double>(), pairwise_auroc(s, y), 1e-12);
  EXPECT_NEAR(m["pixel"]["per_image_dice"].get<double>(), dice_sum / 4, 1e-5);

  // curves.json: the image ROC worked out here from the scores (8 images, so no point is thinned
  // away): (0, 0), then (FP / 4, TP / 4) after each distinct score, highest first.
  const auto curves = json::parse(read_text(out.path() / "curves.json"));
  std::vector<size_t> order(s.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  std::vector<double> fpr = {0}, tpr = {0};
  double tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    (y[order[k]] ? tp : fp) += 1;
    if (k + 1 < order.size() && s[order[k + 1]] == s[order[k]]) continue;  // ties: one point
    fpr.push_back(fp / 4);
    tpr.push_back(tp / 4);
  }
  EXPECT_EQ(curves["image"]["roc"]["fpr"].get<std::vector<double>>(), fpr);
  EXPECT_EQ(curves["image"]["roc"]["tpr"].get<std::vector<double>>(), tpr);
  EXPECT_TRUE(curves["pixel"].is_object());
  // The page and the resolved config beside the results.
  EXPECT_TRUE(fs::is_regular_file(out.path() / "report.html"));
  EXPECT_TRUE(fs::is_regular_file(out.path() / "config.yaml"));
  EXPECT_EQ(m["seed"], 1);

  // Figures: an overlay per image, raw 16-bit maps, curves.
  EXPECT_EQ(count_png(out.path() / "maps" / "normal"), 8u);  // 4 overlays + 4 raw
  EXPECT_EQ(count_png(out.path() / "maps" / "anomalous", "_raw.png"), 4u);
  EXPECT_TRUE(fs::is_regular_file(out.path() / "roc.png"));
  EXPECT_TRUE(fs::is_regular_file(out.path() / "pr.png"));
  EXPECT_FALSE(fs::exists(out.path() / ".maps.tmp")) << "the spill file is removed";
  const auto overlay = qfae::io::read_image(
      (out.path() / "maps" / "anomalous" / (fs::path(rows[5][0]).stem().string() + ".png"))
          .string());
  EXPECT_EQ(overlay.size(0), 3);
  EXPECT_GT(overlay.size(2), 3 * 256 - 1) << "three panels, enlarged for viewing";
}

TEST_F(EvalCli, DefaultFolderIsInsideTheRunAndTheThresholdIsTheValidationPercentile) {
  // The run's own eval folder, on the validation split (normal images only).
  const auto r = run_qfae("eval --split val --checkpoint '" + run("tiny-seed1").string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto dir = run("tiny-seed1") / "eval" / "val-last";
  const auto m = json::parse(read_text(dir / "metrics.json"));
  EXPECT_TRUE(m["image"]["auroc"].is_null()) << "one class: no AUROC";
  EXPECT_TRUE(m["pixel"].is_null());
  EXPECT_NE(m["notes"].dump().find("need normal and anomalous"), std::string::npos);
  EXPECT_NE(r.out.find("n/a"), std::string::npos);
  // The checkpoint's threshold is numpy's 99th percentile of these scores.
  std::vector<double> s;
  const auto rows = read_csv(dir / "scores.csv");
  for (size_t i = 1; i < rows.size(); ++i) s.push_back(std::stod(rows[i][2]));
  ASSERT_EQ(s.size(), 4u);
  std::sort(s.begin(), s.end());
  const double pos = 0.99 * 3;  // (n - 1) p
  const double want = s[2] + (pos - 2) * (s[3] - s[2]);
  const auto state =
      json::parse(read_text(run("tiny-seed1") / "checkpoints" / "last" / "state.json"));
  EXPECT_NEAR(state["threshold"].get<double>(), want, 1e-7 * std::abs(want));
  EXPECT_TRUE(state["map_scale"].is_number());
}

TEST_F(EvalCli, SeveralCheckpointsGiveOneSummaryWithMeanAndStd) {
  TempDir out;
  const auto r = run_qfae("eval -q --checkpoint '" + run("tiny-seed1").string() +
                          "' --checkpoint '" + run("tiny-seed2").string() + "' -o '" +
                          out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = json::parse(read_text(out.path() / "tiny-seed1-test-last" / "metrics.json"));
  const auto b = json::parse(read_text(out.path() / "tiny-seed2-test-last" / "metrics.json"));
  const double x = a["image"]["auroc"], y = b["image"]["auroc"];
  const auto md = read_text(out.path() / "summary.md");
  EXPECT_NE(md.find("tiny (mean ± std, n=2)"), std::string::npos) << md;
  const auto rows = read_csv(out.path() / "summary.csv");
  ASSERT_EQ(rows.size(), 5u);  // header, two runs, mean, std
  EXPECT_EQ(rows[3][0], "tiny mean");
  EXPECT_EQ(rows[3][4 + 0].empty(), false);
  EXPECT_NEAR(std::stod(rows[3][4]), (x + y) / 2, 1e-6);
  EXPECT_NEAR(std::stod(rows[4][4]), std::abs(x - y) / std::sqrt(2.0), 1e-6);
  EXPECT_NE(r.out.find("| tiny-seed2 |"), std::string::npos) << r.out;
}

TEST_F(EvalCli, TheSameSeedGivesTheSameNumbersOnCpu) {
  TempDir out;
  const auto r = run_qfae("eval -q --checkpoint '" + run("tiny-seed1").string() +
                          "' --checkpoint '" + run("again").string() + "' -o '" +
                          out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = json::parse(read_text(out.path() / "tiny-seed1-test-last" / "metrics.json"));
  const auto b = json::parse(read_text(out.path() / "again-test-last" / "metrics.json"));
  EXPECT_EQ(a["image"], b["image"]);
  EXPECT_EQ(a["pixel"], b["pixel"]);
  EXPECT_EQ(read_text(out.path() / "tiny-seed1-test-last" / "scores.csv"),
            read_text(out.path() / "again-test-last" / "scores.csv"));
}

// eval.precision bf16 on a CPU without bf16 units (QFAE_CPU_BF16=0 hides them where they exist):
// fp32 results, and the note said once although two checkpoints are scored.
TEST_F(EvalCli, Bf16OnACpuWithoutUnitsSaysSoOnce) {
  TempDir out;
  const auto r = run_qfae("eval --set eval.precision=bf16 --checkpoint '" +
                              run("tiny-seed1").string() + "' --checkpoint '" +
                              run("tiny-seed2").string() + "' -o '" + out.path().string() + "'",
                          "", "QFAE_CPU_BF16=0");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string note = "eval.precision: bf16 needs a CPU with AMX or AVX512-BF16 units";
  const auto first = r.err.find(note);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(note, first + 1), std::string::npos) << "said twice:\n" << r.err;
  for (const auto* name : {"tiny-seed1-test-last", "tiny-seed2-test-last"}) {
    const auto m = json::parse(read_text(out.path() / name / "metrics.json"));
    EXPECT_EQ(m["precision"]["eval"], "fp32") << name;
    EXPECT_EQ(m["precision"]["frozen_weights"], "fp32") << name;
  }
}

// On a CPU with bf16 units eval.precision bf16 scores in bf16 and says which units, once.
TEST_F(EvalCli, Bf16OnACpuWithUnitsScoresInBf16) {
  if (!qfae::cpu_bf16_support().supported) GTEST_SKIP() << "this CPU has no bf16 units";
  TempDir out;
  const auto r = run_qfae("eval --set eval.precision=bf16 --checkpoint '" +
                          run("tiny-seed1").string() + "' --checkpoint '" +
                          run("tiny-seed2").string() + "' -o '" + out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string line =
      "eval.precision: bf16 on the CPU's " + qfae::cpu_bf16_support().units + " units";
  const auto first = r.err.find(line);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(line, first + 1), std::string::npos) << "said twice:\n" << r.err;
  const auto m = json::parse(read_text(out.path() / "tiny-seed1-test-last" / "metrics.json"));
  EXPECT_EQ(m["precision"]["eval"], "bf16");
  EXPECT_EQ(m["precision"]["frozen_weights"], "bf16");
  EXPECT_TRUE(m["image"]["auroc"].is_number());
}

TEST_F(EvalCli, BadRequestsAreOneLineErrors) {
  auto r = run_qfae("eval");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--checkpoint"), std::string::npos) << r.err;
  r = run_qfae("eval --checkpoint '" + run("tiny-seed1").string() + "' --checkpoint '" +
               run("tiny-seed2").string() + "' --config '" +
               (run("tiny-seed1") / "config.yaml").string() + "'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("one per checkpoint"), std::string::npos) << r.err;
  r = run_qfae("eval --checkpoint '" + data().string() + "'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("holds no checkpoint"), std::string::npos) << r.err;
}

TEST_F(EvalCli, InferScoresOneImageAndAFolderDespiteACorruptFile) {
  TempDir out;
  const auto png = data() / "test" / "Ungood" / "img";
  std::vector<fs::path> pngs;
  for (const auto& e : fs::directory_iterator(png)) pngs.push_back(e.path());
  ASSERT_FALSE(pngs.empty());
  auto r = run_qfae("infer --checkpoint '" + run("tiny-seed1").string() + "' -o '" +
                    (out.path() / "one").string() + "' '" + pngs.front().string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = read_csv(out.path() / "one" / "scores.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "score", "anomalous", "overlay", "error"}));
  EXPECT_GT(std::stod(rows[1][1]), 0.0);
  EXPECT_TRUE(fs::is_regular_file(out.path() / "one" / rows[1][3]));
  // infer.json records the run and its counts; the page and the config are beside it.
  const auto info = json::parse(read_text(out.path() / "one" / "infer.json"));
  EXPECT_EQ(info["scored"], 1);
  EXPECT_EQ(info["not_scored"], 0);
  EXPECT_NE(info["checkpoint"].get<std::string>().find("checkpoints/last"), std::string::npos);
  EXPECT_TRUE(info["threshold"].is_number()) << "the checkpoint's calibrated threshold";
  EXPECT_TRUE(fs::is_regular_file(out.path() / "one" / "report.html"));
  EXPECT_TRUE(fs::is_regular_file(out.path() / "one" / "config.yaml"));

  // A folder with the normal test images and a corrupt PNG among them.
  const auto folder = out.path() / "in";
  fs::create_directories(folder);
  for (const auto& e : fs::directory_iterator(data() / "test" / "good" / "img")) {
    fs::copy_file(e.path(), folder / e.path().filename());
  }
  std::ofstream(folder / "broken.png") << "\x89PNG\r\n\x1a\n not really a png";
  r = run_qfae("infer --checkpoint '" + run("tiny-seed1").string() + "' -o '" +
               (out.path() / "folder").string() + "' '" + folder.string() + "'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  rows = read_csv(out.path() / "folder" / "scores.csv");
  ASSERT_EQ(rows.size(), 6u);  // header + 4 images + the broken one
  int scored = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i][0].find("broken.png") != std::string::npos) {
      EXPECT_EQ(rows[i][1], "");
      EXPECT_FALSE(rows[i][4].empty());
    } else {
      scored += !rows[i][1].empty();
      EXPECT_TRUE(fs::is_regular_file(out.path() / "folder" / rows[i][3])) << rows[i][3];
    }
  }
  EXPECT_EQ(scored, 4);
  EXPECT_NE(r.out.find("4 of 5 images scored"), std::string::npos) << r.out;
}

// Overlays are named by the input's stem; a repeated stem gets its row's index, and a name taken
// by a real input (x_1.png beside two x.png) is never written twice.
TEST_F(EvalCli, InferOverlayNamesNeverCollide) {
  TempDir out;
  fs::path source;
  for (const auto& e : fs::directory_iterator(data() / "test" / "good" / "img")) source = e.path();
  ASSERT_FALSE(source.empty());
  for (const char* name : {"a/x.png", "b/x.png", "c/x_1.png"}) {
    fs::create_directories((out.path() / name).parent_path());
    fs::copy_file(source, out.path() / name);
  }
  const auto r = run_qfae("infer --checkpoint '" + run("tiny-seed1").string() + "' -o '" +
                          (out.path() / "o").string() + "' '" + (out.path() / "a/x.png").string() +
                          "' '" + (out.path() / "b/x.png").string() + "' '" +
                          (out.path() / "c/x_1.png").string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_csv(out.path() / "o" / "scores.csv");
  ASSERT_EQ(rows.size(), 4u);
  std::set<std::string> overlays;
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_TRUE(overlays.insert(rows[i][3]).second) << "two rows share " << rows[i][3];
    EXPECT_TRUE(fs::is_regular_file(out.path() / "o" / rows[i][3])) << rows[i][3];
  }
  EXPECT_EQ(overlays, (std::set<std::string>{"maps/x.png", "maps/x_1.png", "maps/x_1_2.png"}));
}

}  // namespace
