// report.html of a batch evaluation or sweep summary folder (summary.csv, and each run's results
// folder inside it): one row per run (dataset, seed, checkpoint) linking to that run's page, the
// mean ± std rows of summary.csv, and one small chart per metric across seeds.
#pragma once
#include <string>

namespace qfae::report {

// Writes <dir>/report.html (atomically) and returns its path; UserError naming summary.csv when
// it is missing or malformed.
std::string write_summary_page(const std::string& dir);

// The group a run belongs to in the summary tables (its mean ± std row): its name without a
// trailing "-seed<N>".
std::string run_group(const std::string& name);

}  // namespace qfae::report
