// The report pages written from hand-made folders: what each page takes from which file, folders
// written before the pages existed, and the errors that name the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/report/report.h"
#include "qfae/report/result_pages.h"
#include "qfae/report/run_page.h"
#include "qfae/report/summary_page.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::TempDir;
namespace report = qfae::report;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The page's embedded rows, as report.js reads them.
json page_data(const std::string& html) {
  const std::string open = "<script id=\"qfae-data\" type=\"application/json\">";
  const auto begin = html.find(open) + open.size();
  return json::parse(html.substr(begin, html.find("</script>", begin) - begin));
}

const char* const kMetrics = R"({
  "name": "demo", "checkpoint": "/r/checkpoints/last", "qfae_version": "0.1.0",
  "device": "cpu", "precision": {"eval": "fp32", "frozen_weights": "fp32"},
  "dataset": {"root": "/d", "layout": "folder", "split": "test", "images": 3, "normal": 2,
              "anomalous": 1},
  "image": {"auroc": 0.5, "ap": 0.5, "f1_max": 0.6667, "f1_threshold": 0.2},
  "pixel": null,
  "decisions": {"threshold": 0.25, "tp": 1, "fp": 1, "tn": 1, "fn": 0, "sensitivity": 1.0,
                "specificity": 0.5, "precision": 0.5},
  "timing": {"images_per_s": 10.0, "seconds": 1.0}, "notes": ["a <note>"]})";

}  // namespace

TEST(ReportPages, AnEvalFolderWrittenBeforeThePagesGetsItsOverlaysAndCurvesFromItsFiles) {
  // No curves.json and no overlay column: the image curves come from scores.csv, the overlays
  // from their figure names (the second "a" is "a_2", the row's index).
  TempDir dir;
  dir.write("metrics.json", kMetrics);
  dir.write("scores.csv",
            "path,label,score,dice,anomalous\n/d/x/a.png,0,0.1,,0\n"
            "/d/y/b.png,1,0.3,0.5,1\n/d/z/a.png,0,0.4,,1\n");
  dir.write("maps/normal/a.png", "");
  dir.write("maps/normal/a_2.png", "");
  const auto page = report::write_eval_page(dir.path().string());
  EXPECT_EQ(page, (dir.path() / "report.html").string());
  const std::string html = read(page);
  const json data = page_data(html);
  ASSERT_EQ(data["columns"].back(), "overlay");
  EXPECT_EQ(data["prefix"], "/d/");
  EXPECT_EQ(data["rows"][0], (json{"x/a.png", "0", "0.1", "", "0", "maps/normal/a.png"}));
  EXPECT_EQ(data["rows"][1].back(), "") << "b's overlay is not there";
  EXPECT_EQ(data["rows"][2].back(), "maps/normal/a_2.png");
  // ROC from the scores: 0.4 (normal), 0.3 (anomalous), 0.1 (normal) -> 4 points after (0, 0).
  EXPECT_NE(html.find("id=\"roc-curve\""), std::string::npos);
  // The numbers carry the metrics.json pointer they show.
  EXPECT_NE(html.find("data-pointer=\"/decisions/fp\">1<"), std::string::npos);
  EXPECT_NE(html.find("data-pointer=\"/image/auroc\">0.5000<"), std::string::npos);
  EXPECT_NE(html.find("a &lt;note&gt;"), std::string::npos) << "notes are text";
  EXPECT_NE(html.find("no anomalous image with a mask"), std::string::npos);
}

TEST(ReportPages, FiltersNeedTheDecisionColumn) {
  TempDir dir;
  dir.write("metrics.json", kMetrics);
  dir.write("scores.csv", "path,label,score,dice,overlay\n/d/a.png,0,0.1,,\n");
  const json data = page_data(read(report::write_eval_page(dir.path().string())));
  std::map<std::string, json> filters;
  for (const auto& f : data["filters"]) filters[f["id"]] = f;
  EXPECT_TRUE(filters["fp"].contains("disabled"));
  EXPECT_TRUE(filters["fn"].contains("disabled"));
  EXPECT_FALSE(filters["normal"].contains("disabled"));
  EXPECT_EQ(filters["fp"]["equals"], (json{{"label", "0"}, {"anomalous", "1"}}));
}

TEST(ReportPages, ErrorsNameTheFile) {
  TempDir dir;
  EXPECT_NE(qfae::test::user_error([&] {
              report::write_report(dir.path().string());
            }).find("metrics.json (an eval folder)"),
            std::string::npos);
  dir.write("metrics.json", "{not json");
  EXPECT_NE(qfae::test::user_error([&] {
              report::write_report(dir.path().string());
            }).find((dir.path() / "metrics.json").string() + "' is not valid JSON"),
            std::string::npos);
  dir.write("metrics.json", kMetrics);
  dir.write("scores.csv", "path,label,score\n/d/a.png,0\n");
  EXPECT_NE(qfae::test::user_error([&] {
              report::write_report(dir.path().string());
            }).find("row 2 has 2 fields; the header has 3"),
            std::string::npos);
}

