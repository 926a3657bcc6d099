// Run folders (runs/<name>/<timestamp>/ with a `latest` link), the lock that keeps one writer per
// run, and JSON-lines event logs.
#pragma once
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace qfae::run {

// Creates <output_dir>/<name>/<YYYYmmdd-HHMMSS>[-N]/ and points <output_dir>/<name>/latest at it.
// UserError naming the folder when it cannot be created (a file in the way, no permission).
std::string create_run_dir(const std::string& output_dir, const std::string& name);
// create_run_dir without the link: for results moved in whole later (StagedDir replaces the empty
// folder), with point_latest(dir) once they are.
std::string reserve_run_dir(const std::string& output_dir, const std::string& name);
// Points <parent of dir>/latest at `dir` (best effort: some filesystems refuse links).
void point_latest(const std::string& dir);

// Where <output_dir>/<name>/latest points now ("" when there is no such link).
std::string latest_run_target(const std::string& output_dir, const std::string& name);

// Undoes create_run_dir for a run that failed before it produced anything: removes the folder
// and points `latest` back at `previous_latest` (or removes it when that is "").
void discard_run_dir(const std::string& run_dir, const std::string& previous_latest);

// An exclusive lock on a run folder (flock on <dir>/.lock, released when the process ends, even
// by SIGKILL), so that two processes never write one run. UserError naming the other process.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// After a resume from the checkpoint at `step`: drops the events of later steps from
// <run_dir>/metrics.jsonl (a killed run logged them, the resumed one logs them again), and a last
// line cut short by the kill.
void truncate_metrics_after(const std::string& path, int64_t step);

// Appends one JSON object per line and flushes it, so a crash loses at most the current line; a
// line that cannot be written (full disk) is a UserError naming the file.
class JsonlWriter {
 public:
  JsonlWriter() = default;
  explicit JsonlWriter(const std::string& path);
  void write(const nlohmann::json& event);
  bool is_open() const { return out_.is_open(); }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace qfae::run
