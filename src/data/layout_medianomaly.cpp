// MedIAnomaly-style layout readers: ISIC2018 Task 3 (images + one-hot ground-truth CSV, NV =
// normal), RSNA (images/ + data.json) and BraTS2021 (train/, test/{normal,tumor,annotation}).
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "layouts.h"
#include "qfae/data/listing.h"
#include "qfae/util/error.h"

namespace qfae::data::detail {
namespace {

// The ground-truth CSV: a *<part>*.csv in root or inside a *<part>* folder of root.
fs::path find_csv(const fs::path& root, const std::string& part) {
  std::vector<fs::path> found;
  for (const auto& f : children_containing(root, part, /*want_dir=*/false)) found.push_back(f);
  for (const auto& d : children_containing(root, part, /*want_dir=*/true)) {
    for (const auto& f : children_containing(d, ".csv", /*want_dir=*/false)) found.push_back(f);
  }
  for (const auto& f : found) {
    if (lower(f.extension().string()) == ".csv") return f;
  }
  return {};
}

// ISIC rows (image id, one-hot classes) -> samples, NV = normal; images looked up by stem.
std::vector<Sample> read_isic_split(const fs::path& input_dir, const fs::path& csv) {
  std::ifstream in(csv);
  if (!in) {
    throw UserError("cannot read ISIC ground truth '" + csv.string() + "': " + errno_reason());
  }
  std::string line;
  std::getline(in, line);
  const auto header = split_csv_line(line);
  int nv = -1;
  for (size_t i = 0; i < header.size(); ++i) nv = lower(header[i]) == "nv" ? int(i) : nv;
  if (header.size() < 2 || nv < 1) {
    throw UserError("ISIC ground truth '" + csv.string() +
                    "': expected a header 'image,MEL,NV,BCC,AKIEC,BKL,DF,VASC' with an NV column");
  }
  std::map<std::string, std::string> by_stem;
  for (const auto& path : list_images(input_dir.string())) {
    by_stem.emplace(fs::path(path).stem().string(), path);
  }
  std::vector<Sample> normal, abnormal, *dst;
  std::vector<std::string> missing;
  while (std::getline(in, line)) {
    const auto cells = split_csv_line(line);
    if (cells.empty() || cells[0].empty()) continue;
    if (static_cast<int>(cells.size()) <= nv) {
      throw UserError("ISIC ground truth '" + csv.string() + "': row '" + line +
                      "' has no NV value");
    }
    const auto it = by_stem.find(fs::path(cells[0]).stem().string());
    if (it == by_stem.end()) {
      missing.push_back(cells[0]);
      continue;
    }
    const bool is_normal = std::atof(cells[nv].c_str()) > 0.5;
    dst = is_normal ? &normal : &abnormal;
    dst->push_back(Sample{it->second, is_normal ? 0 : 1, "", "", {}, ""});
  }
  if (!missing.empty()) {
    throw UserError("ISIC ground truth '" + csv.string() + "' lists " +
                    std::to_string(missing.size()) + " images not found in '" + input_dir.string() +
                    "' (first: " + missing.front() + ")");
  }
  auto by_path = [](const Sample& a, const Sample& b) { return a.image < b.image; };
  std::sort(normal.begin(), normal.end(), by_path);
  std::sort(abnormal.begin(), abnormal.end(), by_path);
  normal.insert(normal.end(), abnormal.begin(), abnormal.end());
  return normal;
}

std::string counts(const std::vector<Sample>& v) {
  size_t bad = 0;
  for (const auto& s : v) bad += s.label;
  return std::to_string(v.size() - bad) + " normal, " + std::to_string(bad) + " anomalous";
}

std::string brats_subject(const fs::path& image, const fs::path& train_dir) {
  if (image.parent_path() != train_dir) return image.parent_path().filename().string();
  static const std::regex kId(R"(^(BraTS[0-9]*_[0-9]+))", std::regex::icase);
  std::smatch m;
  const std::string name = image.filename().string();
  return std::regex_search(name, m, kId) ? m[1].str() : "";
}

std::string flair_to_seg(const std::string& stem) {
  return std::regex_replace(stem, std::regex("flair"), "seg");
}

// normal/ and tumor/ of a BraTS split, masks from annotation/ (flair -> seg in the name).
std::vector<Sample> read_brats_split(const fs::path& split) {
  const auto masks = masks_by_stem({find_child(split, {"annotation", "annotations"})});
  auto out =
      make_samples(list_images(find_child(split, {"normal"}).string()), 0, masks, flair_to_seg);
  const auto tumor = make_samples(list_images(find_child(split, {"tumor", "abnormal"}).string()), 1,
                                  masks, flair_to_seg);
  out.insert(out.end(), tumor.begin(), tumor.end());
  return out;
}

}  // namespace

RawIndex read_isic(const fs::path& root) {
  RawIndex r;
  const auto inputs = children_containing(root, "training_input", /*want_dir=*/true);
  const fs::path csv = find_csv(root, "training_groundtruth");
  if (inputs.empty() || csv.empty()) {
    throw UserError("data.root: '" + root.string() +
                    "' is not an ISIC2018 Task 3 folder: expected ISIC2018_Task3_Training_Input/ "
                    "and ISIC2018_Task3_Training_GroundTruth(.csv or folder with the csv)");
  }
  for (auto& s : read_isic_split(inputs.front(), csv)) {
    if (s.label == 0) r.train.push_back(std::move(s));
  }
  r.notes.push_back("train (" + inputs.front().string() + ", NV rows of " + csv.string() +
                    "): " + std::to_string(r.train.size()) + " normal images");
  const std::pair<const char*, std::vector<Sample>*> splits[] = {{"validation", &r.val},
                                                                 {"test", &r.test}};
  for (const auto& [name, dst] : splits) {
    const auto in = children_containing(root, std::string(name) + "_input", true);
    if (in.empty()) continue;
    const fs::path gt = find_csv(root, std::string(name) + "_groundtruth");
    if (gt.empty()) {
      r.notes.push_back(std::string(name) + " images found but no ground-truth csv: not used");
      continue;
    }
    *dst = read_isic_split(in.front(), gt);
    r.notes.push_back(std::string(name) + " (" + in.front().string() + "): " + counts(*dst));
  }
  return r;
}

RawIndex read_rsna(const fs::path& root) {
  const fs::path json_path = root / "data.json";
  nlohmann::json j;
  std::ifstream in(json_path);
  if (!in) throw UserError("cannot read '" + json_path.string() + "': " + errno_reason());
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw UserError("cannot parse '" + json_path.string() + "': " + e.what());
  }
  const fs::path images = root / "images";
  auto list = [&](const char* split, const char* label, bool required) {
    std::vector<std::string> out;
    if (!j.contains(split) || !j[split].contains(label)) {
      if (!required) return out;
      throw UserError("'" + json_path.string() + "' has no \"" + split + "\": {\"" + label +
                      "\": [...]} list of image names");
    }
    for (const auto& name : j[split][label]) {
      if (!name.is_string()) {
        throw UserError("'" + json_path.string() + "': " + split + "." + label +
                        " must be a list of file names");
      }
      const fs::path p = images / name.get<std::string>();
      if (!is_file(p) && !is_broken_link(p)) {  // a broken link fails when read, naming it
        throw UserError("'" + json_path.string() + "' lists '" + name.get<std::string>() +
                        "' but '" + p.string() + "' does not exist");
      }
      out.push_back(p.string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  RawIndex r;
  r.train = make_samples(list("train", "0", true), 0, {});
  r.notes.push_back("train (data.json train.0): " + std::to_string(r.train.size()) + " normal");
  for (const auto& [key, dst] : std::vector<std::pair<const char*, std::vector<Sample>*>>{
           {"test", &r.test}, {"val", &r.val}, {"valid", &r.val}}) {
    if (!j.contains(key) || !dst->empty()) continue;
    *dst = make_samples(list(key, "0", false), 0, {});
    const auto bad = make_samples(list(key, "1", false), 1, {});
    dst->insert(dst->end(), bad.begin(), bad.end());
    r.notes.push_back(std::string(key) + " (data.json): " + counts(*dst));
  }
  return r;
}

RawIndex read_brats(const fs::path& root) {
  RawIndex r;
  const fs::path train = find_child(root, {"train"});
  for (const auto& path : list_images_recursive(train)) {
    r.train.push_back(Sample{path, 0, "", brats_subject(path, train), {}, ""});
  }
  if (r.train.empty()) {
    throw UserError("data.root: '" + root.string() + "' has no images under train/ (BraTS layout)");
  }
  r.notes.push_back("train (" + train.string() + "): " + std::to_string(r.train.size()) +
                    " normal images");
  const fs::path test = find_child(root, {"test"});
  if (is_dir(test)) {
    r.test = read_brats_split(test);
    r.notes.push_back("test (" + test.string() + "): " + counts(r.test));
  }
  const fs::path val = find_child(root, {"valid", "val"});
  if (is_dir(val)) {
    r.val = read_brats_split(val);
    r.notes.push_back("val (" + val.string() + "): " + counts(r.val));
  }
  return r;
}

}  // namespace qfae::data::detail
