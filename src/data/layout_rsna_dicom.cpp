// The RSNA Pneumonia Detection Challenge as distributed: stage_2_train_images/<patientId>.dcm,
// stage_2_train_labels.csv (one row per box) and stage_2_detailed_class_info.csv; boxes become
// masks and the split is drawn by patient with the run's seed.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "layouts.h"
#include "qfae/data/listing.h"
#include "qfae/data/random.h"
#include "qfae/util/error.h"

namespace qfae::data::detail {
namespace {

const char* const kNormal = "Normal";
const char* const kOpacity = "Lung Opacity";
const char* const kNotNormal = "No Lung Opacity / Not Normal";

struct Patient {
  std::string category;  // one of the three classes
  std::vector<Box> boxes;
  std::string image;  // path, "" until found
};

// A CSV file as rows of cells with its header's column positions looked up by name.
class CsvTable {
 public:
  explicit CsvTable(const fs::path& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw UserError("cannot read '" + path.string() + "': " + errno_reason());
    std::string line;
    if (!std::getline(in, line)) throw UserError("'" + path.string() + "' is empty");
    header_ = split_csv_line(line);
    while (std::getline(in, line)) {
      ++line_no_;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      rows_.push_back({line_no_ + 1, split_csv_line(line)});
    }
  }
  // Position of the column `name` (case-insensitive); UserError naming the file when absent.
  size_t column(const std::string& name) const {
    for (size_t i = 0; i < header_.size(); ++i) {
      if (lower(header_[i]) == lower(name)) return i;
    }
    throw UserError("'" + path_.string() + "' has no column '" + name + "' in its header");
  }
  struct Row {
    int64_t line;
    std::vector<std::string> cells;
  };
  const std::vector<Row>& rows() const { return rows_; }
  std::string where(const Row& r) const {
    return "'" + path_.string() + "' line " + std::to_string(r.line);
  }
  const std::string& cell(const Row& r, size_t col) const {
    if (col >= r.cells.size()) {
      throw UserError(where(r) + " has " + std::to_string(r.cells.size()) +
                      " fields; expected " + std::to_string(header_.size()));
    }
    return r.cells[col];
  }

