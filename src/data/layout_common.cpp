// Layout detection for data.layout = auto, the generic `folder` layout, and folder helpers (on
// data/listing.h: a folder that cannot be read is an error naming it, never an empty folder).
#include <algorithm>
#include <cctype>
#include <sstream>

#include "layouts.h"
#include "qfae/data/listing.h"
#include "qfae/data/random.h"
#include "qfae/util/error.h"

namespace qfae::data {

namespace fs = std::filesystem;

std::vector<std::string> list_images(const std::string& dir) {
  if (path_kind(dir) != PathKind::kDirectory) return {};
  return list_image_files(dir, /*recursive=*/false);
}

namespace detail {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_dir(const fs::path& p) { return !p.empty() && path_kind(p) == PathKind::kDirectory; }

bool is_file(const fs::path& p) { return !p.empty() && path_kind(p) == PathKind::kFile; }

fs::path find_child(const fs::path& dir, const std::vector<std::string>& names, bool want_dir) {
  if (!is_dir(dir)) return {};
  const auto entries = list_folder(dir);
  auto kind_ok = [&](const fs::path& p) { return want_dir ? is_dir(p) : is_file(p); };
  for (const auto& name : names) {
    for (const auto& p : entries) {
      if (p.filename() == name && kind_ok(p)) return p;
    }
  }
  for (const auto& name : names) {
    for (const auto& p : entries) {
      if (lower(p.filename().string()) == lower(name) && kind_ok(p)) return p;
    }
  }
  return {};
}

std::vector<fs::path> children_containing(const fs::path& dir, const std::string& part,
                                          bool want_dir) {
  std::vector<fs::path> out;
  if (!is_dir(dir)) return out;
  for (const auto& p : list_folder(dir)) {
    const bool kind_ok = want_dir ? is_dir(p) : is_file(p);
    if (kind_ok && lower(p.filename().string()).find(lower(part)) != std::string::npos) {
      out.push_back(p);
    }
  }
  return out;
}

std::vector<std::string> list_images_recursive(const fs::path& dir) {
  if (!is_dir(dir)) return {};
  return list_image_files(dir, /*recursive=*/true);
}

std::map<std::string, std::string> masks_by_stem(const std::vector<fs::path>& dirs) {
  std::map<std::string, std::string> exact, suffixed;
  for (const auto& dir : dirs) {
    for (const auto& path : list_images(dir.string())) {
      const std::string stem = fs::path(path).stem().string();
      exact.emplace(stem, path);  // first folder wins
      const std::string kSuffix = "_mask";
      if (stem.size() > kSuffix.size() &&
          stem.compare(stem.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
        suffixed.emplace(stem.substr(0, stem.size() - kSuffix.size()), path);
      }
    }
  }
  for (const auto& [stem, path] : suffixed) exact.emplace(stem, path);
  return exact;
}

std::vector<Sample> make_samples(const std::vector<std::string>& images, int label,
                                 const std::map<std::string, std::string>& masks,
                                 const std::function<std::string(const std::string&)>& rename) {
  std::vector<Sample> out;
  for (const auto& image : images) {
    Sample s;
    s.image = image;
    s.label = label;
    const std::string stem = fs::path(image).stem().string();
    const auto it = masks.find(rename ? rename(stem) : stem);
    if (it != masks.end()) s.mask = it->second;
    out.push_back(std::move(s));
  }
  return out;
}

void split_off(std::vector<Sample>& from, std::vector<Sample>& to, double ratio, uint64_t seed) {
  std::vector<std::string> groups;
  auto key = [](const Sample& s) { return s.subject.empty() ? s.image : s.subject; };
  for (const auto& s : from) groups.push_back(key(s));
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  const auto n = static_cast<int64_t>(groups.size());
  if (ratio <= 0 || n < 2) return;
  const int64_t take =
      std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(ratio * n)), 1, n - 1);
  const auto order = permutation(n, seed);
  std::vector<std::string> chosen;
  for (int64_t i = 0; i < take; ++i) chosen.push_back(groups[order[i]]);
  std::sort(chosen.begin(), chosen.end());
  std::vector<Sample> keep;
  for (auto& s : from) {
    auto& dst = std::binary_search(chosen.begin(), chosen.end(), key(s)) ? to : keep;
    dst.push_back(std::move(s));
  }
  from = std::move(keep);
}

std::string trim_cell(std::string s) {
  const char* kSpace = " \t\r\n\"'";
  s.erase(0, s.find_first_not_of(kSpace));
  s.erase(s.find_last_not_of(kSpace) + 1);
  return s;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) cells.push_back(trim_cell(cell));
  if (!line.empty() && line.back() == ',') cells.emplace_back();  // a last, empty field
  return cells;
}

