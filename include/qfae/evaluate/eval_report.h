// The evaluation's files and texts: scores.csv, metrics.json, roc.png / pr.png, the one-line
// summary, and the cross-run summary tables (Markdown and CSV) of batch evaluation and sweeps.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "qfae/evaluate/evaluate_split.h"
#include "qfae/metrics/pixel_curve_accumulator.h"
#include "qfae/report/summary_page.h"

namespace qfae::evaluate {

// path,label,score,dice[,anomalous],overlay with `anomalous` (0/1) only when the threshold is
// finite; `overlay` is overlays[i] (the figure's path in the folder, "" when none was drawn).
// The image scores and 0/1 labels of `rows`, in order.
struct ScoresAndLabels {
  std::vector<double> scores;
  std::vector<int> labels;
};
ScoresAndLabels scores_and_labels(const std::vector<ImageResult>& rows);

// Returns what metrics.json says of the DICOM files among the rows (null when there are none):
// {"images", "patients", "studies", "identifier_columns"}, the identifiers being in scores.csv.
nlohmann::json write_scores_csv(const std::string& path, const std::vector<ImageResult>& rows,
                                double threshold, const std::vector<std::string>& overlays);
void write_json(const std::string& path, const nlohmann::json& j);

// roc.png and pr.png in `dir`: the image-level curve, and the pooled pixel curve when `pixels`
// is given; curves.json holds the same curves' points as the report draws them (thinned,
// report/curve_points.h). Skipped (no file) when the images hold one class only.
void write_curves(const std::string& dir, const std::vector<ImageResult>& rows,
                  const metrics::PixelCurveAccumulator* pixels, const metrics::PixelMetrics& pm);

// "demo test: image AUROC 0.912 [0.85, 0.96] AP 0.90 F1 0.86 | pixel AUROC ... | 48 images".
std::string summary_line(const nlohmann::json& metrics);

// The metric columns of the summary tables: (json pointer, column title).
const std::vector<std::pair<std::string, std::string>>& summary_columns();

// One row per metrics.json object (in order) and, for every group of two or more runs (runs
// whose names are equal once a trailing "-seed<N>" is dropped, of one split and one
// "recipe_sha256": the same configuration but the seed), a "mean ± std" row (sample
// standard deviation, n - 1; the CSV has a "<group> mean" and a "<group> std" row instead).
// The last column, "results", is each object's "results" value (its own results folder; set by
// qfae eval, not part of metrics.json). Writes summary.md and summary.csv in `dir`; returns the
// Markdown.
std::string write_summary_tables(const std::string& dir, const std::vector<nlohmann::json>& runs);

// The group a run belongs to: its name without a trailing "-seed<N>" (report/summary_page.h,
// which names the mean rows the same way on the summary page).
using report::run_group;

}  // namespace qfae::evaluate
