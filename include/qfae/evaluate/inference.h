// `qfae infer`: anomaly maps and scores for image files, batch by batch; a file that
// cannot be read is reported by name and the others are still processed.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/data/listing.h"

namespace qfae::evaluate {

struct InferenceOptions {
  std::string out_dir;  // scores.csv and maps/ go here, whole or not at all (StagedDir)
  double threshold = std::numeric_limits<double>::quiet_NaN();  // NaN: no decisions
  double map_scale = std::numeric_limits<double>::quiet_NaN();  // overlay colour max; NaN: each
                                                                // overlay scaled to its own max
  bool save_maps = true;
  // What infer.json records of the run (with the device, precision, version and counts):
  std::string checkpoint;        // the checkpoint folder scored with
  std::string threshold_source;  // where the threshold came from, in words
  bool progress = true;
  // Inputs that gave no image (missing paths, empty or unreadable folders): a row each at the end
  // of scores.csv, with no score and the reason in the error column.
  std::vector<data::InputProblem> input_problems;
};

struct InferenceResult {
  int64_t processed = 0;
  int64_t flagged = 0;                      // score >= threshold
  std::vector<std::string> failed;          // "path: reason" (unreadable or not finite), in
                                            // input order
};

// Scores `files` with the test-time settings (AnomalyScorer) in batches of eval.batch_size and
// writes <out_dir>/scores.csv (path,score[,anomalous],overlay,error; one row per file, in order,
// then one per options.input_problems), infer.json (the run and its counts), config.yaml,
// report.html (report/result_pages.h)
// and maps/<stem>.png overlays, through the scoring pass (scoring/scoring_pass.h). Files that fail
// to load, and files whose map is not finite, keep a row with the error and no score. A file that
// cannot be written is a UserError naming it; a stop signal ends it after the current batch with
// StopRequested (run/stop_signal.h); either way out_dir is left as it was.
InferenceResult infer_images(anomaly::AnomalyModel& model, const std::vector<std::string>& files,
                             const InferenceOptions& options);

}  // namespace qfae::evaluate