 private:
  fs::path path_;
  std::vector<std::string> header_;
  std::vector<Row> rows_;
  int64_t line_no_ = 0;
};

double box_number(const CsvTable& t, const CsvTable::Row& r, size_t col, const char* name) {
  const std::string& text = t.cell(r, col);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) {
    throw UserError(t.where(r) + ": " + name + " '" + text + "' is not a number");
  }
  return v;
}

// The one file of `root` whose name contains `part` and ends in .csv.
fs::path rsna_csv(const fs::path& root, const std::string& part) {
  for (const auto& f : children_containing(root, part, /*want_dir=*/false)) {
    if (lower(f.extension().string()) == ".csv") return f;
  }
  throw UserError("data.root: '" + root.string() + "' has no *" + part +
                  ".csv (layout rsna-dicom: stage_2_train_labels.csv and "
                  "stage_2_detailed_class_info.csv, as the challenge distributes them)");
}

// patientId -> class and boxes, from both CSVs, checked against each other.
std::map<std::string, Patient> read_patients(const fs::path& labels_csv,
                                             const fs::path& classes_csv) {
  std::map<std::string, Patient> patients;
  const CsvTable classes(classes_csv);
  const size_t c_id = classes.column("patientId"), c_class = classes.column("class");
  for (const auto& r : classes.rows()) {
    const std::string& id = classes.cell(r, c_id);
    const std::string& category = classes.cell(r, c_class);
    if (category != kNormal && category != kOpacity && category != kNotNormal) {
      throw UserError(classes.where(r) + ": class '" + category + "' is not one of '" + kNormal +
                      "', '" + kOpacity + "', '" + kNotNormal + "'");
    }
    auto [it, added] = patients.emplace(id, Patient{category, {}, ""});
    if (!added && it->second.category != category) {
      throw UserError(classes.where(r) + ": patient " + id + " is '" + category +
                      "' here and '" + it->second.category + "' on an earlier line");
    }
  }
  const CsvTable labels(labels_csv);
  const size_t l_id = labels.column("patientId"), l_x = labels.column("x"),
               l_y = labels.column("y"), l_w = labels.column("width"),
               l_h = labels.column("height"), l_target = labels.column("Target");
  std::set<std::string> labelled;
  for (const auto& r : labels.rows()) {
    const std::string& id = labels.cell(r, l_id);
    const auto it = patients.find(id);
    if (it == patients.end()) {
      throw UserError(labels.where(r) + ": patient " + id + " is not in '" +
                      classes_csv.string() + "'");
    }
    labelled.insert(id);
    const std::string& target = labels.cell(r, l_target);
    if (target != "0" && target != "1") {
      throw UserError(labels.where(r) + ": Target '" + target + "' is not 0 or 1");
    }
    if ((target == "1") != (it->second.category == kOpacity)) {
      throw UserError(labels.where(r) + ": patient " + id + " has Target " + target +
                      " but class '" + it->second.category + "' in '" + classes_csv.string() +
                      "'");
    }
    if (target == "0") continue;
    Box b{box_number(labels, r, l_x, "x"), box_number(labels, r, l_y, "y"),
          box_number(labels, r, l_w, "width"), box_number(labels, r, l_h, "height")};
    if (!(b.width > 0 && b.height > 0)) {
      throw UserError(labels.where(r) + ": a box of patient " + id + " has no area (width " +
                      labels.cell(r, l_w) + ", height " + labels.cell(r, l_h) + ")");
    }
    it->second.boxes.push_back(b);
  }
  for (const auto& [id, p] : patients) {
    if (!labelled.count(id)) {
      throw UserError("patient " + id + " of '" + classes_csv.string() + "' has no row in '" +
                      labels_csv.string() + "'");
    }
  }
  return patients;
}

// Moves `count` entries of `from` (chosen with `seed`) to the returned list; both stay sorted.
std::vector<Sample> draw(std::vector<Sample>& from, int64_t count, uint64_t seed) {
  const auto order = permutation(static_cast<int64_t>(from.size()), seed);
  std::vector<char> taken(from.size(), 0);
  for (int64_t i = 0; i < count; ++i) taken[order[i]] = 1;
  std::vector<Sample> out, rest;
  for (size_t i = 0; i < from.size(); ++i) (taken[i] ? out : rest).push_back(std::move(from[i]));
  from = std::move(rest);
  return out;
}

std::string pair_text(const std::vector<int64_t>& v) {
  return "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]";
}

}  // namespace

