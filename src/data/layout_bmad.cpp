// BMAD-style layout reader: <split>/{good,Ungood}/img/* with masks in <split>/Ungood/label (or
// anomaly_mask), and RESC's spellings Train/train, Val/val, Test/test, Test/test_label/Ungood.
#include "layouts.h"
#include "qfae/util/error.h"

namespace qfae::data::detail {
namespace {

// `root/<name>`, or RESC's nested `root/<Name>/<name>` when that is what holds the classes.
fs::path split_dir(const fs::path& root, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const fs::path outer = find_child(root, {name});
    if (!is_dir(outer)) continue;
    const fs::path inner = find_child(outer, {name});
    if (is_dir(inner) && !is_dir(find_child(outer, {"good"}))) return inner;
    return outer;
  }
  return {};
}

// Images of one class folder: its img/ sub-folder when there is one, else the folder itself.
std::vector<std::string> class_images(const fs::path& class_dir) {
  if (!is_dir(class_dir)) return {};
  const fs::path img = find_child(class_dir, {"img", "image", "images"});
  return list_images((is_dir(img) ? img : class_dir).string());
}

std::vector<fs::path> mask_dirs(const fs::path& split, const std::string& cls) {
  std::vector<fs::path> candidates;
  const fs::path class_dir = find_child(split, {cls});
  for (const char* name : {"label", "anomaly_mask", "mask", "masks", "ground_truth"}) {
    const fs::path p = find_child(class_dir, {name});
    if (is_dir(p)) candidates.push_back(p);
  }
  // RESC: Test/test_label/Ungood next to Test/test.
  const fs::path sibling = find_child(split.parent_path(), {split.filename().string() + "_label"});
  const fs::path p = find_child(sibling, {cls});
  if (is_dir(p)) candidates.push_back(p);
  std::vector<fs::path> out;
  for (const auto& dir : candidates) {
    out.push_back(dir);
    const fs::path img = find_child(dir, {"img"});
    if (is_dir(img)) out.push_back(img);
  }
  return out;
}

// Normal then anomalous samples of one split, with a note on what was found.
std::vector<Sample> read_split(const fs::path& split, const std::string& what,
                               std::vector<std::string>* notes) {
  const auto good = make_samples(class_images(find_child(split, {"good"})), 0,
                                 masks_by_stem(mask_dirs(split, "good")));
  auto bad = make_samples(class_images(find_child(split, {"Ungood"})), 1,
                          masks_by_stem(mask_dirs(split, "Ungood")));
  size_t with_mask = 0;
  for (const auto& s : bad) with_mask += s.mask.empty() ? 0 : 1;
  notes->push_back(what + " (" + split.string() + "): " + std::to_string(good.size()) +
                   " normal, " + std::to_string(bad.size()) + " anomalous, " +
                   std::to_string(with_mask) + " of them with masks");
  std::vector<Sample> out = good;
  out.insert(out.end(), bad.begin(), bad.end());
  return out;
}

}  // namespace

RawIndex read_bmad(const fs::path& root) {
  RawIndex r;
  const fs::path train = split_dir(root, {"train"});
  if (!is_dir(find_child(train, {"good"}))) {
    throw UserError("data.root: '" + root.string() +
                    "' has no train/good (or Train/train/good) folder of normal images (BMAD "
                    "layout)");
  }
  r.train = make_samples(class_images(find_child(train, {"good"})), 0, {});
  r.notes.push_back("train (" + train.string() + "): " + std::to_string(r.train.size()) +
                    " normal images");
  if (!class_images(find_child(train, {"Ungood"})).empty()) {
    r.notes.push_back("train/Ungood is ignored: training uses normal images only");
  }
  const fs::path val = split_dir(root, {"valid", "val"});
  if (is_dir(val)) r.val = read_split(val, "val", &r.notes);
  const fs::path test = split_dir(root, {"test"});
  if (is_dir(test)) r.test = read_split(test, "test", &r.notes);
  return r;
}

}  // namespace qfae::data::detail
