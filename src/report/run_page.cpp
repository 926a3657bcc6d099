// report.html of a training run folder (report/run_page.h).
#include "qfae/report/run_page.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "page_parts.h"
#include "qfae/report/html.h"
#include "qfae/report/svg_chart.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::report {
namespace {

double num_or_nan(const json& e, const char* key) {
  return e.contains(key) && e[key].is_number() ? e[key].get<double>() : std::nan("");
}

struct History {
  Series loss{"training loss", {}, {}}, lr{"learning rate", {}, {}};
  Series val_loss{"validation loss", {}, {}, true, true},
      val_auroc{"image AUROC", {}, {}, true, true};
  std::vector<double> val_steps, images_per_s;
  double threshold = std::nan("");  // the last validation's
  int64_t last_step = 0, last_epoch = 0;
  int64_t skipped_lines = 0;
};

History read_history(const fs::path& file) {
  std::istringstream in(read_text_file(file.string()));
  History h;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json e;
    try {
      e = json::parse(line);
    } catch (const json::parse_error&) {
      ++h.skipped_lines;  // a line being written
      continue;
    }
    if (!e.is_object() || !e.contains("event") || !e["event"].is_string()) {
      ++h.skipped_lines;
      continue;
    }
    const std::string event = e["event"].get<std::string>();
    const double step = num_or_nan(e, "step");
    if (event == "train") {
      h.loss.x.push_back(step);
      h.loss.y.push_back(num_or_nan(e, "loss"));
      h.lr.x.push_back(step);
      h.lr.y.push_back(num_or_nan(e, "lr"));
      h.images_per_s.push_back(num_or_nan(e, "images_per_s"));
      if (std::isfinite(step)) h.last_step = std::max(h.last_step, static_cast<int64_t>(step));
      const double epoch = num_or_nan(e, "epoch");
      if (std::isfinite(epoch)) h.last_epoch = std::max(h.last_epoch, static_cast<int64_t>(epoch));
    } else if (event == "val") {
      const double epoch = num_or_nan(e, "epoch");
      h.val_loss.x.push_back(epoch);
      h.val_loss.y.push_back(num_or_nan(e, "loss"));
      h.val_steps.push_back(step);
      if (e.contains("threshold")) h.threshold = num_or_nan(e, "threshold");
      if (e.contains("image_auroc")) {
        h.val_auroc.x.push_back(epoch);
        h.val_auroc.y.push_back(num_or_nan(e, "image_auroc"));
      }
    }
  }
  return h;
}

