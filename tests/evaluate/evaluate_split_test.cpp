// The evaluation engine's edge cases (a non-finite map, anomalous images without masks) on a
// tiny untrained AnomalyModel, and the report helpers against hand-worked values.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/data/dataset.h"
#include "qfae/evaluate/eval_report.h"
#include "qfae/evaluate/evaluate_split.h"
#include "qfae/io/image.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::read_text;
using qfae::test::TempDir;

namespace qfae::evaluate {
namespace {

TEST(Evaluator, NonFiniteMapIsAUserErrorNamingTheImage) {
  TempDir dir;
  const auto cfg = test::tiny_config(dir.path() / "data").config;
  anomaly::AnomalyModel model(cfg, torch::kCPU);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.autoencoder()->parameters()) p.fill_(std::nan(""));
  }
  const auto index = data::index_dataset(cfg.data, 0);
  EvaluationOptions o;
  o.out_dir = (dir.path() / "out").string();
  o.progress = false;
  try {
    evaluate_split(model, index.test, o);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(index.test[0].image), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
  }
}

TEST(Evaluator, AnomalousImagesWithoutMasksAreLeftOutOfPixelMetrics) {
  TempDir dir;
  auto cfg = test::tiny_config(dir.path() / "data", {"eval.save_maps=false",
                                                     "eval.bootstrap=0"})
                 .config;
  anomaly::AnomalyModel model(cfg, torch::kCPU);
  auto samples = data::index_dataset(cfg.data, 0).test;
  // Without any mask: image metrics only.
  auto no_masks = samples;
  for (auto& s : no_masks) s.mask.clear();
  EvaluationOptions o;
  o.out_dir = (dir.path() / "a").string();
  o.progress = false;
  auto r = evaluate_split(model, no_masks, o);
  EXPECT_TRUE(r.metrics["pixel"].is_null());
  EXPECT_TRUE(r.metrics["image"]["auroc"].is_number());
  EXPECT_FALSE(r.metrics["image"].contains("auroc_ci95")) << "bootstrap 0 is off";
  EXPECT_FALSE(fs::exists(dir.path() / "a" / "maps"));
  // One anomalous image loses its mask: the pixel metrics count the other three.
  auto some = samples;
  int dropped = 0;
  for (auto& s : some) {
    if (s.label == 1 && dropped == 0) {
      s.mask.clear();
      ++dropped;
    }
  }
  o.out_dir = (dir.path() / "b").string();
  r = evaluate_split(model, some, o);
  ASSERT_TRUE(r.metrics["pixel"].is_object());
  EXPECT_EQ(r.metrics["pixel"]["anomalous_images"], 3);
  EXPECT_NE(r.metrics["notes"].dump().find("1 anomalous images have no mask"), std::string::npos);
  int with_dice = 0;
  for (const auto& img : r.images) with_dice += std::isfinite(img.dice);
  EXPECT_EQ(with_dice, 3);
}

// The overlays' colour scale tops at eval.overlay_percentile of the pooled map values: checked
// against the raw 16-bit maps (resolution (hi - lo) / 65535, about one histogram bin).
TEST(Evaluator, OverlayColourScaleIsAPercentileOfThePooledMaps) {
  TempDir dir;
  for (const double pct : {50.0, 90.0, 100.0}) {
    auto cfg = test::tiny_config(dir.path() / "data",
                                 {"eval.save_raw_maps=true", "eval.bootstrap=0",
                                  "eval.overlay_percentile=" + std::to_string(pct)})
                   .config;
    anomaly::AnomalyModel model(cfg, torch::kCPU);
    const auto samples = data::index_dataset(cfg.data, 0).test;
    EvaluationOptions o;
    o.out_dir = (dir.path() / ("p" + std::to_string(static_cast<int>(pct)))).string();
    o.progress = false;
    const auto r = evaluate_split(model, samples, o);
    const double lo = r.metrics["pixel"]["score_range"][0],
                 hi = r.metrics["pixel"]["score_range"][1];
    const double vmin = r.metrics["overlays"]["colour_scale"][0];
    const double vmax = r.metrics["overlays"]["colour_scale"][1];
    EXPECT_DOUBLE_EQ(vmin, lo);
    if (pct == 100.0) {
      EXPECT_DOUBLE_EQ(vmax, hi);
      continue;
    }
    std::vector<torch::Tensor> maps;
    for (const auto& f : fs::directory_iterator(fs::path(o.out_dir) / "maps" / "normal")) {
      if (f.path().string().find("_raw.png") != std::string::npos) {
        maps.push_back(io::read_image(f.path().string()).flatten());
      }
    }
    for (const auto& f : fs::directory_iterator(fs::path(o.out_dir) / "maps" / "anomalous")) {
      if (f.path().string().find("_raw.png") != std::string::npos) {
        maps.push_back(io::read_image(f.path().string()).flatten());
      }
    }
    ASSERT_EQ(maps.size(), samples.size());
    const auto values = torch::cat(maps).to(torch::kFloat64) * (hi - lo) + lo;
    const double step = 2 * (hi - lo) / 65535;
    const double at_or_below = (values <= vmax + step).to(torch::kFloat64).mean().item<double>();
    const double below = (values < vmax - step).to(torch::kFloat64).mean().item<double>();
    EXPECT_GE(at_or_below, pct / 100) << pct;
    EXPECT_LT(below, pct / 100) << pct;
    EXPECT_GT(vmax, lo);
    EXPECT_LT(vmax, hi);
  }
}

