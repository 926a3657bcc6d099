// report.html of eval and infer folders (report/result_pages.h).
#include "qfae/report/result_pages.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "page_parts.h"
#include "qfae/metrics/binary_curve.h"
#include "qfae/report/curve_points.h"
#include "qfae/report/html.h"
#include "qfae/report/svg_chart.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::report {
namespace {

double value_at(const json& j, const std::string& pointer) {
  const json::json_pointer p(pointer);
  if (!j.contains(p) || !j.at(p).is_number()) return std::nan("");
  return j.at(p).get<double>();
}

std::string text_at(const json& j, const std::string& pointer) {
  const json::json_pointer p(pointer);
  if (!j.contains(p) || j.at(p).is_null()) return "";
  return j.at(p).is_string() ? j.at(p).get<std::string>() : j.at(p).dump();
}

// j[key], or null when j is not an object or has no such key (a metrics.json written by an older
// qfae, or edited by hand, is still shown).
const json& child(const json& j, const char* key) {
  static const json missing;
  return j.is_object() && j.contains(key) ? j[key] : missing;
}

// A table cell holding metrics.json's number at `pointer` (data-pointer names it).
std::string value_cell(const json& m, const std::string& pointer, int decimals) {
  return "<td class=\"num\" data-pointer=\"" + escape(pointer) + "\">" +
         number(value_at(m, pointer), decimals) + "</td>";
}

struct MetricRow {
  const char* title;
  const char* pointer;
};

std::string metrics_section(const json& m) {
  std::string s = "<section id=\"metrics-section\"><h2>Metrics</h2><div class=\"charts\">";
  s += "<table id=\"metrics\"><thead><tr><th>metric</th><th class=\"num\">value</th><th>"
       "</th></tr></thead><tbody>";
  const MetricRow image[] = {{"image AUROC", "/image/auroc"},
                             {"image AP", "/image/ap"},
                             {"image F1-max", "/image/f1_max"}};
  for (const auto& r : image) {
    s += "<tr><td>" + std::string(r.title) + "</td>" + value_cell(m, r.pointer, 4) + "<td>";
    if (std::string(r.pointer) == "/image/auroc" &&
        m.contains(json::json_pointer("/image/auroc_ci95"))) {
      s += "95 % bootstrap interval <span data-pointer=\"/image/auroc_ci95/0\">" +
           number(value_at(m, "/image/auroc_ci95/0")) +
           "</span> – <span "
           "data-pointer=\"/image/auroc_ci95/1\">" +
           number(value_at(m, "/image/auroc_ci95/1")) + "</span>";
      const double used = value_at(m, "/image/bootstrap/used");
      if (std::isfinite(used)) s += " (" + number(used, 0) + " resamples)";
    }
    if (std::string(r.pointer) == "/image/f1_max" &&
        std::isfinite(value_at(m, "/image/f1_threshold"))) {
      s += "at score ≥ <span data-pointer=\"/image/f1_threshold\">" +
           number(value_at(m, "/image/f1_threshold"), 6) + "</span>";
    }
    s += "</td></tr>";
  }
  if (child(m, "pixel").is_object()) {
    s += "<tr><td>pixel AUROC</td>" + value_cell(m, "/pixel/auroc", 4) + "<td></td></tr>";
    s += "<tr><td>pixel AP</td>" + value_cell(m, "/pixel/ap", 4) + "<td></td></tr>";
    s += "<tr><td>best Dice</td>" + value_cell(m, "/pixel/best_dice", 4) +
         "<td>pooled, at map ≥ <span data-pointer=\"/pixel/best_dice_threshold\">" +
         number(value_at(m, "/pixel/best_dice_threshold"), 6) + "</span></td></tr>";
    s += "<tr><td>per-image Dice</td>" + value_cell(m, "/pixel/per_image_dice", 4) +
         "<td>mean over anomalous images with a mask</td></tr>";
    s += "<tr><td>AUPRO</td>" + value_cell(m, "/pixel/aupro", 4) +
         "<td>up to FPR <span data-pointer=\"/pixel/fpr_limit\">" +
         number(value_at(m, "/pixel/fpr_limit"), 2) + "</span></td></tr>";
  } else {
    s += "<tr><td>pixel metrics</td><td class=\"num\">–</td><td>no anomalous image with a "
         "mask</td></tr>";
  }
  s += "</tbody></table>";
  if (child(m, "decisions").is_object()) {
    s += "<table id=\"decisions\"><thead><tr><th colspan=\"3\">decision threshold: score ≥ "
         "<span data-pointer=\"/decisions/threshold\">" +
         number(value_at(m, "/decisions/threshold"), 6) +
         "</span></th></tr><tr><th></th><th class=\"num\">flagged</th><th class=\"num\">not "
         "flagged</th></tr></thead><tbody>";
    s += "<tr><td>anomalous</td>" + value_cell(m, "/decisions/tp", 0) +
         value_cell(m, "/decisions/fn", 0) + "</tr>";
    s += "<tr><td>normal</td>" + value_cell(m, "/decisions/fp", 0) +
         value_cell(m, "/decisions/tn", 0) + "</tr>";
    s += "<tr><td>sensitivity</td>" + value_cell(m, "/decisions/sensitivity", 4) + "<td></td></tr>";
    s += "<tr><td>specificity</td>" + value_cell(m, "/decisions/specificity", 4) + "<td></td></tr>";
    s += "<tr><td>precision</td>" + value_cell(m, "/decisions/precision", 4) + "<td></td></tr>";
    s += "</tbody></table>";
  } else {
    s += "<p>No decision threshold (the checkpoint had none, or --no-threshold).</p>";
  }
  return s + "</div></section>\n";
}

// curves.json, or (written before it existed) the image curves from scores.csv.
json read_curves(const fs::path& dir, const CsvTable& t) {
  if (fs::exists(dir / "curves.json")) return read_json_file((dir / "curves.json").string());
  const int l = t.column("label"), s = t.column("score");
  if (l < 0 || s < 0) return nullptr;
  std::vector<double> scores;
  std::vector<int> labels;
  for (const auto& r : t.rows) {
    const double score = cell_number(r[s]);
    if (!std::isfinite(score) || (r[l] != "0" && r[l] != "1")) {
      continue;  // a row that could not be scored
    }
    scores.push_back(score);
    labels.push_back(r[l] == "1");
  }
  const auto pos = std::count(labels.begin(), labels.end(), 1);
  if (pos == 0 || pos == static_cast<long>(labels.size())) return nullptr;
  return {{"image", curves_json(metrics::binary_curve(scores, labels))}};
}

// One curve of curves.json; UserError naming the file when it is not there or not numbers.
Series curve_series(const json& c, const char* kind, const char* xk, const char* yk,
                    const std::string& label, const fs::path& dir) {
  Series s;
  s.label = label;
  try {
    s.x = c.at(kind).at(xk).get<std::vector<double>>();
    s.y = c.at(kind).at(yk).get<std::vector<double>>();
  } catch (const json::exception&) {
    throw UserError("'" + (dir / "curves.json").string() + "': " + label + "." + kind + "." + xk +
                    " / " + yk + " are not two lists of numbers");
  }
  return s;
}

std::string curves_section(const json& m, const json& curves, const CsvTable& t,
                           const fs::path& dir) {
  std::string s = "<section id=\"curves-section\"><h2>Curves and scores</h2><div class=\"charts\">";
  if (curves.is_object() && curves.contains("image")) {
    Chart roc{"roc-curve", "ROC", "false positive rate", "true positive rate", {}, {}, true, true};
    roc.legend = LegendAt::kBottomRight;
    Chart pr{"pr-curve", "Precision-recall", "recall", "precision", {}, {}, true, false};
    pr.legend = LegendAt::kBottomLeft;
    for (const char* level : {"image", "pixel"}) {
      if (!curves.contains(level)) continue;
      const auto& c = curves.at(level);
      roc.series.push_back(curve_series(c, "roc", "fpr", "tpr", level, dir));
      pr.series.push_back(curve_series(c, "pr", "recall", "precision", level, dir));
    }
    s += svg_chart(roc) + svg_chart(pr);
  }
  Histogram h;
  h.id = "score-histogram";
  h.title = "Image scores";
  h.x_label = "score";
  if (t.column("label") >= 0) {
    h.groups = {{"normal", scores_where(t, "label", "0")},
                {"anomalous", scores_where(t, "label", "1")}};
  } else {
    h.groups = {{"images", scores_where(t, "", "")}};
  }
  const double threshold = value_at(m, "/decisions/threshold");
  if (std::isfinite(threshold)) h.markers.push_back({threshold, "threshold"});
  s += svg_histogram(h);
  s += "</div><p>Also as figures: <a href=\"roc.png\">roc.png</a>, <a href=\"pr.png\">pr.png</a>."
       " The curves' points are in curves.json.</p></section>\n";
  return s;
}

// The scores.csv column "overlay" for eval folders written before it existed: each row's figure
// name, when that file is there.
void add_overlay_column(CsvTable& t, const fs::path& dir) {
  const int p = t.column("path"), l = t.column("label");
  if (t.column("overlay") >= 0 || p < 0 || l < 0) return;
  t.columns.push_back("overlay");
  std::map<std::string, int> used;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    auto& r = t.rows[i];
    const std::string name =
        "maps/" + figure_name(r[p], r[l] == "1", static_cast<int64_t>(i), used) + ".png";
    r.push_back(fs::exists(dir / name) ? name : "");
  }
}

