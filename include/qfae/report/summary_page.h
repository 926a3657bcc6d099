// report.html of a batch evaluation or sweep summary folder (summary.csv, and each run's results
// folder inside it): one row per run (dataset, seed, checkpoint) linking to that run's page, the
// mean ± std rows of summary.csv, and one small chart per metric across seeds.
#pragma once
#include <string>

namespace qfae::report {

// Writes <dir>/report.html (atomically) and returns its path; UserError naming summary.csv when
// it is missing or malformed.
std::string write_summary_page(const std::string& dir);

}  // namespace qfae::report
