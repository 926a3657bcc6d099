// Evaluation of a split: scoring pass, pooled metrics pass, and the files people open.
#include "qfae/evaluate/evaluate_split.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/config/loader.h"
#include "qfae/data/loader.h"
#include "qfae/evaluate/eval_report.h"
#include "qfae/evaluate/map_spill.h"
#include "qfae/io/image.h"
#include "qfae/io/overlay.h"
#include "qfae/metrics/auroc.h"
#include "qfae/metrics/average_precision.h"
#include "qfae/metrics/bootstrap_auroc.h"
#include "qfae/metrics/f1_max.h"
#include "qfae/metrics/pixel_curve_accumulator.h"
#include "qfae/metrics/score_range.h"
#include "qfae/report/result_pages.h"
#include "qfae/run/stop_signal.h"
#include "qfae/scoring/scoring_pass.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::evaluate {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// JSON has no NaN: undefined values are written as null.
json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json image_metrics(const std::vector<ImageResult>& rows, const config::Config& cfg,
                   std::vector<std::string>& notes) {
  const auto [scores, labels] = scores_and_labels(rows);
  const auto anomalous = std::count(labels.begin(), labels.end(), 1);
  const auto normal = static_cast<int64_t>(labels.size()) - anomalous;
  json j = {{"auroc", nullptr}, {"ap", nullptr}, {"f1_max", nullptr}};
  if (anomalous == 0 || normal == 0) {
    notes.push_back("image metrics need normal and anomalous images; the split has " +
                    std::to_string(normal) + " normal and " + std::to_string(anomalous) +
                    " anomalous, so they are null");
    return j;
  }
  j["auroc"] = metrics::auroc(scores, labels);
  j["ap"] = metrics::average_precision(scores, labels);
  const auto f1 = metrics::f1_max(scores, labels);
  j["f1_max"] = f1.f1;
  j["f1_threshold"] = f1.threshold;
  if (cfg.eval.bootstrap > 0) {
    metrics::BootstrapOptions b;
    b.resamples = static_cast<int>(cfg.eval.bootstrap);
    b.seed = static_cast<uint64_t>(cfg.train.seed);
    const auto ci = metrics::bootstrap_auroc(scores, labels, b);
    j["auroc_ci95"] = {ci.lower, ci.upper};
    j["bootstrap"] = {{"resamples", b.resamples}, {"used", ci.resamples_used}, {"seed", b.seed}};
  }
  return j;
}

json decisions(const std::vector<ImageResult>& rows, double threshold) {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  for (const auto& r : rows) {
    const bool flagged = r.score >= threshold;
    (r.label ? (flagged ? tp : fn) : (flagged ? fp : tn)) += 1;
  }
  const auto ratio = [](int64_t a, int64_t b) {
    return b > 0 ? json(static_cast<double>(a) / static_cast<double>(b)) : json(nullptr);
  };
  return {{"threshold", threshold}, {"tp", tp}, {"fp", fp}, {"tn", tn}, {"fn", fn},
          {"sensitivity", ratio(tp, tp + fn)}, {"specificity", ratio(tn, tn + fp)},
          {"precision", ratio(tp, tp + fp)}};
}

// Pass 1's output: per-image results in sample order, their maps in the spill file, the range of
// all map values.
struct ScoredSplit {
  std::vector<ImageResult> images;
  std::unique_ptr<MapSpill> spill;
  metrics::ScoreRange range;
};

