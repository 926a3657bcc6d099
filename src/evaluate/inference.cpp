// Inference over image files: load (errors kept per file), score, overlays, CSV.
#include "qfae/evaluate/inference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/anomaly/precision.h"
#include "qfae/config/loader.h"
#include "qfae/data/loader.h"
#include "qfae/io/dicom.h"
#include "qfae/io/image.h"
#include "qfae/io/overlay.h"
#include "qfae/report/result_pages.h"
#include "qfae/run/stop_signal.h"
#include "qfae/scoring/scoring_pass.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::evaluate {
namespace {

struct Row {
  std::string path;
  double score = std::nan("");
  std::string overlay;
  std::string error;
};

// The overlay caption and colour scale of one scored file.
io::OverlayOptions overlay_options(const Row& row, double vmax, bool flagged,
                                   const InferenceOptions& options) {
  io::OverlayOptions ov;
  ov.vmin = 0;
  ov.vmax = vmax;
  char caption[200];
  std::snprintf(caption, sizeof caption, "%s  score %.5g%s",
                fs::path(row.path).filename().c_str(), row.score,
                std::isfinite(options.threshold) ? (flagged ? "  ANOMALOUS" : "  normal") : "");
  ov.caption = caption;
  return ov;
}

// scores.csv: path,score[,anomalous],overlay,error, one row per input file in order.
std::string scores_csv(const std::vector<Row>& rows, double threshold) {
  const bool decide = std::isfinite(threshold);
  std::vector<std::string> paths;
  for (const auto& r : rows) paths.push_back(r.path);
  const auto dicom = io::dicom_columns(paths);
  std::ostringstream csv;
  csv << "path,score" << (decide ? ",anomalous" : "") << ",overlay,error" << dicom.header << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    char score[32] = "";
    if (std::isfinite(r.score)) std::snprintf(score, sizeof score, "%.9g", r.score);
    csv << csv_field(r.path) << "," << score;
    if (decide) csv << "," << (std::isfinite(r.score) ? (r.score >= threshold ? "1" : "0") : "");
    csv << "," << csv_field(r.overlay) << "," << csv_field(r.error) << dicom.rows[i] << "\n";
  }
  return csv.str();
}

}  // namespace

InferenceResult infer_images(anomaly::AnomalyModel& model, const std::vector<std::string>& files,
                             const InferenceOptions& options) {
  const auto& cfg = model.config();
  // Everything goes into a temporary sibling of out_dir, moved in place once complete.
  StagedDir staged(options.out_dir, "scores.csv");
  const fs::path out_dir(staged.path());
  anomaly::AnomalyScorer scorer(model, cfg.eval);
  InferenceResult result;
  std::vector<Row> rows(files.size());
  std::vector<data::Sample> samples(files.size());
  for (size_t i = 0; i < files.size(); ++i) rows[i].path = samples[i].image = files[i];
  data::LoaderOptions lo;
  lo.batch_size = cfg.eval.batch_size;
  lo.pin_memory = model.device().is_cuda();
  lo.skip_bad_images = true;  // a file that cannot be read keeps its row, with the reason
  scoring::ScoringPass pass(std::move(samples), cfg.data, lo, nullptr);
  scoring::PassOptions po;
  po.images = true;
  po.progress = options.progress ? "infer" : "";
  std::set<std::string> used;  // overlay names taken (a duplicate stem gets its row's index)
  if (options.save_maps) make_dirs((out_dir / "maps").string());
  const auto unread = pass.run(
      [&](const torch::Tensor& images) { return scorer.submit(images); }, po,
      [&](const scoring::ScoredRows& scored) {
        std::vector<io::OverlayOptions> figures(scored.rows.size());
        std::vector<int64_t> drawn;  // rows of `scored` that get an overlay
        for (size_t k = 0; k < scored.rows.size(); ++k) {
          const auto& s = scored.rows[k];
          auto& row = rows[s.position];
          if (!s.finite) {
            row.error = "the anomaly map is not finite (NaN or infinity); check the checkpoint "
                        "(did training diverge?) and the image";
            continue;
          }
          row.score = s.score;
          ++result.processed;
          const bool flagged = std::isfinite(options.threshold) && row.score >= options.threshold;
          result.flagged += flagged ? 1 : 0;
          if (!options.save_maps) continue;
          const std::string stem = fs::path(row.path).stem().string();
          std::string name = stem;
          // "a_3" for the second "a" may be a real input's name too: then "a_3_1", and so on.
          for (int n = 0; !used.insert(name).second; ++n) {
            name = stem + "_" + std::to_string(s.position) + (n > 0 ? "_" + std::to_string(n) : "");
          }
          row.overlay = "maps/" + name + ".png";
          const double vmax = std::isfinite(options.map_scale) ? options.map_scale : s.map_max;
          figures[k] = overlay_options(row, vmax, flagged, options);
          drawn.push_back(static_cast<int64_t>(k));
        }
        at::parallel_for(0, static_cast<int64_t>(drawn.size()), 1, [&](int64_t lo, int64_t hi) {
          for (int64_t j = lo; j < hi; ++j) {
            const int64_t k = drawn[j];
            io::write_overlay((out_dir / rows[scored.rows[k].position].overlay).string(),
                              scored.display[k].to(torch::kFloat32) / 255, scored.maps[k],
                              torch::Tensor(), figures[k]);
          }
        });
      });
  run::throw_if_stopped();
  for (const auto& u : unread) rows[u.position].error = first_line(u.reason);
  for (const auto& row : rows) {
    if (!row.error.empty()) result.failed.push_back(row.path + ": " + row.error);
  }
  for (const auto& problem : options.input_problems) {
    Row row;
    row.path = problem.input;
    row.error = problem.reason;
    rows.push_back(row);
  }
  write_file_atomic((out_dir / "scores.csv").string(), scores_csv(rows, options.threshold));
  const nlohmann::json info = {
      {"qfae_version", QFAE_VERSION}, {"checkpoint", options.checkpoint},
      {"threshold", std::isfinite(options.threshold) ? nlohmann::json(options.threshold)
                                                     : nlohmann::json(nullptr)},
      {"threshold_source", options.threshold_source}, {"device", model.device().str()},
      {"precision", anomaly::precision_name(scorer.precision())},
      {"inputs", rows.size()}, {"scored", result.processed}, {"flagged", result.flagged},
      {"not_scored", rows.size() - static_cast<size_t>(result.processed)}};
  write_file_atomic((out_dir / "infer.json").string(), info.dump(2) + "\n");
  write_file_atomic((out_dir / "config.yaml").string(), config::to_yaml(cfg));
  report::write_infer_page(out_dir.string());
  staged.commit();
  return result;
}

}  // namespace qfae::evaluate