RawIndex read_rsna_dicom(const config::DataConfig& cfg, uint64_t seed) {
  const fs::path root = cfg.root;
  const bool skip = cfg.on_bad_image == "skip";
  const auto image_dirs = children_containing(root, "train_images", /*want_dir=*/true);
  if (image_dirs.empty()) {
    throw UserError("data.root: '" + root.string() +
                    "' has no *train_images folder (layout rsna-dicom: stage_2_train_images/)");
  }
  const fs::path images = image_dirs.back();  // stage_2 after stage_1 when both are there
  const fs::path labels_csv = rsna_csv(root, "train_labels");
  const fs::path classes_csv = rsna_csv(root, "detailed_class_info");
  auto patients = read_patients(labels_csv, classes_csv);
  RawIndex r;

  std::map<std::string, std::string> files;  // stem -> path
  for (const auto& path : list_images(images.string())) files.emplace(fs::path(path).stem().string(), path);
  for (auto& [id, p] : patients) {
    const auto it = files.find(id);
    if (it != files.end()) {
      p.image = it->second;
      files.erase(it);
      continue;
    }
    const std::string missing = (images / (id + ".dcm")).string();
    const std::string why = "patient " + id + " of '" + labels_csv.string() + "' has no image ('" +
                            missing + "' does not exist)";
    if (!skip) throw UserError(why + "; data.on_bad_image: skip leaves such patients out");
    r.skipped.push_back({missing, why});
  }
  for (const auto& [stem, path] : files) {
    const std::string why = "'" + path + "' is in no row of '" + labels_csv.string() + "'";
    if (!skip) {
      throw UserError(why + (files.size() > 1 ? " (nor are " + std::to_string(files.size() - 1) +
                                                    " other images)"
                                              : std::string()) +
                      "; data.on_bad_image: skip leaves such images out");
    }
    r.skipped.push_back({path, why});
  }

  const bool not_normal_counts = cfg.rsna_abnormal == "not_normal";
  std::vector<Sample> normal, anomalous;
  std::map<std::string, int64_t> per_class;
  int64_t boxes = 0, left_out = 0;
  for (auto& [id, p] : patients) {
    if (p.image.empty()) continue;
    ++per_class[p.category];
    if (p.category == kNotNormal && !not_normal_counts) {
      ++left_out;
      continue;
    }
    boxes += static_cast<int64_t>(p.boxes.size());
    (p.category == kNormal ? normal : anomalous)
        .push_back(Sample{p.image, p.category == kNormal ? 0 : 1, "", id, std::move(p.boxes),
                          p.category});
  }
  r.notes.push_back("rsna-dicom: " + std::to_string(per_class[kNormal]) + " " + kNormal + ", " +
                    std::to_string(per_class[kOpacity]) + " " + kOpacity + ", " +
                    std::to_string(per_class[kNotNormal]) + " '" + kNotNormal + "' patients (" +
                    classes_csv.string() + ", images in " + images.string() + ")");
  r.notes.push_back(not_normal_counts
                        ? std::string("'") + kNotNormal +
                              "' counts as anomalous (data.rsna_abnormal: not_normal); it has no "
                              "boxes, so no mask"
                        : std::string("'") + kNotNormal + "' is left out (" +
                              std::to_string(left_out) +
                              " patients; data.rsna_abnormal: lung_opacity)");
  r.notes.push_back("masks are the union of each " + std::string(kOpacity) + " patient's boxes (" +
                    std::to_string(boxes) + " boxes in " + labels_csv.string() +
                    "): boxes, not outlines, so pixel metrics measure box overlap");

  const auto& test = cfg.test_size;
  const auto& val = cfg.val_size;
  const int64_t n_normal = static_cast<int64_t>(normal.size());
  const int64_t n_bad = static_cast<int64_t>(anomalous.size());
  if (test[0] + val[0] >= n_normal || test[1] + val[1] > n_bad) {
    throw UserError("data.test_size " + pair_text(test) + " and data.val_size " + pair_text(val) +
                    " ask for " + std::to_string(test[0] + val[0]) + " normal and " +
                    std::to_string(test[1] + val[1]) + " anomalous patients, but '" +
                    root.string() + "' has " + std::to_string(n_normal) + " normal (some must " +
                    "be left to train on) and " + std::to_string(n_bad) + " anomalous");
  }
  const uint64_t s = mix_seed(seed ^ 0x125a4d1c0ULL);
  r.test = draw(normal, test[0], mix_seed(s ^ 1));
  auto test_bad = draw(anomalous, test[1], mix_seed(s ^ 2));
  r.val = draw(normal, val[0], mix_seed(s ^ 3));
  auto val_bad = draw(anomalous, val[1], mix_seed(s ^ 4));
  r.test.insert(r.test.end(), test_bad.begin(), test_bad.end());
  r.val.insert(r.val.end(), val_bad.begin(), val_bad.end());
  r.train = std::move(normal);
  r.notes.push_back("split by patient (seed " + std::to_string(seed) + "): test " +
                    pair_text(test) + ", val " + pair_text(val) +
                    " [normal, anomalous] (data.test_size, data.val_size), train the other " +
                    std::to_string(r.train.size()) + " normal; " +
                    std::to_string(anomalous.size()) + " anomalous patients unused");
  return r;
}

}  // namespace qfae::data::detail