// Pass 1, the scoring pass (scoring/scoring_pass.h): scores kept, maps, masks and display images
// spilled, on rank 0 when data-parallel (the other ranks return an empty ScoredSplit). A map that
// is not finite stops the evaluation naming its image; images that could not be read are named in
// `notes`.
ScoredSplit score_split(anomaly::AnomalyScorer& scorer, const std::vector<data::Sample>& samples,
                        const config::Config& cfg, torch::Device device, dist::Communicator* comm,
                        const fs::path& out_dir, bool progress, std::vector<std::string>& notes) {
  data::LoaderOptions lo;
  lo.batch_size = cfg.eval.batch_size;
  lo.pin_memory = device.is_cuda();
  scoring::ScoringPass pass(samples, cfg.data, lo, comm);
  const bool leader = !comm || comm->leader();
  ScoredSplit split;
  if (leader) {
    split.spill =
        std::make_unique<MapSpill>((out_dir / ".maps.tmp").string(), cfg.data.image_size);
  }
  scoring::PassOptions po;
  po.images = true;
  po.progress = progress ? "eval" : "";
  const auto unread = pass.run(
      [&](const torch::Tensor& images) { return scorer.submit(images); }, po,
      [&](const scoring::ScoredRows& scored) {
        for (size_t i = 0; i < scored.rows.size(); ++i) {
          const auto& row = scored.rows[i];
          const auto& sample = samples[row.position];
          if (!row.finite) {
            throw UserError("the anomaly map of " + sample.image + " is not finite (NaN or "
                            "infinity); check the checkpoint (did training diverge?) and the image");
          }
          ImageResult r;
          r.path = sample.image;
          r.label = sample.label;
          r.score = row.score;
          r.has_mask = sample.has_mask();
          const auto k = static_cast<int64_t>(i);
          split.spill->write(scored.maps[k], scored.masks[k], scored.display[k]);
          split.images.push_back(std::move(r));
        }
        if (!scored.rows.empty()) split.range.add(scored.maps);
      });
  for (const auto& u : unread) {
    notes.push_back("skipped " + samples[u.position].image + ": " + u.reason);
  }
  return split;
}

// Which images the pixel metrics pool: normal images and anomalous images with a mask; none when
// no anomalous image has a mask. Notes say what was left out.
bool pixel_metrics_possible(const std::vector<ImageResult>& images,
                            std::vector<std::string>& notes) {
  int64_t unmasked_anomalous = 0;
  bool any_mask = false;
  for (const auto& r : images) {
    if (r.label && !r.has_mask) ++unmasked_anomalous;
    any_mask = any_mask || (r.label && r.has_mask);
  }
  if (any_mask && unmasked_anomalous) {
    notes.push_back(std::to_string(unmasked_anomalous) +
                    " anomalous images have no mask and are left out of the pixel metrics");
  }
  if (!any_mask) notes.push_back("no anomalous image has a mask: pixel metrics are null");
  return any_mask;
}

// Pass 2 over the spill file: the pooled pixel histogram (rows fed to it in `pixel_rows`) and
// each image's figure name ("" when no figure is drawn).
// Returns the number of anomalous images whose mask is empty (all zero after data.mask_threshold):
// pooled, their pixels count as normal ones; they have no Dice and no AUPRO region.
int64_t pool_pixels(MapSpill& spill, const std::vector<ImageResult>& images, bool any_mask,
                    const config::EvalConfig& eval, metrics::PixelCurveAccumulator& pixels,
                    std::vector<int64_t>& pixel_rows, std::vector<std::string>& figure,
                    std::string& first_empty) {
  std::map<std::string, int> used;
  figure.assign(images.size(), "");
  spill.rewind();
  SpilledImage rec;
  int64_t empty = 0;
  for (int64_t i = 0; spill.read(rec); ++i) {
    const auto& r = images[i];
    if (any_mask && (!r.label || r.has_mask)) {
      pixels.add(rec.map.unsqueeze(0), rec.mask.unsqueeze(0));
      pixel_rows.push_back(i);
      if (r.label && !(rec.mask > 0.5).any().item<bool>() && empty++ == 0) first_empty = r.path;
    }
    if (eval.save_maps || eval.save_raw_maps) {
      figure[i] = report::figure_name(r.path, r.label, i, used);
    }
  }
  return empty;
}

