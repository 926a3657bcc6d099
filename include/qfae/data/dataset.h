// Dataset indexing: finds a dataset folder's images in one of the layouts of docs/model.md §7 and
// splits them into train / val / test lists of samples. No pixels are read here.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "qfae/config/config.h"

namespace qfae::data {

// A rectangle of an image's pixels: columns [x, x + width), rows [y, y + height); a pixel belongs
// to it when its centre does.
struct Box {
  double x = 0, y = 0, width = 0, height = 0;
};

struct Sample {
  std::string image;    // path of the image file
  int label = 0;        // 0 normal, 1 anomalous
  std::string mask;     // path of the pixel mask, "" = no mask
  std::string subject;  // patient/volume id when the layout tells it ("" otherwise)
  std::vector<Box> boxes;  // a mask given as boxes instead (RSNA): their union is anomalous
  std::string category;    // the dataset's own class name where it has several ("Lung Opacity")

  bool has_mask() const { return !mask.empty() || !boxes.empty(); }
};

// A sample dropped under data.on_bad_image: skip.
struct SkippedImage {
  std::string path;    // the sample's image
  std::string reason;  // the error message (names the image or its mask)
};

struct DatasetIndex {
  std::string layout;  // the layout read: bmad|resc|isic|rsna|rsna-dicom|brats|folder
  std::vector<Sample> train, val, test;
  std::vector<std::string> notes;  // what was found and decided, one line each (also logged)
  // Images the index itself left out under data.on_bad_image: skip (a label row whose image is
  // missing, an image no label row names); with `fail` these stop it with a UserError instead.
  std::vector<SkippedImage> skipped;
};

// Reads cfg.root in layout cfg.layout ("auto" detects it and says why). Train holds normal images
// only. When the layout has no validation split, val is taken from the training normals:
// round(val_ratio * groups) groups chosen with `seed` (a group is a subject when known, otherwise
// one image), so the split is deterministic and disjoint from train. `test_for_val` makes val a
// copy of the test set instead (model selection on test: only when the user asks for it).
// Samples are in sorted order (normals before anomalies within a split).
// UserError when the root is missing, no layout matches (listing what was looked for), a folder
// cannot be read ("'<path>': permission denied"), or the layout's files are inconsistent (naming
// them).
DatasetIndex index_dataset(const config::DataConfig& cfg, uint64_t seed, bool test_for_val = false);

// The split as a CSV table, one row per sample of train, val and test in that order:
// split,image,label,subject,category,mask,boxes (boxes as "x y width height" joined by ";"), so
// that another tool can take exactly the same images. Written as split.csv in every run folder.
std::string split_table(const DatasetIndex& index);

// The image files (is_image_file) directly inside `dir`, sorted by name, links that lead nowhere
// included (data/listing.h); [] when `dir` is absent, UserError naming it when it cannot be read.
std::vector<std::string> list_images(const std::string& dir);

}  // namespace qfae::data
