// Finding BraTS subjects, generic NIfTI volumes and DICOM series with their labels (see
// volume_sources.h); a folder or file that cannot be read is an error naming it (data/listing.h),
// never "not there".
#include "qfae/data/volume_sources.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "qfae/data/listing.h"
#include "qfae/io/dicom_series.h"
#include "qfae/io/nifti.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae::data {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// <dir>/<name>.nii.gz, else <dir>/<name>.nii; "" when neither exists.
std::string nifti_in(const fs::path& dir, const std::string& name) {
  for (const char* ext : {".nii.gz", ".nii"}) {
    const fs::path p = dir / (name + ext);
    if (path_kind(p) == PathKind::kFile) return p.string();
  }
  return "";
}

const char* const kLabelSuffixes[] = {"_seg", "_label", "_labels", "_mask"};

// `names`: what the subjects are named after, for the message.
void check_unique_subjects(const std::vector<VolumeSource>& sources, const std::string& flag,
                           const std::string& names) {
  std::set<std::string> seen;
  for (const auto& s : sources) {
    if (!seen.insert(s.subject).second) {
      throw UserError(flag + ": two volumes are named '" + s.subject +
                      "'; subjects must have distinct " + names);
    }
  }
}

// The folder's own name, also for "dir/", "." or "..".
std::string folder_name(const std::string& folder) {
  std::error_code ec;
  fs::path p = fs::absolute(folder, ec).lexically_normal();
  if (ec) p = fs::path(folder).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// The last 8 digits of a UID: short, and distinct for the series of one study in practice.
std::string short_uid(const std::string& uid) {
  std::string digits;
  for (char c : uid) {
    if (c >= '0' && c <= '9') digits += c;
  }
  return digits.size() > 8 ? digits.substr(digits.size() - 8) : digits;
}

// <folder> for a folder of one series, else <folder>_<SeriesNumber or short UID> each.
std::vector<std::string> series_subjects(const std::vector<io::DicomSeries>& series,
                                         const std::string& folder) {
  const std::string base = folder_name(folder);
  if (series.size() == 1) return {base};
  std::map<std::string, int> uses;
  for (const auto& s : series) ++uses[s.number];
  std::vector<std::string> out;
  for (const auto& s : series) {
    const bool by_number = !s.number.empty() && uses[s.number] == 1;
    out.push_back(base + "_" + (by_number ? s.number : short_uid(s.uid)));
  }
  return out;
}

// "1.2.3 (SeriesNumber 2, 40 files), ..." for a message.
std::string series_list(const std::vector<io::DicomSeries>& series) {
  std::string out;
  for (const auto& s : series) {
    out += (out.empty() ? "" : ", ") + s.uid + " (SeriesNumber " +
           (s.number.empty() ? "none" : s.number) + ", " + std::to_string(s.files.size()) +
           " files)";
  }
  return out;
}

// A volume file named by --volume, with its --label file ("" for none).
VolumeSource volume_file_source(const fs::path& path, const std::string& label) {
  if (!label.empty() && path_kind(label) != PathKind::kFile) {
    throw UserError("--label: '" + label + "' does not exist or is not a file");
  }
  return {volume_stem(path.string()), path.string(), label, std::nullopt};
}

// The stem of the volume that a file of stem `stem` labels (<stem>_seg, _label, _labels or
// _mask); "" when the file is a volume.
std::string labelled_stem(const std::string& stem) {
  for (const char* suffix : kLabelSuffixes) {
    if (ends_with(stem, suffix) && stem.size() > std::string(suffix).size()) {
      return stem.substr(0, stem.size() - std::string(suffix).size());
    }
  }
  return "";
}

// The volumes of a folder named by --volume, sorted by stem, each with the label file beside it.
std::vector<VolumeSource> volume_folder_sources(const fs::path& path) {
  std::map<std::string, std::string> volumes;  // stem -> path, sorted
  std::map<std::string, std::string> label_of;
  for (const auto& entry : list_folder(path)) {
    if (!io::is_nifti_file(entry.string()) || path_kind(entry) != PathKind::kFile) continue;
    const std::string stem = volume_stem(entry.string());
    const std::string labelled = labelled_stem(stem);
    if (labelled.empty()) {
      volumes[stem] = entry.string();
    } else {
      label_of[labelled] = entry.string();
    }
  }
  if (volumes.empty()) {
    throw UserError("--volume: folder '" + path.string() + "' holds no .nii or .nii.gz volume");
  }
  std::vector<VolumeSource> out;
  for (const auto& [stem, file] : volumes) {
    const auto it = label_of.find(stem);
    out.push_back({stem, file, it == label_of.end() ? "" : it->second, std::nullopt});
  }
  return out;
}

}  // namespace