// The overlays' colour maximum: options.map_scale when given, else the eval.overlay_percentile of
// the pooled map values (100: the largest), so one bright corner of one image does not leave
// every other map in the coldest colours.
double colour_max(const EvaluationOptions& options, const config::EvalConfig& eval, bool any_mask,
                  const metrics::PixelCurveAccumulator& pixels, const metrics::ScoreRange& range,
                  double lo) {
  double vmax = range.hi();
  if (std::isfinite(options.map_scale)) {
    vmax = options.map_scale;
  } else if (any_mask && eval.overlay_percentile < 100.0) {
    vmax = pixels.quantile(eval.overlay_percentile / 100.0);
  }
  if (!(vmax > lo)) vmax = range.hi();
  return vmax;
}

// Pass 3: overlays and raw maps. Records are read in order, a chunk at a time, and drawn in
// parallel (PNG encoding dominates: ~25 ms a 224 px figure on one core).
void draw_figures(MapSpill& spill, const std::vector<ImageResult>& images,
                  const std::vector<std::string>& figure, const config::EvalConfig& eval,
                  const metrics::PixelCurveOptions& po, double vmax, const fs::path& out_dir,
                  bool tty) {
  auto draw = [&](int64_t i, const SpilledImage& one) {
    const auto& r = images[i];
    if (eval.save_raw_maps) {
      io::write_png((out_dir / "maps" / (figure[i] + "_raw.png")).string(),
                    (one.map - po.lo) / (po.hi - po.lo), /*bit_depth=*/16);
    }
    if (eval.save_maps) {
      io::OverlayOptions ov;
      ov.vmin = po.lo;
      ov.vmax = vmax;
      char caption[160];
      std::snprintf(caption, sizeof caption, "%s  score %.5g  %s",
                    fs::path(r.path).filename().c_str(), r.score,
                    r.label ? "anomalous" : "normal");
      ov.caption = caption;
      io::write_overlay((out_dir / "maps" / (figure[i] + ".png")).string(),
                        one.image.to(torch::kFloat32) / 255, one.map,
                        r.has_mask ? one.mask : torch::Tensor(), ov);
    }
  };
  std::set<fs::path> folders;  // made here, before the threads write into them
  for (const auto& f : figure) {
    if (!f.empty()) folders.insert((out_dir / "maps" / f).parent_path());
  }
  for (const auto& folder : folders) make_dirs(folder.string());
  const int64_t chunk = std::max<int64_t>(8, 4 * torch::get_num_threads());
  std::vector<SpilledImage> records;
  SpilledImage rec;
  spill.rewind();
  for (int64_t first = 0; eval.save_maps || eval.save_raw_maps; first += chunk) {
    run::throw_if_stopped();
    records.clear();
    while (static_cast<int64_t>(records.size()) < chunk && spill.read(rec)) records.push_back(rec);
    if (records.empty()) break;
    at::parallel_for(0, static_cast<int64_t>(records.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) draw(first + k, records[k]);
    });
    const int64_t done = first + static_cast<int64_t>(records.size());
    if (tty) {
      std::fprintf(stderr, "\r[eval] figures %lld/%lld", static_cast<long long>(done),
                   static_cast<long long>(spill.size()));
    }
  }
  if (tty) std::fprintf(stderr, "\n");
}

// metrics.json's description of the run: version, checkpoint, config hash, device, precision,
// data set and test-time settings.
// The config without what a seed sweep varies or what does not change the numbers: the name
// (<name>-seed<N>), train.seed, output_dir, device, threads and data.workers. Runs with equal
// recipes are runs of one configuration, and only those are averaged in summary tables.
config::Config recipe_of(config::Config cfg) {
  cfg.name.clear();
  cfg.output_dir.clear();
  cfg.device.clear();
  cfg.threads = 0;
  cfg.data.workers = 0;
  cfg.train.seed = 0;
  return cfg;
}

