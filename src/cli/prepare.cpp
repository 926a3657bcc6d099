// `qfae prepare`: builds datasets in the BMAD layout: a small synthetic one (--synthetic), or
// axial slices of volumes (NIfTI: --from BraTS2021_Training_Data, --volume FILE|DIR; DICOM series:
// --dicom DIR), optionally with synthetic lesions in the held-out normal slices, and a
// manifest.json of what was written.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "qfae/cli/common.h"
#include "qfae/data/listing.h"
#include "qfae/data/synthetic.h"
#include "qfae/data/volume_dataset.h"
#include "qfae/data/volume_dataset_checks.h"
#include "qfae/io/dicom.h"
#include "qfae/io/nifti.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::cli {

namespace {
struct PrepareOptions {
  std::string synthetic;
  int64_t image_size = 0;  // 0: 64 for --synthetic, the slice's own size for volumes
  int64_t n_train = 96;
  int64_t n_val = 16;
  int64_t n_test_normal = 24;
  int64_t n_test_anomalous = 24;
  int64_t seed = 42;
  bool force = false;
  // Volumes.
  std::string brats_root;
  std::string modality = "flair";
  std::vector<std::string> volumes;
  std::vector<std::string> dicom;
  std::vector<std::string> labels;
  std::string out;
  std::vector<double> percentiles = {0.5, 99.5};
  std::vector<double> split = {0.7, 0.1, 0.2};
  std::vector<double> lesion_size = {0.06, 0.15};
  std::vector<double> lesion_contrast = {0.15, 0.35};
  data::SliceDatasetOptions slices;
};

const char* const kNoNifti = "this build has no NIfTI support (install libnifti2-dev and rebuild)";

const char* const kNoDicom =
    "--dicom: this build has no DICOM support (install libgdcm-dev and rebuild)";

const char* const kVolumeGroup = "Volumes (NIfTI, DICOM)";

// Where the volumes come from and where the dataset goes.
void add_volume_input_options(CLI::App* sub, PrepareOptions& o) {
  auto* from = sub->add_option("--from", o.brats_root,
                               "BraTS2021_Training_Data as distributed: <S>/<S>_<modality>.nii.gz "
                               "with <S>/<S>_seg.nii.gz per subject S")
                   ->group(kVolumeGroup);
  sub->add_option("--modality", o.modality, "BraTS modality to slice: flair|t1|t1ce|t2")
      ->check(CLI::IsMember({"flair", "t1", "t1ce", "t2"}))
      ->group(kVolumeGroup);
  auto* volume = sub->add_option("--volume", o.volumes,
                                 "NIfTI volume (.nii/.nii.gz) or folder of them; repeatable. In a "
                                 "folder <stem>_seg|_label|_mask.nii.gz is <stem>'s label")
                     ->group(kVolumeGroup);
  auto* dicom = sub->add_option("--dicom", o.dicom,
                                "Folder of DICOM files, searched recursively; each series "
                                "(SeriesInstanceUID) is a volume, its slices ordered by position; "
                                "repeatable")
                    ->group(kVolumeGroup);
  sub->add_option("--label", o.labels,
                  "NIfTI label volume (lesion > 0) for each --volume file or --dicom folder of one "
                  "series, in order; repeatable")
      ->group(kVolumeGroup);
  from->excludes(volume);
  dicom->excludes(from)->excludes(volume);
  sub->add_option("--out", o.out, "Folder to write the dataset and manifest.json to")
      ->group(kVolumeGroup);
}

// Which slices are kept and how they are written.
void add_slice_options(CLI::App* sub, PrepareOptions& o) {
  auto& s = o.slices;
  sub->add_option("--min-foreground", s.min_foreground,
                  "Drop slices whose foreground (voxels above the volume's minimum) is a smaller "
                  "fraction of the slice")
      ->check(CLI::Range(0.0, 1.0))
      ->group(kVolumeGroup);
  sub->add_option("--percentiles", o.percentiles,
                  "Per-volume intensity window: these percentiles of the foreground become 0 and "
                  "the top of the image range")
      ->expected(2)
      ->check(CLI::Range(0.0, 100.0))
      ->group(kVolumeGroup);
  sub->add_option("--min-lesion-pixels", s.min_lesion_pixels,
                  "A slice is anomalous with at least this many label > 0 pixels; slices with "
                  "fewer (but some) are dropped")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->group(kVolumeGroup);
  sub->add_option("--bit-depth", s.bit_depth, "PNG bit depth of the images (masks: 8-bit 0/255)")
      ->check(CLI::IsMember({8, 16}))
      ->group(kVolumeGroup);
}

// How subjects or slices are divided between train, val and test.
void add_split_options(CLI::App* sub, PrepareOptions& o) {
  auto& s = o.slices;
  sub->add_option("--split", o.split,
                  "Train, val and test ratios (of subjects, or of slice blocks with --split-by "
                  "slice)")
      ->expected(3)
      ->check(CLI::Range(0.0, 1000.0))
      ->group(kVolumeGroup);
  sub->add_option("--split-by", s.split_by,
                  "subject: whole subjects per split; slice: blocks of neighbouring slices per "
                  "split, held-out blocks spread over the volume, --gap slices dropped between "
                  "splits; auto: slice for one volume, else subject")
      ->check(CLI::IsMember({"auto", "subject", "slice"}))
      ->group(kVolumeGroup);
  sub->add_option("--block", s.block, "Slice splits: neighbouring slices per block")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->group(kVolumeGroup);
  sub->add_option("--gap", s.gap,
                  "Slice splits: slices dropped on each side where the split changes, so no "
                  "test slice is a near copy of a training slice")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}))
      ->group(kVolumeGroup);
  sub->add_flag("--val-anomalies", s.val_anomalies,
                "Also write anomalous validation slices (valid/Ungood, and lesioned copies with "
                "--synthetic-lesions); by default val holds normal slices only")
      ->group(kVolumeGroup);
}

