// Evaluation outputs: CSV, JSON, curve figures, summary line and cross-run tables.
#include "qfae/evaluate/eval_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "qfae/io/curve_plot.h"
#include "qfae/io/dicom.h"
#include "qfae/metrics/binary_curve.h"
#include "qfae/report/curve_points.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::evaluate {
namespace {

std::string fmt(double v, const char* f = "%.4f") {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A Markdown table cell: '|' would end the cell.
std::string md_cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c == '\n' ? ' ' : c);
  return out;
}

double at(const json& j, const std::string& pointer) {
  const json::json_pointer p(pointer);
  if (!j.contains(p) || !j.at(p).is_number()) return std::nan("");
  return j.at(p).get<double>();
}

}  // namespace

json write_scores_csv(const std::string& path, const std::vector<ImageResult>& rows,
                      double threshold, const std::vector<std::string>& overlays) {
  const bool decide = std::isfinite(threshold);
  std::vector<std::string> paths;
  for (const auto& r : rows) paths.push_back(r.path);
  const auto dicom = io::dicom_columns(paths);
  std::ostringstream out;
  out << "path,label,score,dice" << (decide ? ",anomalous" : "") << ",overlay" << dicom.header
      << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out << csv_field(r.path) << "," << r.label << "," << fmt(r.score, "%.9g") << ","
        << fmt(r.dice, "%.6f");
    if (decide) out << "," << (r.score >= threshold ? 1 : 0);
    out << "," << (i < overlays.size() ? csv_field(overlays[i]) : "") << dicom.rows[i] << "\n";
  }
  write_file_atomic(path, out.str());
  if (dicom.images == 0) return nullptr;
  return {{"images", dicom.images}, {"patients", dicom.patients}, {"studies", dicom.studies},
          {"identifier_columns", {"patient_id", "study_uid", "sop_uid"}},
          {"identifiers_in", "scores.csv"}};
}

