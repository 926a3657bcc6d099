// Run folders (runs/<name>/<timestamp>/ with a `latest` link), JSON-lines event logs, and the
// SIGINT/SIGTERM flag that lets long work stop cleanly after the current step.
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>

namespace qfae::engine {

// Creates <output_dir>/<name>/<YYYYmmdd-HHMMSS>[-N]/ and points <output_dir>/<name>/latest at it.
std::string create_run_dir(const std::string& output_dir, const std::string& name);
// create_run_dir without the link: for results moved in whole later (StagedDir replaces the empty
// folder), with point_latest(dir) once they are.
std::string reserve_run_dir(const std::string& output_dir, const std::string& name);
// Points <parent of dir>/latest at `dir` (best effort: some filesystems refuse links).
void point_latest(const std::string& dir);

// Appends one JSON object per line and flushes it, so a crash loses at most the current line.
class JsonlWriter {
 public:
  JsonlWriter() = default;
  explicit JsonlWriter(const std::string& path);
  void write(const nlohmann::json& event);
  bool is_open() const { return out_.is_open(); }

 private:
  std::ofstream out_;
};

// Installs SIGINT and SIGTERM handlers that only record the signal; work loops poll it.
void install_stop_handlers();
// The signal received since install_stop_handlers() (0 = none).
int stop_signal();
// Test hook: pretend `signal` arrived (0 clears it).
void set_stop_signal(int signal);

// What eval and infer throw when a stop signal arrived: they finish the current batch, throw
// this, and their unfinished output folder is removed on the way out (StagedDir). The command
// exits with 128 + signal (130 for SIGINT, 143 for SIGTERM).
// what(): "stopped by SIGINT" (or SIGTERM, or "signal N").
class StopRequested : public std::runtime_error {
 public:
  explicit StopRequested(int signal);
  int signal_number() const { return signal_; }

 private:
  int signal_;
};
// Throws StopRequested when stop_signal() is set.
void throw_if_stopped();

}  // namespace qfae::engine
