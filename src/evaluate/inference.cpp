// Inference over image files: load (errors kept per file), score, overlays, CSV.
#include "qfae/evaluate/inference.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

#include "qfae/data/pipeline.h"
#include "qfae/io/dicom.h"
#include "qfae/io/image.h"
#include "qfae/io/overlay.h"
#include "qfae/pipeline/anomaly_scorer.h"
#include "qfae/pipeline/one_in_flight.h"
#include "qfae/run/stop_signal.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::evaluate {
namespace {

struct Row {
  std::string path;
  double score = std::nan("");
  std::string overlay;
  std::string error;
};

// A batch of loaded files on its way through the scorer.
struct InferBatch {
  size_t end = 0;             // files[..end) are loaded once this batch is done
  std::vector<size_t> index;  // the files in the batch
  torch::Tensor images;       // (B, 3, H, W) normalised, on the CPU
  pipeline::PendingOutput out;
};

// Loads files[start, end) on all cores (at::parallel_for); names, counts and messages are settled
// in file order, so the output does not depend on the thread timing. A file that fails keeps its
// row with the error; the others are stacked into the batch (page-locked on CUDA, so the copy to
// the device is queued behind the previous batch instead of waiting for it).
InferBatch load_batch(const std::vector<std::string>& files, size_t start, size_t end,
                      const config::DataConfig& data, bool pinned, std::vector<Row>& rows,
                      InferenceResult& result) {
  std::vector<torch::Tensor> loaded(end - start);
  std::vector<std::string> errors(end - start);
  at::parallel_for(0, static_cast<int64_t>(end - start), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      try {
        data::Sample sample;
        sample.image = files[start + j];
        loaded[j] = data::load_sample(sample, data, false, 0).image;
      } catch (const std::exception& e) {
        errors[j] = first_line(e.what());
      }
    }
  });
  InferBatch batch;
  batch.end = end;
  std::vector<torch::Tensor> images;
  for (size_t i = start; i < end; ++i) {
    rows[i].path = files[i];
    if (loaded[i - start].defined()) {
      images.push_back(loaded[i - start]);
      batch.index.push_back(i);
    } else {
      rows[i].error = errors[i - start];
      result.failed.push_back(files[i] + ": " + rows[i].error);
      log("infer")->warn("{}: {} (skipped; the other images go on)", files[i], rows[i].error);
    }
  }
  if (!images.empty()) {
    const auto sizes = images.front().sizes();
    batch.images =
        torch::empty({static_cast<int64_t>(images.size()), sizes[0], sizes[1], sizes[2]},
                     images.front().options().pinned_memory(pinned));
    torch::stack_out(batch.images, images);
  }
  return batch;
}

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

InferenceResult infer_images(pipeline::AnomalyModel& model, const std::vector<std::string>& files,
                             const InferenceOptions& options) {
  const auto& cfg = model.config();
  // Everything goes into a temporary sibling of out_dir, moved in place once complete.
  StagedDir staged(options.out_dir, "scores.csv");
  const fs::path out_dir(staged.path());
  pipeline::AnomalyScorer scorer(model, cfg.eval);
  InferenceResult result;
  std::vector<Row> rows(files.size());
  std::set<std::string> used;  // overlay names taken (a duplicate stem gets its row's index)
  const bool tty = options.progress && isatty(STDERR_FILENO);
  const auto batch_size = static_cast<size_t>(std::max<int64_t>(1, cfg.eval.batch_size));
  // One batch queued on the device while the host draws the figures of the previous one.
  pipeline::OneInFlight<InferBatch> in_flight([&](InferBatch& f) {
    const auto out = f.out.get();
    const auto display = (f.images * cfg.data.std + cfg.data.mean).clamp(0, 1);
    std::vector<io::OverlayOptions> figures(f.index.size());
    for (size_t k = 0; k < f.index.size(); ++k) {
      auto& row = rows[f.index[k]];
      row.score = out.scores[static_cast<int64_t>(k)].item<double>();
      ++result.processed;
      const bool flagged = std::isfinite(options.threshold) && row.score >= options.threshold;
      result.flagged += flagged ? 1 : 0;
      if (!options.save_maps) continue;
      const std::string stem = fs::path(row.path).stem().string();
      std::string name = stem;
      // "a_3" for the second "a" may be a real input's name too: then "a_3_1", and so on.
      for (int n = 0; !used.insert(name).second; ++n) {
        name = stem + "_" + std::to_string(f.index[k]) + (n > 0 ? "_" + std::to_string(n) : "");
      }
      row.overlay = "maps/" + name + ".png";
      const double vmax = std::isfinite(options.map_scale)
                              ? options.map_scale
                              : out.maps[static_cast<int64_t>(k)].max().item<double>();
      figures[k] = overlay_options(row, vmax, flagged, options);
    }
    if (options.save_maps) {
      make_dirs((out_dir / "maps").string());
      at::parallel_for(0, static_cast<int64_t>(f.index.size()), 1, [&](int64_t lo, int64_t hi) {
        for (int64_t k = lo; k < hi; ++k) {
          io::write_overlay((out_dir / rows[f.index[k]].overlay).string(), display[k], out.maps[k],
                            torch::Tensor(), figures[k]);
        }
      });
    }
    if (tty) std::fprintf(stderr, "\r[infer] %zu/%zu images", f.end, files.size());
  });
  for (size_t start = 0; start < files.size(); start += batch_size) {
    run::throw_if_stopped();  // the batches before this one are done; the rest is dropped
    const size_t end = std::min(files.size(), start + batch_size);
    auto batch = load_batch(files, start, end, cfg.data, model.device().is_cuda(), rows, result);
    if (batch.index.empty()) {
      in_flight.flush();
      continue;
    }
    batch.out = scorer.submit(batch.images);
    in_flight.push(std::move(batch));
  }
  in_flight.flush();
  if (tty) std::fprintf(stderr, "\n");
  run::throw_if_stopped();
  for (const auto& problem : options.input_problems) {
    Row row;
    row.path = problem.input;
    row.error = problem.reason;
    rows.push_back(row);
  }
  write_file_atomic((out_dir / "scores.csv").string(), scores_csv(rows, options.threshold));
  staged.commit();
  return result;
}

}  // namespace qfae::evaluate
