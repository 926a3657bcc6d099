// Internal: one reader per dataset layout, the detection of `auto`, and the small folder helpers
// they share. Used by dataset.cpp only.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "qfae/data/dataset.h"

namespace qfae::data::detail {

namespace fs = std::filesystem;

// What a reader found; dataset.cpp adds the validation split and the final checks.
struct RawIndex {
  std::vector<Sample> train, val, test;
  std::vector<std::string> notes;
  std::vector<SkippedImage> skipped;  // left out under data.on_bad_image: skip
};

// Layout name and the reason it was chosen, or "" with `looked_for` filled when nothing matched.
std::string detect_layout(const config::DataConfig& cfg, std::string* reason,
                          std::vector<std::string>* looked_for);

RawIndex read_bmad(const fs::path& root);  // also RESC's spellings
RawIndex read_isic(const fs::path& root);
RawIndex read_rsna(const fs::path& root);
// The RSNA Pneumonia Detection Challenge folder as distributed (layout_rsna_dicom.cpp).
RawIndex read_rsna_dicom(const config::DataConfig& cfg, uint64_t seed);
RawIndex read_brats(const fs::path& root);
RawIndex read_folder(const config::DataConfig& cfg, uint64_t seed);

// --- helpers (data/listing.h underneath: a path that cannot be looked at or a folder that cannot
// be listed is a UserError naming it, never "absent") ---
std::string lower(std::string s);
// A CSV line's cells, split at commas, each without surrounding blanks and quotes.
std::vector<std::string> split_csv_line(const std::string& line);
// The child of `dir` named like one of `names` (case-insensitive; an exact match wins), "" if none.
fs::path find_child(const fs::path& dir, const std::vector<std::string>& names,
                    bool want_dir = true);
// Children of `dir` whose lower-cased name contains `part`, sorted.
std::vector<fs::path> children_containing(const fs::path& dir, const std::string& part,
                                          bool want_dir);
bool is_dir(const fs::path& p);   // false for "" and missing paths
bool is_file(const fs::path& p);  // a regular file (following links)
// Image files under `dir` and all its sub-folders, sorted by path (broken links included).
std::vector<std::string> list_images_recursive(const fs::path& dir);
// Mask files of `dirs` by stem ("x" for x.png; "x_mask.png" is also filed under "x").
std::map<std::string, std::string> masks_by_stem(const std::vector<fs::path>& dirs);
// The samples for `images` with `label`, masks matched by stem (after `rename` of the stem).
std::vector<Sample> make_samples(const std::vector<std::string>& images, int label,
                                 const std::map<std::string, std::string>& masks,
                                 const std::function<std::string(const std::string&)>& rename = {});
// Moves round(ratio * groups) groups of `from` (grouped by subject, else by image) to `to`,
// chosen with `seed`; both keep their sorted order.
void split_off(std::vector<Sample>& from, std::vector<Sample>& to, double ratio, uint64_t seed);

}  // namespace qfae::data::detail
