// index_dataset: picks the layout reader, then settles the validation split and checks the result.
#include "qfae/data/dataset.h"

#include <cstdio>
#include <sstream>

#include "layouts.h"
#include "qfae/data/random.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace qfae::data {

using namespace detail;

DatasetIndex index_dataset(const config::DataConfig& cfg, uint64_t seed, bool test_for_val) {
  auto log = qfae::log("data");
  if (cfg.layout != "folder" && (cfg.root.empty() || !is_dir(cfg.root))) {
    throw UserError("data.root: '" + cfg.root + "' does not exist or is not a folder");
  }
  DatasetIndex index;
  index.layout = cfg.layout;
  if (cfg.layout == "auto") {
    std::string reason;
    std::vector<std::string> looked_for;
    index.layout = detect_layout(cfg, &reason, &looked_for);
    if (index.layout.empty()) {
      std::string list;
      for (const auto& l : looked_for) list += "\n  " + l;
      throw UserError("data.root: '" + cfg.root +
                      "' matches no known dataset layout (data.layout: auto). Looked for:" + list +
                      "\nSet data.layout explicitly or arrange the folder like one of these.");
    }
    index.notes.push_back("layout " + index.layout + " detected: " + reason);
  } else {
    index.notes.push_back("layout " + index.layout + " (data.layout)");
  }

  RawIndex raw;
  if (index.layout == "bmad" || index.layout == "resc") {
    raw = read_bmad(cfg.root);
  } else if (index.layout == "isic") {
    raw = read_isic(cfg.root);
  } else if (index.layout == "rsna") {
    raw = read_rsna(cfg.root);
  } else if (index.layout == "rsna-dicom") {
    raw = read_rsna_dicom(cfg, seed);
  } else if (index.layout == "brats") {
    raw = read_brats(cfg.root);
  } else if (index.layout == "folder") {
    raw = read_folder(cfg, seed);
  } else {
    throw UserError("data.layout: '" + cfg.layout +
                    "' is not valid; expected one of auto|bmad|resc|isic|rsna|rsna-dicom|brats|folder");
  }
  index.notes.insert(index.notes.end(), raw.notes.begin(), raw.notes.end());
  index.skipped = std::move(raw.skipped);
  if (!index.skipped.empty()) {
    index.notes.push_back(std::to_string(index.skipped.size()) +
                          " images left out (data.on_bad_image: skip), e.g. " +
                          index.skipped.front().reason);
  }
  index.train = std::move(raw.train);
  index.test = std::move(raw.test);
  if (index.train.empty()) {
    throw UserError("data.root: '" + cfg.root + "' (layout " + index.layout +
                    ") has no training images");
  }

  if (test_for_val) {
    index.val = index.test;
    index.notes.push_back("val = the test set (" + std::to_string(index.val.size()) +
                          " images), as asked: model selection sees test data");
  } else if (!raw.val.empty()) {
    index.val = std::move(raw.val);
  } else {
    split_off(index.train, index.val, cfg.val_ratio, mix_seed(seed ^ 0x5a11da7eULL));
    index.notes.push_back("val: " + std::to_string(index.val.size()) +
                          " training normals held out (data.val_ratio " +
                          std::to_string(cfg.val_ratio) + ", seed " + std::to_string(seed) + ")");
  }
  if (index.test.empty()) index.notes.push_back("no test set found");
  for (const auto& note : index.notes) log->info("{}", note);
  log->info("{} train, {} val, {} test images", index.train.size(), index.val.size(),
            index.test.size());
  return index;
}

std::string split_table(const DatasetIndex& index) {
  std::ostringstream out;
  out << "split,image,label,subject,category,mask,boxes\n";
  const std::pair<const char*, const std::vector<Sample>*> splits[] = {
      {"train", &index.train}, {"val", &index.val}, {"test", &index.test}};
  for (const auto& [name, samples] : splits) {
    for (const auto& s : *samples) {
      std::string boxes;
      for (const auto& b : s.boxes) {
        char text[128];
        std::snprintf(text, sizeof(text), "%s%.17g %.17g %.17g %.17g", boxes.empty() ? "" : ";",
                      b.x, b.y, b.width, b.height);
        boxes += text;
      }
      out << name << "," << csv_field(s.image) << "," << s.label << "," << csv_field(s.subject)
          << "," << csv_field(s.category) << "," << csv_field(s.mask) << "," << boxes << "\n";
    }
  }
  return out.str();
}

}  // namespace qfae::data
