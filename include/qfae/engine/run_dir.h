// Run folders (runs/<name>/<timestamp>/ with a `latest` link), JSON-lines event logs, and the
// SIGINT/SIGTERM flag that lets long work stop cleanly after the current step.
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace qfae::engine {

// Creates <output_dir>/<name>/<YYYYmmdd-HHMMSS>[-N]/ and points <output_dir>/<name>/latest at it.
std::string create_run_dir(const std::string& output_dir, const std::string& name);

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

}  // namespace qfae::engine