// At most `most` points: the mean of each run of consecutive points (a long run's loss curve
// stays a few kilobytes).
Series binned(const Series& s, size_t most) {
  if (s.x.size() <= most) return s;
  Series out = s;
  out.x.clear();
  out.y.clear();
  const size_t per = (s.x.size() + most - 1) / most;
  for (size_t i = 0; i < s.x.size(); i += per) {
    double sx = 0, sy = 0;
    size_t n = 0;
    for (size_t k = i; k < std::min(s.x.size(), i + per); ++k, ++n) {
      sx += s.x[k];
      sy += s.y[k];
    }
    out.x.push_back(sx / n);
    out.y.push_back(sy / n);
  }
  out.label += " (mean of " + std::to_string(per) + " steps)";
  return out;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

std::string write_run_page(const std::string& run_dir, bool running) {
  const fs::path dir(run_dir);
  const fs::path jsonl = dir / "metrics.jsonl";
  if (!fs::exists(jsonl))
    throw UserError("'" + jsonl.string() + "' does not exist: not a run folder");
  History h = read_history(jsonl);
  // The best checkpoint: the step it was saved at, and the validation that chose it.
  json best = nullptr;
  if (fs::exists(dir / "checkpoints/best/state.json")) {
    best = read_json_file((dir / "checkpoints/best/state.json").string());
  }
  const double best_step = best.is_object() ? num_or_nan(best, "step") : std::nan("");
  double best_epoch = std::nan("");
  for (size_t i = 0; i < h.val_steps.size(); ++i) {
    if (h.val_steps[i] == best_step) best_epoch = h.val_loss.x[i];
  }
  const bool has_best = std::isfinite(best_step);
  std::vector<Marker> step_marks, epoch_marks;
  if (has_best) {
    step_marks.push_back({best_step, "best"});
    epoch_marks.push_back({best_epoch, "best"});
  }
  std::string charts = "<section id=\"charts-section\"><h2>Training</h2><div class=\"charts\">";
  Chart loss{"loss-chart", "Training loss", "step", "loss", {binned(h.loss, 2000)}, step_marks};
  loss.log_y = true;
  charts += svg_chart(loss);
  charts += svg_chart(
      {"lr-chart", "Learning rate (OneCycle)", "step", "lr", {binned(h.lr, 2000)}, step_marks});
  if (!h.val_loss.x.empty()) {
    charts += svg_chart(
        {"val-loss-chart", "Validation loss", "epoch", "loss", {h.val_loss}, epoch_marks});
  }
  if (!h.val_auroc.x.empty()) {
    charts += svg_chart({"val-auroc-chart",
                         "Validation image AUROC",
                         "epoch",
                         "AUROC",
                         {h.val_auroc},
                         epoch_marks});
  }
  charts += "</div></section>\n";

  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(8);
  kv.emplace_back("state", running ? "<span class=\"status\">training: this page is rewritten at "
                                     "each validation and reloads itself every minute</span>"
                                   : "finished or stopped");
  kv.emplace_back("progress", "step " + std::to_string(h.last_step) + ", epoch " +
                                  std::to_string(h.last_epoch + 1));
  const size_t n = h.images_per_s.size();
  const std::vector<double> recent(
      h.images_per_s.begin() + static_cast<long>(n - std::min<size_t>(n, 100)),
      h.images_per_s.end());
  kv.emplace_back("speed", number(median(recent), 1) + " images/s (median of the last " +
                               std::to_string(recent.size()) + " steps)");
  if (has_best) {
    kv.emplace_back("best checkpoint", "checkpoints/best: step " + number(best_step, 0) +
                                           ", validation loss " +
                                           number(num_or_nan(best, "best_val_loss"), 5));
  }
  if (std::isfinite(h.threshold)) {
    kv.emplace_back("threshold",
                    number(h.threshold, 6) + " (the last validation's, from its normal images)");
  }
  if (h.skipped_lines > 0) {
    kv.emplace_back("note", std::to_string(h.skipped_lines) +
                                " line(s) of metrics.jsonl could not be read (a line being "
                                "written, or not a qfae event) and are left out");
  }
  std::vector<std::string> pages;  // the eval pages inside the run, by name
  std::error_code ec;
  for (fs::directory_iterator it(dir / "eval", ec), end; !ec && it != end; it.increment(ec)) {
    if (fs::exists(it->path() / "report.html")) {
      pages.push_back("eval/" + it->path().filename().string() + "/report.html");
    }
  }
  std::sort(pages.begin(), pages.end());
  std::string evals;
  for (const auto& rel : pages) {
    evals += "<li><a href=\"" + escape(relative_href(rel)) + "\">" + escape(rel) + "</a></li>";
  }
  if (!evals.empty()) kv.emplace_back("evaluations", "<ul>" + evals + "</ul>");
  std::string run = "<section id=\"run-section\"><h2>Run</h2>" + key_values(kv);
  run += config_block(run_dir);
  run += "</section>\n";
  Page page;
  ec.clear();
  fs::path canon = fs::weakly_canonical(fs::absolute(dir), ec);  // "latest" is a link
  if (ec) canon = fs::absolute(dir).lexically_normal();
  page.title =
      "qfae train: " + canon.parent_path().filename().string() + "/" + canon.filename().string();
  page.subtitle = escape(canon.string());
  page.body = run + charts;
  page.refresh_s = running ? 60 : 0;
  return write_page(run_dir, page);
}

}  // namespace qfae::report
