// `qfae report PATH`: which page a folder gets (report/report.h).
#include "qfae/report/report.h"

#include <algorithm>
#include <filesystem>

#include "qfae/report/result_pages.h"
#include "qfae/report/run_page.h"
#include "qfae/report/summary_page.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae::report {

std::vector<std::string> write_report(const std::string& path) {
  const fs::path dir(path);
  if (!fs::is_directory(dir)) throw UserError("'" + path + "' is not a folder");
  if (fs::exists(dir / "metrics.json")) return {write_eval_page(path)};
  if (fs::exists(dir / "summary.csv")) return {write_summary_page(path)};
  if (fs::exists(dir / "metrics.jsonl")) {
    std::vector<std::string> pages;
    if (fs::is_directory(dir / "eval")) {
      std::vector<fs::path> evals;
      for (const auto& e : fs::directory_iterator(dir / "eval")) {
        if (fs::exists(e.path() / "metrics.json")) evals.push_back(e.path());
      }
      std::sort(evals.begin(), evals.end());
      for (const auto& e : evals) pages.push_back(write_eval_page(e.string()));
    }
    pages.push_back(write_run_page(path, /*running=*/false));
    return pages;
  }
  if (fs::exists(dir / "scores.csv")) return {write_infer_page(path)};
  throw UserError("'" + path +
                  "' holds none of metrics.json (an eval folder), summary.csv (a "
                  "summary folder), metrics.jsonl (a run folder) or scores.csv (an infer folder)");
}

}  // namespace qfae::report
