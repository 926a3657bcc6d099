// report.html of a `qfae eval` folder (metrics.json, scores.csv, curves.json, config.yaml, maps/)
// and of a `qfae infer` folder (infer.json, scores.csv, maps/): the run, the metrics with the
// decision threshold and its confusion counts, ROC / PR curves and the score distribution as SVG,
// a gallery of overlays sorted by score with filters, and every row of scores.csv in a sortable
// table. Everything on the page is read from those files.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace qfae::report {

// Writes <dir>/report.html (atomically) and returns its path. UserError naming the file when
// metrics.json / scores.csv is missing or malformed. Files written before curves.json and the
// scores.csv overlay column existed are read too: the image curves then come from scores.csv and
// the overlays are found by their figure names.
std::string write_eval_page(const std::string& dir);
std::string write_infer_page(const std::string& dir);

// An eval overlay's name under maps/ without ".png": "<normal|anomalous>/<stem>", with
// "_<index>" added when an earlier row (counted in `used`) took that name.
std::string figure_name(const std::string& image_path, int label, int64_t index,
                        std::map<std::string, int>& used);

}  // namespace qfae::report
