// `qfae report`: rebuilds the HTML page of a results folder from the files already in it.
#include "qfae/report/report.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "qfae/cli/common.h"

namespace qfae::cli {

Command add_report_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "report",
      "Rebuild report.html of a results folder from its files (results written before pages\n"
      "existed, or after deleting overlays):\n"
      "  qfae report runs/demo/latest/eval/test-last   an eval folder (metrics.json, scores.csv)\n"
      "  qfae report runs/demo/latest                  a run folder (metrics.jsonl), with the\n"
      "                                                pages of its eval/ folders\n"
      "  qfae report runs/sweep-brats/summary          a summary folder (summary.csv)\n"
      "  qfae report runs/demo/latest/infer/latest     an infer folder (scores.csv)\n"
      "The page is a view of those files: open it from disk, no server needed.");
  auto paths = std::make_shared<std::vector<std::string>>();
  sub->add_option("path", *paths, "Results folder(s)")->required()->check(CLI::ExistingDirectory);
  return {sub, [paths] {
            for (const auto& p : *paths) {
              for (const auto& page : report::write_report(p)) std::cout << page << "\n";
            }
            return 0;
          }};
}

}  // namespace qfae::cli
