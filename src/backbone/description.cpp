// Reading and checking a backbone's qfae.json (contract in scripts/lib/qfae_vit.py) straight from
// the TorchScript archive, without loading the weights.
#include "qfae/backbone/description.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "qfae/util/error.h"

namespace qfae::backbone {
namespace {

constexpr int kDescriptionFormat = 1;
constexpr const char* kDescriptionRecord = "extra/qfae.json";  // torch.jit.save's _extra_files

// The text of the qfae.json record; "" when the archive has none.
std::string description_text(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UserError(path +
                    ": backbone file not found (export one with scripts/export_backbone.py)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord(kDescriptionRecord)) return "";
    auto [data, size] = reader.getRecord(kDescriptionRecord);
    return std::string(static_cast<const char*>(data.get()), size);
  } catch (const c10::Error& e) {
    throw UserError(path + ": not a TorchScript file (" + first_line(e.what_without_backtrace()) +
                    ")");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(path + ": not a TorchScript file (" + first_line(e.what()) + ")");
  }
}

// Parses and checks qfae.json; throws UserError naming the file on anything missing or
// inconsistent.
BackboneDescription parse_description(const std::string& json_text, const std::string& path) {
  const std::string where = path + ": ";
  if (json_text.empty()) {
    throw UserError(where + "no qfae.json inside; is it a file from scripts/export_backbone.py?");
  }
  BackboneDescription d;
  try {
    const auto json = nlohmann::json::parse(json_text);
    const int format = json.at("format").get<int>();
    if (format != kDescriptionFormat) {
      throw UserError(where + "qfae.json format " + std::to_string(format) + ", this qfae reads " +
                      std::to_string(kDescriptionFormat) + "; re-export the backbone");
    }
    d.model = json.at("model").get<std::string>();
    d.image_size = json.at("image_size").get<int64_t>();
    d.patch_sizes = json.at("patch_sizes").get<std::vector<int64_t>>();
    d.grids = json.at("grids").get<std::vector<int64_t>>();
    d.num_prefix = json.at("num_prefix").get<int64_t>();
    d.width = json.at("width").get<int64_t>();
    d.depth = json.at("depth").get<int64_t>();
    d.blocks = json.at("blocks").get<int64_t>();
    d.mean = json.at("mean").get<std::vector<double>>();
    d.std = json.at("std").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw UserError(where + "malformed qfae.json (" + first_line(e.what()) + ")");
  }
  const bool consistent = d.image_size > 0 && !d.patch_sizes.empty() &&
                          d.patch_sizes.size() == d.grids.size() && d.num_prefix >= 0 &&
                          d.width > 0 && d.depth > 0 && d.blocks > 0 && d.blocks <= d.depth &&
                          d.mean.size() == 3 && d.std.size() == 3;
  if (!consistent) throw UserError(where + "inconsistent qfae.json: " + json_text);
  for (size_t i = 0; i < d.patch_sizes.size(); ++i) {
    if (d.patch_sizes[i] <= 0 || d.grids[i] != d.image_size / d.patch_sizes[i]) {
      throw UserError(where + "inconsistent qfae.json: grid " + std::to_string(d.grids[i]) +
                      " for patch size " + std::to_string(d.patch_sizes[i]) + " at image size " +
                      std::to_string(d.image_size));
    }
  }
  return d;
}

}  // namespace

BackboneDescription read_description(const std::string& path) {
  return parse_description(description_text(path), path);
}

}  // namespace qfae::backbone
