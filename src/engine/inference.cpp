// Inference over image files: load (errors kept per file), score, overlays, CSV.
#include "qfae/engine/inference.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

#include "qfae/data/pipeline.h"
#include "qfae/engine/anomaly_scorer.h"
#include "qfae/engine/run_dir.h"
#include "qfae/io/image.h"
#include "qfae/io/overlay.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::engine {
namespace {

struct Row {
  std::string path;
  double score = std::nan("");
  std::string overlay;
  std::string error;
};

}  // namespace

InferenceResult infer_images(System& system, const std::vector<std::string>& files,
                             const InferenceOptions& options) {
  const auto& cfg = system.config();
  // Everything goes into a temporary sibling of out_dir, moved in place once complete.
  StagedDir staged(options.out_dir, "scores.csv");
  const fs::path out_dir(staged.path());
  AnomalyScorer scorer(system, cfg.eval);
  InferenceResult result;
  std::vector<Row> rows(files.size());
  std::map<std::string, int> used;
  const bool tty = options.progress && isatty(STDERR_FILENO);
  const auto batch_size = static_cast<size_t>(std::max<int64_t>(1, cfg.eval.batch_size));
  // One batch queued on the device while the host draws the figures of the previous one.
  struct InFlight {
    size_t end = 0;             // files[..end) are loaded once this batch is done
    std::vector<size_t> index;  // the files in the batch
    torch::Tensor images;       // (B, 3, H, W) normalised, on the CPU
    PendingOutput out;
  };
  const auto finish = [&](InFlight& f) {
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
      std::string name = fs::path(row.path).stem().string();
      if (used[name]++ > 0) name += "_" + std::to_string(f.index[k]);
      row.overlay = "maps/" + name + ".png";
      auto& ov = figures[k];
      ov.vmin = 0;
      ov.vmax = std::isfinite(options.map_scale)
                    ? options.map_scale
                    : out.maps[static_cast<int64_t>(k)].max().item<double>();
      char caption[200];
      std::snprintf(caption, sizeof caption, "%s  score %.5g%s", fs::path(row.path).filename().c_str(),
                    row.score,
                    std::isfinite(options.threshold) ? (flagged ? "  ANOMALOUS" : "  normal") : "");
      ov.caption = caption;
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
    if (tty) {
      std::fprintf(stderr, "\r[infer] %zu/%zu images", f.end, files.size());
    }
  };
  std::unique_ptr<InFlight> previous;  // the batch the host has yet to file
  for (size_t start = 0; start < files.size(); start += batch_size) {
    throw_if_stopped();  // the batches before this one are done; the rest is dropped
    // Decoding and drawing run on all cores (at::parallel_for); names, counts and messages are
    // settled here in file order, so the output does not depend on the thread timing.
    const size_t end = std::min(files.size(), start + batch_size);
    std::vector<torch::Tensor> loaded(end - start);
    std::vector<std::string> errors(end - start);
    at::parallel_for(0, static_cast<int64_t>(end - start), 1, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        try {
          data::Sample sample;
          sample.image = files[start + j];
          loaded[j] = data::load_sample(sample, cfg.data, false, 0).image;
        } catch (const std::exception& e) {
          const std::string what = e.what();
          errors[j] = what.substr(0, what.find('\n'));
        }
      }
    });
    InFlight next;
    next.end = end;
    std::vector<torch::Tensor> images;
    for (size_t i = start; i < end; ++i) {
      rows[i].path = files[i];
      if (loaded[i - start].defined()) {
        images.push_back(loaded[i - start]);
        next.index.push_back(i);
      } else {
        rows[i].error = errors[i - start];
        result.failed.push_back(files[i] + ": " + rows[i].error);
        log("infer")->warn("{}: {} (skipped; the other images go on)", files[i], rows[i].error);
      }
    }
    if (!images.empty()) {
      // Stacked straight into page-locked memory on CUDA, so the copy to the device is queued
      // behind the previous batch instead of waiting for it.
      const auto sizes = images.front().sizes();
      next.images = torch::empty(
          {static_cast<int64_t>(images.size()), sizes[0], sizes[1], sizes[2]},
          images.front().options().pinned_memory(system.device().is_cuda()));
      torch::stack_out(next.images, images);
      next.out = scorer.submit(next.images);
    }
    if (previous) finish(*previous);
    previous.reset();
    if (!images.empty()) previous = std::make_unique<InFlight>(std::move(next));
  }
  if (previous) finish(*previous);
  if (tty) std::fprintf(stderr, "\n");
  throw_if_stopped();
  const bool decide = std::isfinite(options.threshold);
  std::ostringstream csv;
  csv << "path,score" << (decide ? ",anomalous" : "") << ",overlay,error\n";
  for (const auto& r : rows) {
    char score[32] = "";
    if (std::isfinite(r.score)) std::snprintf(score, sizeof score, "%.9g", r.score);
    csv << csv_field(r.path) << "," << score;
    if (decide) csv << "," << (std::isfinite(r.score) ? (r.score >= options.threshold ? "1" : "0") : "");
    csv << "," << csv_field(r.overlay) << "," << csv_field(r.error) << "\n";
  }
  write_file_atomic((out_dir / "scores.csv").string(), csv.str());
  staged.commit();
  return result;
}

}  // namespace qfae::engine
