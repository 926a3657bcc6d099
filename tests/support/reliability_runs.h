// Test support for the Reliability* eval/infer CLI tests: a fixture with two trained runs of one
// config and data sets of three sizes, and helpers to snapshot folders, read CSV back, and
// signal a running qfae while it writes its output.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "csv_rfc4180.h"
#include "qfae/data/synthetic.h"
#include "run_binary.h"
#include "tiny_run.h"

namespace qfae::test::reliability {

namespace fs = std::filesystem;

// One shell word for any text (single quotes; a quote inside becomes '\'').
inline std::string shq(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline std::vector<std::vector<std::string>> csv_of(const fs::path& path) {
  return parse_csv_rfc4180(read_text(path));
}

// Every file under `dir` (relative path -> contents).
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().lexically_relative(dir).string()] = read_text(e.path());
  }
  return out;
}

inline size_t overlays_in(const fs::path& dir) {
  size_t n = 0;
  if (!fs::exists(dir / "maps")) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "maps")) n += e.is_regular_file();
  return n;
}

// Siblings of `final` that a whole-or-absent write may leave behind (it must leave none).
inline std::vector<std::string> leftovers_beside(const fs::path& final) {
  std::vector<std::string> out;
  const std::string prefix = final.filename().string() + ".";
  for (const auto& e : fs::directory_iterator(final.parent_path())) {
    const auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

// Starts `qfae <args>` without waiting; stderr goes to `err`.
inline pid_t spawn_qfae(const std::string& args, const fs::path& err) {
  const std::string cmd = "exec " + shq(QFAE_BINARY) + " " + args + " >/dev/null 2>" +
                          shq(err.string()) + " </dev/null";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Sends `signal` to `pid` as soon as a "<final>.partial-*" folder appears (the output is being
// written), then returns the exit code; -1 when the process ended first or never started.
inline int signal_while_writing(pid_t pid, const fs::path& final, int signal) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  const std::string prefix = final.filename().string() + ".partial-";
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return -1;  // finished before the signal
    bool writing = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(final.parent_path(), ec)) {
      writing = writing || e.path().filename().string().rfind(prefix, 0) == 0;
    }
    if (writing) {
      ::kill(pid, signal);
      ::waitpid(pid, &status, 0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// Two runs of one config (both named "demo", seeds 1 and 2), the tiny data set (4 + 4 test
// images), a smaller one (2 + 2) and a larger one (120 + 120, slow enough to be interrupted).
class ReliabilityEval : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    qfae::test::tiny_config(data());
    qfae::data::write_synthetic_dataset(small().string(), 32, 4, 2, 2, 2, /*seed=*/11);
    qfae::data::write_synthetic_dataset(big().string(), 32, 4, 2, 120, 120, /*seed=*/13);
    for (int seed : {1, 2}) {
      const auto r = run_qfae("train -q --seed " + std::to_string(seed) + " -o " +
                              shq((dir_->path() / "runs").string()) +
                              tiny_sets(data(), {"name=demo"}));
      ASSERT_EQ(r.code, 0) << r.err;
    }
    for (const auto& e : fs::directory_iterator(dir_->path() / "runs" / "demo")) {
      if (!e.is_symlink()) runs_.push_back(e.path());
    }
    std::sort(runs_.begin(), runs_.end());
    ASSERT_EQ(runs_.size(), 2u);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
    runs_.clear();
  }
  static fs::path data() { return dir_->path() / "data"; }
  static fs::path small() { return dir_->path() / "small"; }
  static fs::path big() { return dir_->path() / "big"; }
  static const fs::path& run(size_t i) { return runs_.at(i); }
  inline static TempDir* dir_ = nullptr;
  inline static std::vector<fs::path> runs_;
};


}  // namespace qfae::test::reliability