// Synthetic lesions in the held-out normal slices.
void add_lesion_options(CLI::App* sub, PrepareOptions& o) {
  auto& s = o.slices;
  sub->add_flag("--synthetic-lesions", s.synthetic_lesions,
                "Every normal test slice also gets --lesion-copies copies with synthetic lesions "
                "(test/Ungood, exact masks)")
      ->group(kVolumeGroup);
  sub->add_option("--lesion-copies", s.lesion_copies, "Lesioned copies per normal test slice")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}))
      ->group(kVolumeGroup);
  sub->add_option("--lesion-size", o.lesion_size,
                  "Lesion radius range as fractions of the image side (drawn log-uniform)")
      ->expected(2)
      ->check(CLI::Range(0.001, 0.5))
      ->group(kVolumeGroup);
  sub->add_option("--lesion-contrast", o.lesion_contrast,
                  "Range of c: a lesion's level lies c beyond the 90th (bright) or 10th (dark) "
                  "percentile of the tissue under it (image range 0..1), every pixel moves at "
                  "least c/3; bright or dark at random where there is room")
      ->expected(2)
      ->check(CLI::Range(0.01, 1.0))
      ->group(kVolumeGroup);
  sub->add_option("--lesion-count", s.lesions.max_count, "At most this many lesions per image")
      ->check(CLI::Range(int64_t{1}, int64_t{20}))
      ->group(kVolumeGroup);
}

// The "Volumes (NIfTI, DICOM)" group of --help, in this order.
void add_volume_options(CLI::App* sub, PrepareOptions& o) {
  add_volume_input_options(sub, o);
  add_slice_options(sub, o);
  add_split_options(sub, o);
  add_lesion_options(sub, o);
  sub->add_option("--threads", o.slices.threads, "Volumes sliced in parallel (0: up to 8)")
      ->check(CLI::Range(int64_t{0}, int64_t{256}))
      ->group(kVolumeGroup);
}