std::string run_section(const json& m, const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> kv;
  kv.emplace_back("checkpoint", escape(text_at(m, "/checkpoint")));
  kv.emplace_back("data", escape(text_at(m, "/dataset/root")) + " (layout " +
                              escape(text_at(m, "/dataset/layout")) + ")");
  kv.emplace_back("split", escape(text_at(m, "/dataset/split")) + ": " +
                               escape(text_at(m, "/dataset/images")) + " images, " +
                               escape(text_at(m, "/dataset/normal")) + " normal, " +
                               escape(text_at(m, "/dataset/anomalous")) + " anomalous");
  kv.emplace_back("device", escape(text_at(m, "/device")));
  kv.emplace_back("precision", "scoring " + escape(text_at(m, "/precision/eval")) +
                                   ", frozen weights " +
                                   escape(text_at(m, "/precision/frozen_weights")));
  kv.emplace_back("speed", number(value_at(m, "/timing/images_per_s"), 1) +
                               " images/s (scoring), " + number(value_at(m, "/timing/seconds"), 1) +
                               " s in all");
  kv.emplace_back("qfae", escape(text_at(m, "/qfae_version")));
  std::string s = "<section id=\"run-section\"><h2>Run</h2>" + key_values(kv);
  s += notes_list(child(m, "notes"));
  s += config_block(dir.string());
  s += collapsed_text("metrics.json", m.dump(2));
  return s + "</section>\n";
}

}  // namespace