std::string detect_layout(const config::DataConfig& cfg, std::string* reason,
                          std::vector<std::string>* looked_for) {
  const fs::path root = cfg.root;
  if (!cfg.normal_dir.empty()) {
    *reason = "data.normal_dir is set";
    return "folder";
  }
  if (is_file(root / "data.json") && is_dir(root / "images")) {
    *reason = "found data.json and images/ (MedIAnomaly RSNA style)";
    return "rsna";
  }
  if (!children_containing(root, "train_labels", /*want_dir=*/false).empty() &&
      !children_containing(root, "train_images", /*want_dir=*/true).empty()) {
    *reason = "found *train_labels.csv and *train_images/ (the RSNA Pneumonia Detection "
              "Challenge as distributed)";
    return "rsna-dicom";
  }
  if (!children_containing(root, "training_input", /*want_dir=*/true).empty()) {
    *reason = "found a *Training_Input folder (ISIC2018 Task 3 style)";
    return "isic";
  }
  const fs::path test = find_child(root, {"test"});
  if (is_dir(find_child(root, {"train"})) &&
      (is_dir(find_child(test, {"tumor"})) || is_dir(find_child(test, {"annotation"})))) {
    *reason = "found train/ and test/tumor or test/annotation (MedIAnomaly BraTS2021 style)";
    return "brats";
  }
  const fs::path train = find_child(root, {"train"});
  if (is_dir(find_child(train, {"train"}))) {
    *reason = "found Train/train (BMAD RESC spelling)";
    return "resc";
  }
  if (is_dir(find_child(train, {"good"}))) {
    *reason = "found train/good (BMAD style)";
    return "bmad";
  }
  *looked_for = {"bmad: train/good (with test/{good,Ungood})",
                 "resc: Train/train/good (with Test/test/{good,Ungood})",
                 "isic: ISIC2018_Task3_Training_Input + ISIC2018_Task3_Training_GroundTruth csv",
                 "rsna: data.json + images/",
                 "rsna-dicom: stage_2_train_images/ + stage_2_train_labels.csv + "
                 "stage_2_detailed_class_info.csv",
                 "brats: train/ + test/{normal,tumor,annotation}",
                 "folder: set data.normal_dir (data.layout: folder)"};
  return "";
}

RawIndex read_folder(const config::DataConfig& cfg, uint64_t seed) {
  auto resolve = [&](const std::string& dir) {
    const fs::path p(dir);
    return p.is_absolute() ? p : fs::path(cfg.root) / p;
  };
  auto require_dir = [&](const std::string& key, const std::string& dir) {
    if (!is_dir(resolve(dir))) {
      throw UserError("data." + key + ": '" + resolve(dir).string() +
                      "' does not exist or is not a folder");
    }
  };
  RawIndex r;
  require_dir("normal_dir", cfg.normal_dir);
  r.train = make_samples(list_images(resolve(cfg.normal_dir).string()), 0, {});
  std::vector<Sample> test_normal;
  if (!cfg.normal_test_dir.empty()) {
    require_dir("normal_test_dir", cfg.normal_test_dir);
    test_normal = make_samples(list_images(resolve(cfg.normal_test_dir).string()), 0, {});
  } else {
    split_off(r.train, test_normal, cfg.normal_test_ratio, mix_seed(seed ^ 0x7e577e57ULL));
    r.notes.push_back("held out " + std::to_string(test_normal.size()) +
                      " normal images for the test set (data.normal_test_ratio " +
                      std::to_string(cfg.normal_test_ratio) + ")");
  }
  std::map<std::string, std::string> masks;
  if (!cfg.mask_dir.empty()) {
    require_dir("mask_dir", cfg.mask_dir);
    masks = masks_by_stem({resolve(cfg.mask_dir)});
  }
  std::vector<Sample> abnormal;
  if (!cfg.abnormal_dir.empty()) {
    require_dir("abnormal_dir", cfg.abnormal_dir);
    abnormal = make_samples(list_images(resolve(cfg.abnormal_dir).string()), 1, masks);
  }
  for (auto& s : test_normal) r.test.push_back(std::move(s));
  for (auto& s : abnormal) r.test.push_back(std::move(s));
  return r;
}

}  // namespace detail
}  // namespace qfae::data
