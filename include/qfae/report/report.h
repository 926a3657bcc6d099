// `qfae report PATH`: the page of whatever folder PATH is, found by the files in it.
#pragma once
#include <string>
#include <vector>

namespace qfae::report {

// Rebuilds report.html of an eval folder (metrics.json), an infer folder (scores.csv without
// metrics.json), a summary folder (summary.csv) or a run folder (metrics.jsonl; and then the pages
// of its eval/ folders too, first). Returns the pages written; UserError when PATH is none of
// these, naming what was looked for.
std::vector<std::string> write_report(const std::string& path);

}  // namespace qfae::report