void check_range(const std::vector<double>& v, const std::string& flag) {
  if (v[0] > v[1]) {
    throw UserError(flag + ": the first value (" + std::to_string(v[0]) +
                    ") must not exceed the second (" + std::to_string(v[1]) + ")");
  }
}

// What a prepared dataset consists of in its folder (all that --force replaces). prepare.json
// records what it was made from (request_of).
const std::vector<std::string> kDatasetParts = {"train", "valid", "test", "manifest.json",
                                                "prepare.json"};

// The output folder may be missing or a folder; anything else there is bad input.
void check_out_folder(const fs::path& root, const std::string& flag) {
  const auto kind = data::path_kind(root);
  if (kind != data::PathKind::kMissing && kind != data::PathKind::kDirectory) {
    throw UserError(flag + ": '" + root.string() + "' exists and is not a folder");
  }
}

bool holds_dataset(const fs::path& root) {
  if (data::path_kind(root) != data::PathKind::kDirectory) return false;
  return data::path_kind(root / "train") != data::PathKind::kMissing ||
         data::path_kind(root / "manifest.json") != data::PathKind::kMissing;
}

// What this prepare run was asked to make: its inputs (absolute paths) and every setting that
// changes the images. A folder made by the same request is kept as it is; another is refused.
nlohmann::json request_of(const PrepareOptions& o) {
  const auto absolute = [](const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const auto& p : paths) out.push_back(fs::absolute(p).lexically_normal().string());
    return out;
  };
  if (!o.synthetic.empty()) {
    return {{"synthetic", true}, {"image_size", o.image_size}, {"train", o.n_train},
            {"val", o.n_val}, {"test_normal", o.n_test_normal},
            {"test_anomalous", o.n_test_anomalous}, {"seed", o.seed}};
  }
  const auto& s = o.slices;
  nlohmann::json request = {{"from", o.brats_root.empty() ? "" : absolute({o.brats_root})[0]},
          {"modality", o.brats_root.empty() ? "" : o.modality},
          {"volume", absolute(o.volumes)}, {"label", absolute(o.labels)},
          {"image_size", o.image_size}, {"seed", o.seed}, {"percentiles", o.percentiles},
          {"split", o.split}, {"lesion_size", o.lesion_size},
          {"lesion_contrast", o.lesion_contrast}, {"min_foreground", s.min_foreground},
          {"min_lesion_pixels", s.min_lesion_pixels}, {"bit_depth", s.bit_depth},
          {"split_by", s.split_by}, {"block", s.block}, {"gap", s.gap},
          {"val_anomalies", s.val_anomalies}, {"synthetic_lesions", s.synthetic_lesions},
          {"lesion_copies", s.lesion_copies}, {"lesion_count", s.lesions.max_count}};
  // Only when given: a dataset recorded before --dicom existed stays the same request.
  if (!o.dicom.empty()) request["dicom"] = absolute(o.dicom);
  return request;
}

// True when `root` already holds the dataset `request` asks for (keep it); false when it holds
// none. A dataset made from other inputs or settings is a UserError naming the first difference,
// unless --force replaces it. A dataset without prepare.json (an earlier qfae's) is kept, as
// before, with a warning.
bool keep_existing(const fs::path& root, const nlohmann::json& request, const PrepareOptions& o,
                   const std::string& flag) {
  if (!holds_dataset(root) || o.force) return false;
  const auto record = root / "prepare.json";
  if (data::path_kind(record) == data::PathKind::kMissing) {
    log("prepare")->warn("{} already holds a dataset that does not say what it was made from; "
                         "keeping it (--force rewrites)", root.string());
    return true;
  }
  nlohmann::json before;
  try {
    std::ifstream in(record);
    before = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(record.string() + ": not valid JSON (" + std::string(e.what()) +
                    "); --force replaces the dataset");
  }
  for (const auto& [key, value] : request.items()) {
    if (before.contains(key) && before[key] == value) continue;
    throw UserError(flag + ": '" + root.string() + "' already holds a dataset made from other "
                    "inputs or settings (" + key + ": " +
                    (before.contains(key) ? before[key].dump() : std::string("none")) +
                    " there, " + value.dump() + " now); --force replaces it whole");
  }
  log("prepare")->info("{} already holds this dataset; keeping it (--force rewrites)",
                       root.string());
  return true;
}