TEST(EvalReport, SummaryTablesHandWorked) {
  TempDir dir;
  auto run = [](const std::string& name, double auroc, double pixel_auroc) {
    return json{{"name", name},
                {"checkpoint", "/x/" + name},
                {"dataset", {{"split", "test"}, {"images", 10}}},
                {"image", {{"auroc", auroc}, {"ap", 0.5}, {"f1_max", nullptr}}},
                {"pixel", {{"auroc", pixel_auroc}}}};
  };
  // Seeds 1..3 of "brain": AUROC .90 .92 .97 -> mean .93, sample std sqrt(((.03)^2 + (.01)^2 +
  // (.04)^2) / 2) = sqrt(.0013) = .036056; "chest" alone gets no mean row.
  const std::vector<json> runs = {run("brain-seed1", .90, .8), run("brain-seed2", .92, .8),
                                  run("brain-seed3", .97, .8), run("chest", .7, .6)};
  const auto md = write_summary_tables(dir.path().string(), runs);
  EXPECT_NE(md.find("| **brain (mean ± std, n=3)** | test | | 0.9300 ± 0.0361 | 0.5000 ± 0.0000 |"
                    " |"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("chest (mean"), std::string::npos);
  const auto csv = read_text(dir.path() / "summary.csv");
  EXPECT_NE(csv.find("brain mean,test,,,0.930000,0.500000,,0.800000"), std::string::npos) << csv;
  EXPECT_NE(csv.find("brain std,test,,,0.036056,0.000000,,0.000000"), std::string::npos) << csv;
  EXPECT_EQ(run_group("brain-seed12"), "brain");
  EXPECT_EQ(run_group("seedless"), "seedless");
  EXPECT_EQ(run_group("a-seed1-b"), "a-seed1-b");
}

// A sweep averages only runs of one configuration: brain-seed3 was trained with another recipe,
// so the mean is of seeds 1 and 2 alone: (.90 + .92) / 2 = .91, std sqrt(2 * .01^2 / 1) = .014142.
TEST(EvalReport, SummaryAveragesOnlyRunsOfOneConfiguration) {
  TempDir dir;
  auto run = [](const std::string& name, double auroc, const std::string& recipe) {
    return json{{"name", name},
                {"checkpoint", "/x/" + name},
                {"recipe_sha256", recipe},
                {"dataset", {{"split", "test"}, {"images", 10}}},
                {"image", {{"auroc", auroc}}},
                {"pixel", nullptr}};
  };
  const std::string a(64, 'a'), b(64, 'b');
  const auto md = write_summary_tables(
      dir.path().string(),
      {run("brain-seed1", .90, a), run("brain-seed2", .92, a), run("brain-seed3", .97, b)});
  EXPECT_NE(md.find("| **brain [config aaaaaaaa] (mean ± std, n=2)** | test | | 0.9100 ± 0.0141 |"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("n=3"), std::string::npos) << md;
  EXPECT_EQ(md.find("[config bbbbbbbb] (mean"), std::string::npos) << "one run: no mean row\n"
                                                                   << md;
  EXPECT_NE(md.find("were trained with different configurations"), std::string::npos) << md;
  const auto csv = read_text(dir.path() / "summary.csv");
  EXPECT_NE(csv.find("brain [config aaaaaaaa] mean,test,,,0.910000"), std::string::npos) << csv;
}

}  // namespace
}  // namespace qfae::evaluate
