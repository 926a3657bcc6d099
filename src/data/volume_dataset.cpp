// Writing slice datasets from volumes (see volume_dataset.h): per subject, read, normalise, choose
// slices, split, write images, masks and lesioned copies; then the manifest and its totals.
#include "qfae/data/volume_dataset.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "qfae/data/random.h"
#include "qfae/data/volume_split.h"
#include "qfae/io/image.h"
#include "qfae/io/nifti.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/runtime.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::data {
namespace {

uint64_t name_hash(const std::string& s) {  // FNV-1a: stable across runs and platforms
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// The entry of one split; kNone has none (its slices are dropped, never written).
template <typename T>
T& in_split(PerSplit<T>& per_split, Split split) {
  switch (split) {
    case Split::kTrain:
      return per_split.train;
    case Split::kVal:
      return per_split.valid;
    case Split::kTest:
      return per_split.test;
    case Split::kNone:
      break;
  }
  throw std::logic_error("in_split: no entry for a dropped slice");
}

struct SubjectResult {
  std::vector<json> files;  // the manifest's entries
  PerSplit<SliceCounts> slices;
  std::map<SliceDrop, int64_t> dropped;
  int64_t non_finite = 0;  // NaN or infinite voxels of the volume and its label
  json volume;
};

class SubjectWriter {
 public:
  SubjectWriter(const VolumeSource& source, Split subject_split, bool by_slice,
                const SliceDatasetOptions& o, const fs::path& out)
      : src_(source), subject_split_(subject_split), by_slice_(by_slice), o_(o), out_(out) {}

  SubjectResult run() {
    auto norm = normalise_volume(reported(read_source_image(src_)), o_.normalise);
    io::Volume label;
    if (!src_.label.empty()) label = reported(io::read_nifti(src_.label));
    const io::Volume* lab = src_.label.empty() ? nullptr : &label;
    const auto stats = slice_stats(norm, lab);
    volume_ = &norm.volume;

    std::vector<int64_t> kept;
    for (const auto& s : stats) {
      if (s.foreground_fraction < o_.min_foreground) {
        ++r_.dropped[SliceDrop::kLittleForeground];
      } else if (s.lesion_pixels > 0 && s.lesion_pixels < o_.min_lesion_pixels) {
        ++r_.dropped[SliceDrop::kSmallLesion];
      } else {
        kept.push_back(s.k);
      }
    }
    std::vector<Split> splits(kept.size(), subject_split_);
    if (by_slice_) {
      splits = split_slices(kept, o_.split, o_.block, o_.gap, o_.seed ^ name_hash(src_.subject));
    }
    for (size_t i = 0; i < kept.size(); ++i) {
      write_slice(norm, lab, kept[i], stats[kept[i]].lesion_pixels > 0, splits[i]);
    }
    const auto& v = norm.volume;
    r_.volume = {{"subject", src_.subject},
                 {"volume", src_.image},
                 {"label_volume", src_.label.empty() ? json(nullptr) : json(src_.label)},
                 {"file_axes", v.file_axes},
                 {"transform", v.transform},
                 {"size_lps", {v.width, v.height, v.depth}},
                 {"spacing_mm", {v.spacing[0], v.spacing[1], v.spacing[2]}},
                 {"normalised_from", {norm.low, norm.high}},
                 {"non_finite_voxels", v.non_finite},
                 {"label_non_finite_voxels", lab ? json(lab->non_finite) : json(nullptr)},
                 {"split", by_slice_ ? "by slice" : split_name(subject_split_)}};
    r_.non_finite = v.non_finite + (lab ? lab->non_finite : 0);
    add_source(r_.volume);
    return std::move(r_);
  }

 private:
  // A volume whose NaN or infinite voxels (read as 0) are counted and reported, never silent.
  static io::Volume reported(io::Volume v) {
    if (v.non_finite > 0) {
      log("prepare")->warn(
          "'{}': {} NaN or infinite voxels, read as 0 (dark specks where they lie in tissue)",
          v.path, v.non_finite);
    }
    return v;
  }

  // Where the volume came from: a NIfTI file, or a DICOM series (its UID, number and files).
  void add_source(json& entry) const {
    if (!src_.dicom) {
      entry["source"] = "nifti";
      return;
    }
    const auto& d = *src_.dicom;
    entry["source"] = "dicom";
    entry["series_uid"] = d.uid;
    entry["series_number"] = d.number;
    entry["dicom_folder"] = d.folder;
    entry["dicom_files"] = d.files.size();
  }

  void write_slice(const NormalisedVolume& norm, const io::Volume* label, int64_t k, bool anomalous,
                   Split split) {
    const bool held_out = split == Split::kTest || (split == Split::kVal && o_.val_anomalies);
    if (split == Split::kNone) {
      ++r_.dropped[SliceDrop::kSplitGap];
      return;
    }
    if (anomalous && !held_out) {
      ++r_.dropped[split == Split::kTrain ? SliceDrop::kAnomalousInTrain
                                          : SliceDrop::kAnomalousInVal];
      return;
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), norm.volume.depth > 999 ? "_z%04lld" : "_z%03lld",
                  static_cast<long long>(k));
    const std::string name = src_.subject + buf;
    const auto image = slice_image(norm.volume, k, o_.image_size);
    if (anomalous) {
      const auto mask = slice_mask(*label, k, o_.image_size);
      if (mask.sum().item<float>() == 0) {
        ++r_.dropped[SliceDrop::kLesionLostInResize];  // a few pixels nearest resizing missed
      } else {
        write(split, name, k, image, mask, "segmentation");
      }
      return;
    }
    write(split, name, k, image, torch::Tensor(), "none");
    if (!o_.synthetic_lesions || !held_out) return;
    const auto fg = slice_foreground(norm, k, o_.image_size);
    for (int64_t c = 0; c < o_.lesion_copies; ++c) {
      const uint64_t seed = mix_seed(o_.seed ^ name_hash(src_.subject)) ^
                            (static_cast<uint64_t>(k) << 16) ^ static_cast<uint64_t>(c);
      const auto les = add_synthetic_lesions(image, fg, o_.lesions, seed);
      if (les.count == 0) {
        ++r_.dropped[SliceDrop::kNoRoomForLesion];
        continue;
      }
      write(split, name + "_lesion" + std::to_string(c), k, les.image, les.mask, "synthetic");
      r_.files.back()["lesions"] = {{"count", les.count}, {"bright", les.bright}};
    }
  }

  void write(Split split, const std::string& name, int64_t k, const torch::Tensor& image,
             const torch::Tensor& mask, const char* anomaly) {
    const bool bad = mask.defined();
    const fs::path dir = fs::path(split_name(split)) / (bad ? "Ungood" : "good");
    const fs::path file = dir / "img" / (name + ".png");
    io::write_png((out_ / file).string(), image, o_.bit_depth);
    json mask_entry = nullptr;
    int64_t lesion_pixels = 0;
    if (bad) {
      const fs::path mask_file = dir / "label" / (name + ".png");
      io::write_png((out_ / mask_file).string(), mask, 8);
      mask_entry = mask_file.generic_string();
      lesion_pixels = static_cast<int64_t>(mask.sum().item<float>());
    }
    r_.files.push_back({{"file", file.generic_string()},
                        {"mask", mask_entry},
                        {"subject", src_.subject},
                        {"volume", src_.image},
                        {"label_volume", src_.label.empty() ? json(nullptr) : json(src_.label)},
                        {"slice", k},
                        {"file_slice", volume_->file_slice(k)},
                        {"label", bad ? 1 : 0},
                        {"split", split_name(split)},
                        {"anomaly", anomaly},
                        {"lesion_pixels", lesion_pixels}});
    if (src_.dicom && volume_->slice_axis_in_file == 2) {
      // Axial acquisitions: each slice is one of the series' files.
      r_.files.back()["dicom_file"] = src_.dicom->files[volume_->file_slice(k)];
    }
    auto& counts = in_split(r_.slices, split);
    ++(bad ? counts.anomalous : counts.normal);
  }

  const VolumeSource& src_;
  Split subject_split_;
  bool by_slice_;
  const SliceDatasetOptions& o_;
  fs::path out_;
  const io::Volume* volume_ = nullptr;  // the normalised volume while run() writes its slices
  SubjectResult r_;
};

// Subjects sliced by up to o.threads workers (0: up to 8), results in the order of `sources`.
// The first error stops the others from starting another subject and is rethrown.
std::vector<SubjectResult> slice_subjects(const std::vector<VolumeSource>& sources,
                                          const std::vector<Split>& subject_splits, bool by_slice,
                                          const SliceDatasetOptions& o, const std::string& out) {
  std::vector<SubjectResult> results(sources.size());
  std::atomic<size_t> next{0}, done{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i = next++; i < sources.size(); i = next++) {
      try {
        results[i] = SubjectWriter(sources[i], subject_splits[i], by_slice, o, out).run();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = sources.size();
        return;
      }
      const size_t n = ++done;
      if (n == sources.size() || n % std::max<size_t>(1, sources.size() / 10) == 0) {
        log("prepare")->info("{}/{} volumes sliced", n, sources.size());
      }
    }
  };
  int64_t threads =
      o.threads > 0 ? o.threads : std::min<int64_t>(8, usable_cores());
  threads = std::clamp<int64_t>(threads, 1, static_cast<int64_t>(sources.size()));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return results;
}