io::Volume read_source_image(const VolumeSource& source) {
  return source.dicom ? io::read_dicom_series(*source.dicom) : io::read_nifti(source.image);
}

std::string volume_stem(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".nii.gz", ".NII.GZ", ".nii", ".NII", ".hdr", ".HDR"}) {
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::string(ext).size());
  }
  return name;
}

std::vector<VolumeSource> find_brats_subjects(const std::string& root,
                                              const std::string& modality) {
  static const std::set<std::string> kModalities = {"flair", "t1", "t1ce", "t2"};
  if (!kModalities.count(modality)) {
    throw UserError("--modality: '" + modality + "' is not a BraTS modality; expected one of " +
                    "flair|t1|t1ce|t2");
  }
  if (path_kind(root) != PathKind::kDirectory) {
    throw UserError("--from: '" + root + "' is not a folder (expected BraTS2021_Training_Data)");
  }
  std::vector<VolumeSource> out;
  for (const auto& entry : list_folder(root)) {
    if (path_kind(entry) != PathKind::kDirectory) continue;
    const std::string subject = entry.filename().string();
    const std::string image = nifti_in(entry, subject + "_" + modality);
    if (image.empty()) {
      // A folder of another kind (no BraTS file at all) is skipped; a subject missing one is not.
      if (nifti_in(entry, subject + "_seg").empty()) continue;
      throw UserError("BraTS subject '" + entry.string() + "' has no " + subject + "_" + modality +
                      ".nii.gz");
    }
    const std::string label = nifti_in(entry, subject + "_seg");
    if (label.empty()) {
      throw UserError("BraTS subject '" + entry.string() + "' has no " + subject +
                      "_seg.nii.gz (training subjects come with their segmentation)");
    }
    out.push_back({subject, image, label, std::nullopt});
  }
  if (out.empty()) {
    throw UserError("--from: '" + root + "' holds no BraTS subject folder (looked for <S>/<S>_" +
                    modality + ".nii.gz with <S>/<S>_seg.nii.gz)");
  }
  std::sort(out.begin(), out.end(),
            [](const VolumeSource& a, const VolumeSource& b) { return a.subject < b.subject; });
  return out;
}

std::vector<VolumeSource> find_volumes(const std::vector<std::string>& paths,
                                       const std::vector<std::string>& labels) {
  if (!labels.empty() && labels.size() != paths.size()) {
    throw UserError("--label: " + std::to_string(labels.size()) + " labels for " +
                    std::to_string(paths.size()) + " --volume paths; give one per volume or none");
  }
  std::vector<VolumeSource> out;
  for (size_t i = 0; i < paths.size(); ++i) {
    const fs::path path(paths[i]);
    const PathKind kind = path_kind(path);
    if (kind == PathKind::kFile) {
      out.push_back(volume_file_source(path, labels.empty() ? "" : labels[i]));
      continue;
    }
    if (kind != PathKind::kDirectory) {
      throw UserError("--volume: '" + path.string() + "' does not exist");
    }
    if (!labels.empty()) {
      throw UserError("--volume: '" + path.string() +
                      "' is a folder; --label pairs labels with volume files only");
    }
    for (auto& source : volume_folder_sources(path)) out.push_back(std::move(source));
  }
  check_unique_subjects(out, "--volume", "file names");
  return out;
}

std::vector<VolumeSource> find_dicom_volumes(const std::vector<std::string>& folders,
                                             const std::vector<std::string>& labels) {
  if (!labels.empty() && labels.size() != folders.size()) {
    throw UserError("--label: " + std::to_string(labels.size()) + " labels for " +
                    std::to_string(folders.size()) +
                    " --dicom folders; give one per folder or none");
  }
  std::vector<VolumeSource> out;
  for (size_t i = 0; i < folders.size(); ++i) {
    auto found = with_key("--dicom", [&] { return io::find_dicom_series(folders[i]); });
    const std::string label = labels.empty() ? "" : labels[i];
    if (!label.empty() && found.series.size() != 1) {
      throw UserError("--label: '" + label + "' would label '" + folders[i] + "', which holds " +
                      std::to_string(found.series.size()) + " DICOM series (" +
                      series_list(found.series) +
                      "); a label pairs with a folder of exactly one series");
    }
    if (!label.empty() && path_kind(label) != PathKind::kFile) {
      throw UserError("--label: '" + label + "' does not exist or is not a file");
    }
    const auto subjects = series_subjects(found.series, folders[i]);
    for (size_t j = 0; j < found.series.size(); ++j) {
      out.push_back({subjects[j], folders[i], label, std::move(found.series[j])});
    }
  }
  check_unique_subjects(out, "--dicom", "folder names");
  return out;
}

}  // namespace qfae::data
