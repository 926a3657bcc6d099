// `qfae eval`: scores a split with a trained AnomalyModel and writes what people read:
// metrics.json, scores.csv, maps/ (overlays, optional 16-bit raw maps), roc.png and pr.png.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "qfae/anomaly/anomaly_model.h"
#include "qfae/config/config.h"
#include "qfae/data/dataset.h"
#include "qfae/dist/communicator.h"

namespace qfae::evaluate {

struct EvaluationOptions {
  std::string out_dir;     // written whole or not at all (StagedDir): an earlier result there is
                           // replaced only once this one is complete
  std::string checkpoint;  // recorded in metrics.json
  std::string split = "test";
  std::vector<std::string> dataset_notes;  // what indexing the dataset found (metrics.json)
  double threshold = std::numeric_limits<double>::quiet_NaN();  // NaN: no decisions
  double map_scale = std::numeric_limits<double>::quiet_NaN();  // overlay colour max; NaN (what
                                                                // qfae eval uses): the split's
                                                                // largest map value
  int64_t pixel_bins = 65536;  // histogram bins of the pooled pixel metrics
  bool progress = true;        // a progress line on the terminal
  // Data-parallel: the ranks score their share of the images and rank 0 gathers the scores,
  // maps, masks and display images and writes everything, as one process would. Null: alone.
  dist::Communicator* comm = nullptr;
};

struct ImageResult {
  std::string path;
  int label = 0;
  double score = 0;
  double dice = std::numeric_limits<double>::quiet_NaN();  // at the pooled best-Dice threshold
  bool has_mask = false;
};

struct EvaluationResult {
  nlohmann::json metrics;           // what metrics.json holds
  std::vector<ImageResult> images;  // what scores.csv holds, in sample order
  std::string summary;              // the one-line summary
};

// Two passes: (1) the scoring pass (scoring/scoring_pass.h) in batches of eval.batch_size, image
// scores kept, maps spilled to a temporary file in out_dir; (2) pooled pixel metrics over the spilled maps (a 65536-bin
// histogram over the observed range; exactness in pixel_curve_accumulator.h), per-image Dice,
// figures. Pixel metrics need at least one anomalous image with a mask; anomalous images without
// a mask are left out of them (counted in the notes). Image metrics need both classes; otherwise
// they are null with a note saying why. UserError names the image when a map is not finite, or
// the file that could not be written. A stop signal (run/stop_signal.h) ends it after the current
// batch with StopRequested. On any failure out_dir is left as it was.
// Data-parallel (options.comm): the scoring pass deals images out in rounds of eval.batch_size per
// rank, each rank's batch being the batch one process would score there; ranks other than 0
// return an empty result once the scoring pass is done.
EvaluationResult evaluate_split(anomaly::AnomalyModel& model,
                                const std::vector<data::Sample>& samples,
                                const EvaluationOptions& options);

}  // namespace qfae::evaluate