// The summary of a written volume dataset, with a warning for each thing worth a second look.
void report_volume_dataset(const data::SliceDatasetSummary& s, const fs::path& root,
                           double seconds) {
  const auto manifest = (root / "manifest.json").string();
  log("prepare")->info(
      "wrote {} (split by {}): train {} normal; valid {} normal + {} anomalous; test {} normal "
      "+ {} anomalous; in {:.1f} s",
      root.string(), s.by_slice ? "slice" : "subject", s.slices.train.normal,
      s.slices.valid.normal, s.slices.valid.anomalous, s.slices.test.normal,
      s.slices.test.anomalous, seconds);
  nlohmann::json dropped = nlohmann::json::object();
  for (const auto& [reason, n] : s.dropped) dropped[data::slice_drop_name(reason)] = n;
  log("prepare")->info("dropped slices: {}; see {}", dropped.dump(), manifest);
  for (const auto& warning : data::slice_dataset_warnings(s, manifest)) {
    log("prepare")->warn("{}", warning);
  }
}

int run_volumes(PrepareOptions& o) {
  if (!o.labels.empty() && o.volumes.empty() && o.dicom.empty()) {
    throw UserError("--label: give the --volume files or --dicom folders it labels");
  }
  if (!o.dicom.empty() && !io::dicom_supported()) throw UserError(kNoDicom);
  // A DICOM series needs NIfTI support only for its labels.
  if (!io::have_nifti() && (o.dicom.empty() || !o.labels.empty())) throw UserError(kNoNifti);
  if (o.out.empty()) throw UserError("--out: give the folder to write the slice dataset to");
  check_range(o.percentiles, "--percentiles");
  check_range(o.lesion_size, "--lesion-size");
  check_range(o.lesion_contrast, "--lesion-contrast");
  if (o.split[0] + o.split[1] + o.split[2] <= 0) {
    throw UserError("--split: the ratios must not all be 0");
  }
  auto& s = o.slices;
  s.normalise.low_percentile = o.percentiles[0];
  s.normalise.high_percentile = o.percentiles[1];
  s.split = {o.split[0], o.split[1], o.split[2]};
  s.lesions.min_size = o.lesion_size[0];
  s.lesions.max_size = o.lesion_size[1];
  s.lesions.min_contrast = o.lesion_contrast[0];
  s.lesions.max_contrast = o.lesion_contrast[1];
  s.image_size = o.image_size;
  s.seed = static_cast<uint64_t>(o.seed);

  const fs::path root(o.out);
  check_out_folder(root, "--out");
  const auto request = request_of(o);
  if (keep_existing(root, request, o, "--out")) return 0;
  const auto sources = !o.dicom.empty()        ? data::find_dicom_volumes(o.dicom, o.labels)
                       : o.brats_root.empty() ? data::find_volumes(o.volumes, o.labels)
                                              : data::find_brats_subjects(o.brats_root, o.modality);
  log("prepare")->info("slicing {} volume(s) into {}", sources.size(), root.string());
  const auto start = std::chrono::steady_clock::now();
  // Nothing lands in `root` unless all of it is good.
  auto staged = StagedDir::parts_of(root.string(), kDatasetParts);
  const auto written = data::write_slice_dataset(sources, s, staged.path());
  // A dataset qfae train or eval cannot use is refused, naming the options to change.
  if (const auto why = data::unusable_slice_dataset(written, s)) {
    throw UserError("prepare: " + *why + ". Nothing was written to '" + o.out + "'");
  }
  write_file_atomic((fs::path(staged.path()) / "prepare.json").string(), request.dump(1) + "\n");
  staged.commit();
  report_volume_dataset(
      written, root,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

int run_synthetic(const PrepareOptions& o) {
  const fs::path root(o.synthetic);
  check_out_folder(root, "--synthetic");
  const auto request = request_of(o);
  if (keep_existing(root, request, o, "--synthetic")) return 0;
  const int64_t size = o.image_size > 0 ? o.image_size : 64;
  auto staged = StagedDir::parts_of(root.string(), kDatasetParts);
  data::write_synthetic_dataset(staged.path(), size, o.n_train, o.n_val, o.n_test_normal,
                                o.n_test_anomalous, static_cast<uint64_t>(o.seed));
  write_file_atomic((fs::path(staged.path()) / "prepare.json").string(), request.dump(1) + "\n");
  staged.commit();
  log("prepare")->info("wrote a synthetic dataset to {} ({} train, {} val, {} + {} test)",
                       root.string(), o.n_train, o.n_val, o.n_test_normal, o.n_test_anomalous);
  return 0;
}
}  // namespace

Command add_prepare_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "prepare",
      "Build a dataset folder in the BMAD layout: synthetic images (--synthetic DIR), BraTS2021 "
      "volumes (--from DIR --out DIR), any NIfTI volumes (--volume FILE|DIR --out DIR) or DICOM "
      "series (--dicom DIR --out DIR).\n"
      "Volumes become axial slices (row 0 anterior, the subject's right on the image's left), "
      "normalised per volume; slices with a label > 0 go to test/Ungood with their masks, train "
      "holds normal slices only, and out/manifest.json lists every file.\n"
      "One volume is split by blocks of slices with a gap, e.g. the Colin27 brain: --volume "
      "/usr/share/mricron/templates/ch2bet.nii.gz --out runs/demo-mri --image-size 64 "
      "--synthetic-lesions.");
  auto o = std::make_shared<PrepareOptions>();
  auto* synthetic = sub->add_option("--synthetic", o->synthetic,
                                    "Write a synthetic dataset (grey tissue-like images, lesions "
                                    "with masks) here")
                        ->group("Synthetic dataset");
  sub->add_option("--image-size", o->image_size,
                  "Side of the written images in pixels (0: 64 for --synthetic; for volumes the "
                  "slice padded to a square, unresized)")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  sub->add_option("--train", o->n_train, "Normal training images")
      ->check(CLI::Range(1, 100000))
      ->group("Synthetic dataset");
  sub->add_option("--val", o->n_val, "Normal validation images")
      ->check(CLI::Range(0, 100000))
      ->group("Synthetic dataset");
  sub->add_option("--test-normal", o->n_test_normal, "Normal test images")
      ->check(CLI::Range(0, 100000))
      ->group("Synthetic dataset");
  sub->add_option("--test-anomalous", o->n_test_anomalous, "Test images with lesions")
      ->check(CLI::Range(0, 100000))
      ->group("Synthetic dataset");
  add_volume_options(sub, *o);
  for (const char* name : {"--from", "--volume", "--dicom", "--label"}) {
    synthetic->excludes(sub->get_option(name));
  }
  sub->add_option("--seed", o->seed, "Random seed (splits, lesions, synthetic images)");
  sub->add_flag("--force", o->force,
                "Replace a dataset the folder already holds (the same inputs and settings keep it; "
                "others are refused without --force)");
  return {sub, [o] {
            if (!o->synthetic.empty()) return run_synthetic(*o);
            if (!o->brats_root.empty() || !o->volumes.empty() || !o->dicom.empty() ||
                !o->labels.empty()) {
              return run_volumes(*o);
            }
            throw UserError(
                "prepare: give --synthetic DIR, --from BRATS_DIR, --volume PATH or --dicom DIR "
                "(see qfae prepare --help)");
          }};
}

}  // namespace qfae::cli