std::string figure_name(const std::string& image_path, int label, int64_t index,
                        std::map<std::string, int>& used) {
  std::string name = (label ? "anomalous/" : "normal/") + fs::path(image_path).stem().string();
  if (used[name]++ > 0) name += "_" + std::to_string(index);
  return name;
}

std::string write_eval_page(const std::string& dir_text) {
  const fs::path dir(dir_text);
  const json m = read_json_file((dir / "metrics.json").string());
  CsvTable t = read_csv_table((dir / "scores.csv").string());
  add_overlay_column(t, dir);
  const bool decided = t.column("anomalous") >= 0;
  const std::string why = "no decision threshold: scores.csv has no 'anomalous' column";
  std::vector<Filter> filters = {
      {"all", "all, by score", {}, "", ""},
      {"fp", "false positives", {{"label", "0"}, {"anomalous", "1"}}, "", decided ? "" : why},
      {"fn", "false negatives", {{"label", "1"}, {"anomalous", "0"}}, "", decided ? "" : why},
      {"anomalous", "anomalous", {{"label", "1"}}, "", ""},
      {"normal", "normal", {{"label", "0"}}, "", ""}};
  Page page;
  page.title = "qfae eval: " + text_at(m, "/name") + " on " + text_at(m, "/dataset/split");
  page.subtitle =
      escape(text_at(m, "/dataset/images") + " images of " + text_at(m, "/dataset/root") +
             ", scored with " + text_at(m, "/checkpoint"));
  page.body = run_section(m, dir) + metrics_section(m) +
              curves_section(m, read_curves(dir, t), t, dir) +
              gallery_section("Overlays (input | anomaly map | overlay; mask outlined in green)") +
              table_section("Every image (scores.csv)");
  page.data = rows_data(t, filters);
  return write_page(dir.string(), page);
}

std::string write_infer_page(const std::string& dir_text) {
  const fs::path dir(dir_text);
  json info = fs::exists(dir / "infer.json") ? read_json_file((dir / "infer.json").string())
                                             : json::object();
  CsvTable t = read_csv_table((dir / "scores.csv").string());
  const bool decided = t.column("anomalous") >= 0;
  const std::string why = "no decision threshold: scores.csv has no 'anomalous' column";
  std::vector<Filter> filters = {
      {"all", "all, by score", {}, "", ""},
      {"flagged", "flagged", {{"anomalous", "1"}}, "", decided ? "" : why},
      {"not-flagged", "not flagged", {{"anomalous", "0"}}, "", decided ? "" : why},
      {"errors", "not scored", {}, "error", ""}};
  int64_t flagged = 0, errors = 0;
  const int a = t.column("anomalous"), e = t.column("error");
  for (const auto& r : t.rows) {
    flagged += a >= 0 && r[a] == "1";
    errors += e >= 0 && !r[e].empty();
  }
  std::vector<std::pair<std::string, std::string>> kv;
  kv.emplace_back("images", std::to_string(t.rows.size()) + " rows, " +
                                std::to_string(t.rows.size() - errors) + " scored, " +
                                std::to_string(errors) + " not scored" +
                                (decided ? ", " + std::to_string(flagged) + " flagged" : ""));
  for (const char* key :
       {"checkpoint", "threshold", "threshold_source", "device", "precision", "qfae_version"}) {
    if (info.contains(key)) kv.emplace_back(key, escape(text_at(info, std::string("/") + key)));
  }
  std::string run = "<section id=\"run-section\"><h2>Run</h2>" + key_values(kv);
  run += config_block(dir.string());
  run += "</section>\n";
  json m = {
      {"decisions", {{"threshold", info.contains("threshold") ? info["threshold"] : json()}}}};
  Page page;
  page.title = "qfae infer: " + dir.filename().string();
  page.subtitle = escape(text_at(info, "/checkpoint"));
  page.body = run + curves_section(m, nullptr, t, dir) + gallery_section("Overlays") +
              table_section("Every input (scores.csv)");
  page.data = rows_data(t, filters);
  return write_page(dir.string(), page);
}

}  // namespace qfae::report