// What the manifest lists and adds up over all subjects.
struct DatasetTotals {
  json files = json::array(), volumes = json::array();
  SliceDatasetSummary summary;
};

// Moves every subject's files and volume entry into the totals, in order, and counts them.
DatasetTotals totals_of(std::vector<SubjectResult>& results, bool by_slice) {
  DatasetTotals t;
  auto& s = t.summary;
  s.by_slice = by_slice;
  for (auto& r : results) {
    for (const Split split : {Split::kTrain, Split::kVal, Split::kTest}) {
      const auto& from = in_split(r.slices, split);
      auto& to = in_split(s.slices, split);
      to.normal += from.normal;
      to.anomalous += from.anomalous;
      if (from.normal + from.anomalous > 0) ++in_split(s.subjects, split);
    }
    for (auto& f : r.files) t.files.push_back(std::move(f));
    for (const auto& [reason, n] : r.dropped) s.dropped[reason] += n;
    ++s.volumes;
    s.volumes_with_non_finite += r.non_finite > 0;
    s.non_finite_voxels += r.non_finite;
    t.volumes.push_back(std::move(r.volume));
  }
  return t;
}

// manifest.json's "counts": normal and anomalous slices per split.
json per_split_json(const PerSplit<SliceCounts>& p) {
  const auto one = [](const SliceCounts& c) {
    return json{{"normal", c.normal}, {"anomalous", c.anomalous}};
  };
  return {{"train", one(p.train)}, {"valid", one(p.valid)}, {"test", one(p.test)}};
}