void write_json(const std::string& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

ScoresAndLabels scores_and_labels(const std::vector<ImageResult>& rows) {
  ScoresAndLabels out;
  for (const auto& r : rows) {
    out.scores.push_back(r.score);
    out.labels.push_back(r.label);
  }
  return out;
}

void write_curves(const std::string& dir, const std::vector<ImageResult>& rows,
                  const metrics::PixelCurveAccumulator* pixels, const metrics::PixelMetrics& pm) {
  const auto [scores, labels] = scores_and_labels(rows);
  const auto anomalous = std::count(labels.begin(), labels.end(), 1);
  if (anomalous == 0 || anomalous == static_cast<long>(labels.size())) return;
  const auto image = metrics::binary_curve(scores, labels);
  io::CurvePlot roc{"ROC", "false positive rate", "true positive rate", true, {}};
  io::CurvePlot pr{"Precision-recall", "recall", "precision", false, {}};
  const auto add = [](io::CurvePlot& plot, const std::string& label, report::CurvePoints p) {
    plot.series.push_back({label, std::move(p.x), std::move(p.y)});
  };
  add(roc, "image (AUROC " + fmt(metrics::auroc_from_curve(image), "%.3f") + ")",
      report::roc_points(image));
  add(pr, "image (AP " + fmt(metrics::average_precision_from_curve(image), "%.3f") + ")",
      report::pr_points(image));
  json points = {{"image", report::curves_json(image)},
                 {"resolution", report::kCurveResolution},
                 {"about", "ROC from (0, 0) and PR from (0, 1), then one point per threshold "
                           "(highest first); a point closer than `resolution` on both axes to "
                           "the last one kept is left out (the first and last are kept)"}};
  if (pixels) {
    const auto pixel = pixels->curve();
    add(roc, "pixel (AUROC " + fmt(pm.auroc, "%.3f") + ")", report::roc_points(pixel));
    add(pr, "pixel (AP " + fmt(pm.ap, "%.3f") + ")", report::pr_points(pixel));
    points["pixel"] = report::curves_json(pixel);
  }
  io::write_curve_plot((fs::path(dir) / "roc.png").string(), roc);
  io::write_curve_plot((fs::path(dir) / "pr.png").string(), pr);
  write_json((fs::path(dir) / "curves.json").string(), points);
}

std::string summary_line(const json& m) {
  std::string line = m.value("name", "") + " " + m["dataset"].value("split", "") + ":";
  const auto& img = m["image"];
  if (img.is_object() && img["auroc"].is_number()) {
    line += " image AUROC " + fmt(at(m, "/image/auroc"));
    if (img.contains("auroc_ci95")) {
      line += " [" + fmt(at(m, "/image/auroc_ci95/0"), "%.3f") + ", " +
              fmt(at(m, "/image/auroc_ci95/1"), "%.3f") + "]";
    }
    line += " AP " + fmt(at(m, "/image/ap")) + " F1 " + fmt(at(m, "/image/f1_max"));
  } else {
    line += " image metrics n/a (one class)";
  }
  if (m["pixel"].is_object()) {
    line += " | pixel AUROC " + fmt(at(m, "/pixel/auroc")) + " AP " + fmt(at(m, "/pixel/ap")) +
            " Dice " + fmt(at(m, "/pixel/best_dice")) + " AUPRO " + fmt(at(m, "/pixel/aupro"));
  }
  line += " | " + std::to_string(m["dataset"].value("images", 0)) + " images, " +
          fmt(at(m, "/timing/images_per_s"), "%.1f") + " img/s";
  return line;
}

const std::vector<std::pair<std::string, std::string>>& summary_columns() {
  static const std::vector<std::pair<std::string, std::string>> columns = {
      {"/image/auroc", "image AUROC"},   {"/image/ap", "image AP"},
      {"/image/f1_max", "image F1-max"}, {"/pixel/auroc", "pixel AUROC"},
      {"/pixel/ap", "pixel AP"},         {"/pixel/best_dice", "best Dice"},
      {"/pixel/per_image_dice", "per-image Dice"}, {"/pixel/aupro", "AUPRO"},
      {"/pixel/fpr_limit", "AUPRO FPR limit"}};  // eval.max_fpr, which may differ between runs
  return columns;
}

std::string write_summary_tables(const std::string& dir, const std::vector<json>& runs) {
  const auto& cols = summary_columns();
  std::ostringstream md, csv;
  md << "| run | split | images |";
  csv << "run,split,images,checkpoint";
  for (const auto& c : cols) {
    md << " " << c.second << " |";
    csv << "," << csv_field(c.second);
  }
  md << " results |\n|---|---|---:|";
  for (size_t i = 0; i < cols.size(); ++i) md << "---:|";
  md << "---|\n";
  csv << ",results\n";
  std::map<std::string, std::vector<const json*>> groups;
  std::vector<std::string> order;
  for (const auto& r : runs) {
    const std::string name = r.value("name", "");
    const std::string split = r["dataset"].value("split", "");
    const auto images = r["dataset"].value("images", 0);
    const std::string results = r.value("results", "");
    md << "| " << md_cell(name) << " | " << md_cell(split) << " | " << images << " |";
    csv << csv_field(name) << "," << csv_field(split) << "," << images << ","
        << csv_field(r.value("checkpoint", ""));
    for (const auto& c : cols) {
      md << " " << fmt(at(r, c.first)) << " |";
      csv << "," << fmt(at(r, c.first), "%.6f");
    }
    md << " " << md_cell(results) << " |\n";
    csv << "," << csv_field(results) << "\n";
    // Only runs of one configuration are averaged: the same name (but the seed), split and recipe.
    const auto g = run_group(name) + "\t" + split + "\t" + r.value("recipe_sha256", "");
    if (!groups.count(g)) order.push_back(g);
    groups[g].push_back(&r);
  }
  // Names (with split) that hold runs of several configurations: their groups say which one.
  std::map<std::string, int> recipes_of;
  for (const auto& g : order) ++recipes_of[g.substr(0, g.rfind('\t'))];
  std::vector<std::string> mixed;
  for (const auto& g : order) {
    const auto& members = groups[g];
    const auto tab = g.find('\t'), tab2 = g.rfind('\t');
    const std::string group = g.substr(0, tab), split_text = g.substr(tab + 1, tab2 - tab - 1);
    std::string label = group;
    if (recipes_of[g.substr(0, tab2)] > 1) {
      label += " [config " + g.substr(tab2 + 1, 8) + "]";
      if (std::find(mixed.begin(), mixed.end(), group) == mixed.end()) mixed.push_back(group);
    }
    if (members.size() < 2) continue;
    const std::string name = label + " (mean ± std, n=" + std::to_string(members.size()) + ")";
    const std::string split = csv_field(split_text);
    md << "| **" << md_cell(name) << "** | " << md_cell(split_text) << " | |";
    std::string csv_mean = csv_field(label + " mean") + "," + split + ",,";
    std::string csv_std = csv_field(label + " std") + "," + split + ",,";
    for (const auto& c : cols) {
      std::vector<double> v;
      for (const auto* r : members) {
        const double x = at(*r, c.first);
        if (std::isfinite(x)) v.push_back(x);
      }
      double mean = 0, var = 0;
      for (double x : v) mean += x;
      if (!v.empty()) mean /= static_cast<double>(v.size());
      for (double x : v) var += (x - mean) * (x - mean);
      const double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
      if (v.empty()) {
        md << " |";
        csv_mean += ",";
        csv_std += ",";
      } else {
        md << " " << fmt(mean) << " ± " << fmt(sd) << " |";
        csv_mean += "," + fmt(mean, "%.6f");
        csv_std += "," + fmt(sd, "%.6f");
      }
    }
    md << " |\n";
    csv << csv_mean << ",\n" << csv_std << ",\n";
  }
  for (const auto& group : mixed) {
    md << "\nRuns named " << md_cell(group) << "(-seedN) were trained with different "
       << "configurations (their metrics.json recipe_sha256 differ): each configuration is "
          "averaged on its own, marked [config <first digits of its recipe_sha256>].\n";
  }
  make_dirs(dir);
  write_file_atomic((fs::path(dir) / "summary.md").string(), md.str());
  write_file_atomic((fs::path(dir) / "summary.csv").string(), csv.str());
  return md.str();
}

}  // namespace qfae::evaluate
