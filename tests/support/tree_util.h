// Test helpers for data tests: tiny dataset trees of empty or real image files.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "qfae/io/image.h"
#include "qfae/util/error.h"
#include "user_error.h"

namespace qfae::test {

// An empty file (the indexers never read pixels), creating parent folders.
inline std::string touch(const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path.string()) << "";
  return path.string();
}

// A real size x size grey PNG whose pixels are all `value` (in [0, 1]).
inline std::string grey_png(const std::filesystem::path& path, int64_t size, double value) {
  qfae::io::write_png(path.string(), torch::full({size, size}, value));
  return path.string();
}

inline std::string text(const std::filesystem::path& path, const std::string& body) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path.string()) << body;
  return path.string();
}

}  // namespace qfae::test