json describe_run(anomaly::AnomalyModel& model, const anomaly::AnomalyScorer& scorer,
                  const EvaluationOptions& options, const std::vector<ImageResult>& images) {
  const auto& cfg = model.config();
  json m;
  m["qfae_version"] = QFAE_VERSION;
  m["name"] = cfg.name;
  m["seed"] = cfg.train.seed;
  m["checkpoint"] = options.checkpoint;
  m["config_sha256"] = sha256_hex(config::to_yaml(cfg));
  m["recipe_sha256"] = sha256_hex(config::to_yaml(recipe_of(cfg)));
  m["device"] = model.device().str();
  m["precision"] = {{"eval", anomaly::precision_name(scorer.precision())},
                    {"frozen_weights", model.frozen_dtype() == torch::kBFloat16 ? "bf16"
                                                                                : "fp32"}};
  int64_t anomalous = 0;
  for (const auto& r : images) anomalous += r.label;
  m["dataset"] = {{"root", cfg.data.root}, {"layout", cfg.data.layout}, {"split", options.split},
                  {"images", images.size()}, {"anomalous", anomalous},
                  {"normal", static_cast<int64_t>(images.size()) - anomalous},
                  {"image_size", cfg.data.image_size}, {"notes", options.dataset_notes}};
  m["settings"] = {{"patch_sizes", cfg.eval.patch_sizes}, {"layers", cfg.eval.layers},
                   {"pixel_reduction", cfg.eval.pixel_reduction},
                   {"layer_reduction", cfg.eval.layer_reduction},
                   {"smoothing_sigma", cfg.eval.smoothing_sigma}};
  return m;
}

// metrics.json's "pixel" block; sets each pooled image's Dice at the best pooled threshold.
json pixel_block(const metrics::PixelCurveAccumulator& pixels, const metrics::PixelMetrics& p,
                 const metrics::PixelCurveOptions& po, const std::vector<int64_t>& pixel_rows,
                 std::vector<ImageResult>& images) {
  const auto dice = pixels.image_dice(p.best_dice_bin);
  for (size_t k = 0; k < pixel_rows.size(); ++k) images[pixel_rows[k]].dice = dice[k];
  return {{"auroc", p.auroc}, {"ap", p.ap}, {"best_dice", p.best_dice},
          {"best_dice_threshold", p.best_dice_threshold},
          {"per_image_dice", number_or_null(p.per_image_dice)}, {"aupro", p.aupro},
          {"fpr_limit", po.fpr_limit}, {"auroc_bin_error_bound", p.auroc_bin_error_bound},
          {"bins", po.bins}, {"score_range", {po.lo, po.hi}},
          {"positives", p.positives}, {"negatives", p.negatives}, {"regions", p.regions},
          {"anomalous_images", p.anomalous_images}};
}

}  // namespace