// The options the dataset was written with, for the manifest.
json options_json(const SliceDatasetOptions& o) {
  return {{"percentiles", {o.normalise.low_percentile, o.normalise.high_percentile}},
          {"foreground_level", o.normalise.foreground_level},
          {"min_foreground", o.min_foreground},
          {"min_lesion_pixels", o.min_lesion_pixels},
          {"image_size", o.image_size},
          {"bit_depth", o.bit_depth},
          {"split", o.split},
          {"block", o.block},
          {"gap", o.gap},
          {"val_anomalies", o.val_anomalies},
          {"synthetic_lesions", o.synthetic_lesions},
          {"lesion_copies", o.lesion_copies},
          {"lesion_size", {o.lesions.min_size, o.lesions.max_size}},
          {"lesion_contrast", {o.lesions.min_contrast, o.lesions.max_contrast}},
          {"lesion_max_count", o.lesions.max_count},
          {"seed", o.seed}};
}

// The manifest (see volume_dataset.h); takes the totals' files and volumes.
json manifest_of(DatasetTotals& t, const SliceDatasetOptions& o) {
  const auto& s = t.summary;
  json dropped = json::object();
  for (const auto& [reason, n] : s.dropped) dropped[slice_drop_name(reason)] = n;
  return {{"format", "qfae slice dataset 1"},
          {"layout", "bmad"},
          {"orientation",
           "axial slices; row 0 anterior; the subject's right on the image's left (radiological); "
           "slice 0 most inferior"},
          {"split_by", s.by_slice ? "slice" : "subject"},
          {"counts", per_split_json(s.slices)},
          {"subjects",
           {{"train", s.subjects.train}, {"valid", s.subjects.valid}, {"test", s.subjects.test}}},
          {"dropped", dropped},
          {"non_finite_voxels", s.non_finite_voxels},
          {"options", options_json(o)},
          {"volumes", std::move(t.volumes)},
          {"files", std::move(t.files)}};
}

}  // namespace

const char* slice_drop_name(SliceDrop reason) {
  switch (reason) {
    case SliceDrop::kAnomalousInTrain:
      return "anomalous_in_train";
    case SliceDrop::kAnomalousInVal:
      return "anomalous_in_val";
    case SliceDrop::kLesionLostInResize:
      return "lesion_lost_in_resize";
    case SliceDrop::kLittleForeground:
      return "little_foreground";
    case SliceDrop::kNoRoomForLesion:
      return "no_room_for_lesion";
    case SliceDrop::kSmallLesion:
      return "small_lesion";
    case SliceDrop::kSplitGap:
      return "split_gap";
  }
  return "unknown";
}

SliceDatasetSummary write_slice_dataset(const std::vector<VolumeSource>& sources,
                                        const SliceDatasetOptions& o, const std::string& out) {
  const bool by_slice = o.split_by == "slice" || (o.split_by == "auto" && sources.size() == 1);
  const auto subject_splits = split_subjects(static_cast<int64_t>(sources.size()), o.split, o.seed);
  auto results = slice_subjects(sources, subject_splits, by_slice, o, out);
  auto totals = totals_of(results, by_slice);
  const json manifest = manifest_of(totals, o);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw UserError("cannot create folder '" + out + "': " + ec.message());
  write_file_atomic((fs::path(out) / "manifest.json").string(), manifest.dump(1) + "\n");
  return totals.summary;
}

}  // namespace qfae::data
