// Test support: a tiny run trained with the real binary, and the names in a folder.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "run_binary.h"
#include "tiny_run.h"

namespace qfae::test {

// One tiny run of `steps` steps (an epoch is 4) in <dir>/runs/tiny/<stamp> on the dataset
// <dir>/data (tiny_config writes it); returns the run folder, links resolved.
inline std::filesystem::path train_tiny_run(const TempDir& dir, int steps) {
  const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                          tiny_sets(dir.path() / "data",
                                    {"name=tiny", "train.max_steps=" + std::to_string(steps)}));
  EXPECT_EQ(r.code, 0) << r.err;
  return std::filesystem::canonical(dir.path() / "runs" / "tiny" / "latest");
}

// The names directly inside `dir`, sorted; none when it does not exist.
inline std::vector<std::string> folder_entries(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace qfae::test