EvaluationResult evaluate_split(anomaly::AnomalyModel& model,
                                const std::vector<data::Sample>& samples,
                                const EvaluationOptions& options) {
  const auto& cfg = model.config();
  if (samples.empty()) {
    throw UserError("the " + options.split + " split of " + cfg.data.root + " has no images");
  }
  auto* comm = options.comm && options.comm->size() > 1 ? options.comm : nullptr;
  const bool leader = !comm || comm->leader();
  // Everything goes into a temporary sibling of out_dir, moved in place once complete (by rank 0
  // alone when data-parallel).
  std::optional<StagedDir> staged;
  if (leader) staged.emplace(options.out_dir, "metrics.json");
  const fs::path out_dir(leader ? staged->path() : std::string());
  const auto start = Clock::now();
  const bool tty = leader && options.progress && isatty(STDERR_FILENO);
  anomaly::AnomalyScorer scorer(model, cfg.eval);
  std::vector<std::string> notes;
  ScoredSplit split = score_split(scorer, samples, cfg, model.device(), comm, out_dir,
                                  leader && options.progress, notes);
  run::throw_if_stopped();
  if (!leader) return {};
  const double scoring_s = seconds_since(start);
  EvaluationResult result;
  result.images = std::move(split.images);

  const bool any_mask = pixel_metrics_possible(result.images, notes);
  metrics::PixelCurveOptions po;
  po.bins = options.pixel_bins;
  po.lo = split.range.lo();
  po.hi = split.range.hi();
  po.fpr_limit = cfg.eval.max_fpr;
  metrics::PixelCurveAccumulator pixels(po);
  std::vector<int64_t> pixel_rows;  // rows fed to `pixels`, in order
  std::vector<std::string> figure;
  std::string first_empty;
  const int64_t empty_masks = pool_pixels(*split.spill, result.images, any_mask, cfg.eval, pixels,
                                          pixel_rows, figure, first_empty);
  // Pixel metrics need anomalous pixels: with every mask empty they are null, and the image
  // metrics still stand.
  bool pixel_metrics = any_mask;
  if (any_mask && empty_masks > 0) {
    int64_t masked = 0;
    for (const auto& r : result.images) masked += r.label && r.has_mask;
    pixel_metrics = empty_masks < masked;
    notes.push_back(
        pixel_metrics
            ? std::to_string(empty_masks) + " of " + std::to_string(masked) +
                  " anomalous images have an empty mask (e.g. the mask of " + first_empty +
                  "): their pixels count as normal in the pooled pixel AUROC / AP / Dice, and they "
                  "have no per-image Dice and no AUPRO region"
            : "every mask of the " + std::to_string(masked) + " anomalous images is empty after "
                  "data.mask_threshold = " + std::to_string(cfg.data.mask_threshold) +
                  " (e.g. the mask of " + first_empty + "): pixel metrics are null; check the masks' values");
  }
  const double vmax = colour_max(options, cfg.eval, any_mask, pixels, split.range, po.lo);
  draw_figures(*split.spill, result.images, figure, cfg.eval, po, vmax, out_dir, tty);
  split.spill.reset();  // removes the spill file before the folder is moved in place

  json m = describe_run(model, scorer, options, result.images);
  m["image"] = image_metrics(result.images, cfg, notes);
  m["pixel"] = nullptr;
  if (pixel_metrics) {
    const auto p = pixels.compute();
    m["pixel"] = pixel_block(pixels, p, po, pixel_rows, result.images);
    write_curves(out_dir.string(), result.images, &pixels, p);
  } else {
    write_curves(out_dir.string(), result.images, nullptr, {});
  }
  if (std::isfinite(options.threshold))
    m["decisions"] = decisions(result.images, options.threshold);
  if (cfg.eval.save_maps) {
    m["overlays"] = {{"colour_scale", {po.lo, vmax}},
                     {"percentile", std::isfinite(options.map_scale)
                                        ? json(nullptr)
                                        : json(cfg.eval.overlay_percentile)}};
  }
  if (cfg.eval.save_raw_maps) {
    m["raw_maps"] = {{"scale", "value = lo + png / 65535 * (hi - lo)"}, {"lo", po.lo},
                     {"hi", po.hi}};
  }
  const double total_s = seconds_since(start);
  m["timing"] = {{"seconds", total_s}, {"scoring_seconds", scoring_s},
                 {"images_per_s", static_cast<double>(result.images.size()) / scoring_s}};
  m["notes"] = notes;
  std::vector<std::string> overlays(figure.size());
  for (size_t i = 0; i < figure.size(); ++i) {
    if (cfg.eval.save_maps && !figure[i].empty()) overlays[i] = "maps/" + figure[i] + ".png";
  }
  const json dicom = write_scores_csv((out_dir / "scores.csv").string(), result.images,
                                      options.threshold, overlays);
  if (!dicom.is_null()) m["dataset"]["dicom"] = dicom;
  result.metrics = m;
  write_json((out_dir / "metrics.json").string(), m);
  write_file_atomic((out_dir / "config.yaml").string(), config::to_yaml(cfg));
  report::write_eval_page(out_dir.string());
  run::throw_if_stopped();
  staged->commit();
  result.summary = summary_line(m);
  for (const auto& n : notes) log("eval")->warn("{}", n);
  return result;
}

}  // namespace qfae::evaluate
