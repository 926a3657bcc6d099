// Reading YAML config files, applying --set overrides, and writing the resolved config as YAML.
#pragma once
#include <string>
#include <vector>

#include "qfae/config/config.h"

namespace qfae::config {

struct LoadedConfig {
  Config config;
  Sources sources;  // key path -> the file or flag that set it
};

// Defaults, then each file in order (later ones override earlier), then each "key.path=value".
// Throws UserError naming the file or flag, the key and the problem. Does not validate.
LoadedConfig load_config(const std::vector<std::string>& files,
                         const std::vector<std::string>& assignments);

// Merges one YAML file into `loaded`; relative paths in it are taken from the file's folder.
void apply_file(LoadedConfig& loaded, const std::string& path);

// Applies one "key.path=value" assignment; the value is parsed as YAML ("1e-4", "[-2, -4]", "true").
// Relative paths are taken from the working directory.
void apply_assignment(LoadedConfig& loaded, const std::string& assignment,
                      const std::string& source = "--set");

// The resolved config as a YAML document that load_config reads back to the same values.
std::string to_yaml(const Config& config);
// Writes to_yaml(config) to `path` atomically (temporary file, then rename).
void save_yaml(const Config& config, const std::string& path);

// Every key path, in declaration order ("name", ..., "data.root", ...).
std::vector<std::string> config_keys();

// One key whose value differs between two configs; values as to_yaml writes them.
struct KeyDifference {
  std::string key, a, b;
};
// The keys selected by `selection` (exact key paths, or sections written with a trailing dot:
// "model.") whose values differ between `a` and `b`, in declaration order.
std::vector<KeyDifference> differing_keys(const Config& a, const Config& b,
                                          const std::vector<std::string>& selection);

}  // namespace qfae::config