TEST(ReportPages, TheRunPageLeavesOutALineBeingWrittenAndMarksTheBestCheckpoint) {
  TempDir dir;
  dir.write("metrics.jsonl",
            R"({"event":"train","step":1,"epoch":0,"loss":0.5,"lr":0.001,"images_per_s":10})"
            "\n"
            R"({"event":"train","step":2,"epoch":0,"loss":0.4,"lr":0.002,"images_per_s":12})"
            "\n"
            R"({"event":"val","step":2,"epoch":1,"loss":0.3,"threshold":0.2})"
            "\n"
            R"({"event":"train","step":3,"epoch":1,"loss":0.3,"lr":0.001,"images_per_s":14})"
            "\n"
            R"({"event":"val","step":3,"epoch":2,"loss":0.35,"image_auroc":0.7})"
            "\n"
            R"({"event":"train","st)");
  dir.write("checkpoints/best/state.json", R"({"step": 2, "best_val_loss": 0.3})");
  dir.write("config.yaml", "name: <demo>\n");
  const std::string html = read(report::write_run_page(dir.path().string(), /*running=*/true));
  EXPECT_NE(html.find("1 line(s) of metrics.jsonl could not be read"), std::string::npos);
  EXPECT_NE(html.find("http-equiv=\"refresh\""), std::string::npos) << "reloads while running";
  EXPECT_NE(html.find("step 2, validation loss 0.30000"), std::string::npos);
  EXPECT_NE(html.find("12.0 images/s"), std::string::npos) << "the median of 10, 12, 14";
  EXPECT_NE(html.find("name: &lt;demo&gt;"), std::string::npos);
  EXPECT_NE(html.find("id=\"val-auroc-chart\""), std::string::npos);
  EXPECT_EQ(read(report::write_run_page(dir.path().string(), false)).find("http-equiv"),
            std::string::npos);
}

TEST(ReportPages, TheSummaryPageLinksEachRunAndShowsTheMeanRows) {
  TempDir dir;
  dir.write("summary.csv",
            "run,split,images,checkpoint,image AUROC,results\n"
            "demo-seed1,test,3,/r1,0.600000,demo-seed1-test-last\n"
            "demo-seed2,test,3,/r2,0.800000,demo-seed2-test-last\n"
            "demo mean,test,,,0.700000,\n"
            "demo std,test,,,0.141421,\n");
  dir.write("demo-seed1-test-last/report.html", "");
  dir.write("demo-seed1-test-last/metrics.json", R"({"seed": 7, "dataset": {"root": "/data"}})");
  const std::string html = read(report::write_summary_page(dir.path().string()));
  EXPECT_NE(html.find("<a href=\"demo-seed1-test-last/report.html\">demo-seed1</a>"),
            std::string::npos);
  EXPECT_EQ(html.find("href=\"demo-seed2-test-last/report.html\""), std::string::npos)
      << "no page there, no link";
  EXPECT_NE(html.find(">7<"), std::string::npos) << "metrics.json's seed";
  EXPECT_NE(html.find(">/data<"), std::string::npos);
  EXPECT_NE(html.find("0.7000 ± 0.1414"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>demo</td><td>/data</td><td>test</td>"), std::string::npos)
      << "the mean row names its runs' dataset";
  EXPECT_NE(html.find("id=\"chart-4\""), std::string::npos) << "a chart for image AUROC";
}

TEST(ReportPages, AnInferFolderShowsItsCountsAndErrors) {
  TempDir dir;
  dir.write("scores.csv",
            "path,score,anomalous,overlay,error\n/i/a.png,0.5,1,maps/a.png,\n"
            "/i/b.png,,,,cannot read\n");
  dir.write("maps/a.png", "");
  dir.write("infer.json", R"({"checkpoint": "/r/last", "threshold": 0.4})");
  const auto pages = report::write_report(dir.path().string());
  ASSERT_EQ(pages.size(), 1u);
  const std::string html = read(pages[0]);
  EXPECT_NE(html.find("2 rows, 1 scored, 1 not scored, 1 flagged"), std::string::npos);
  const json data = page_data(html);
  EXPECT_EQ(data["filters"][3]["nonempty"], "error");
}

TEST(ReportPages, AMetricsJsonMissingItsBlocksStillGivesAPageAndABadCurvesJsonIsNamed) {
  // An older or hand-edited metrics.json: no dataset, pixel or decisions block; numbers missing
  // are shown as "–".
  TempDir dir;
  dir.write("metrics.json", R"({"dataset": "not an object", "image": {"auroc": null}})");
  dir.write("scores.csv", "path,label,score\n/d/a.png,0,0.1\n/d/b.png,1,x\n");
  const std::string html = read(report::write_eval_page(dir.path().string()));
  EXPECT_NE(html.find("data-pointer=\"/image/auroc\">–<"), std::string::npos);
  EXPECT_EQ(html.find("id=\"roc-curve\""), std::string::npos)
      << "one scored class: no curve from scores.csv";
  dir.write("curves.json", R"({"image": {"roc": {"fpr": [0, 1]}}})");
  EXPECT_NE(qfae::test::user_error([&] {
              report::write_eval_page(dir.path().string());
            }).find((dir.path() / "curves.json").string() + "': image.roc.fpr / tpr are not"),
            std::string::npos);
}
