// Run folders (runs/<name>/<timestamp>/ with a `latest` link), the lock that keeps one writer per
// run, and JSON-lines event logs.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>

namespace qfae::run {

// <parent>/<name>, or UserError naming `key` when `name` is not is_plain_name (util/files.h): the
// one check every folder name qfae derives (run names, results folders) passes, so that nothing
// is written outside the output folder.
std::string child_dir(const std::string& parent, const std::string& name, const std::string& key);

// Reserves <output_dir>/<name>/<YYYYmmdd-HHMMSS>[-N]/ (a new, empty folder, never one another
// process made) without moving `latest`: a training points it there with point_latest once its
// first checkpoint is saved, eval and infer once their results are moved in whole (StagedDir
// replaces the empty folder). UserError naming the folder when it cannot be created (a file in the
// way, no permission), or when `name` is not a plain name.
std::string reserve_run_dir(const std::string& output_dir, const std::string& name);
// Points <parent of dir>/latest at `dir`. A `latest` that is not a link (a real folder or file)
// is left as it is, with a warning saying so; so is a filesystem that refuses links.
void point_latest(const std::string& dir);
// Warns (once, naming it) when <output_dir>/<name>/latest exists but is not a link: qfae will
// not point it at the new run.
void warn_if_latest_is_not_a_link(const std::string& output_dir, const std::string& name);

// Where <output_dir>/<name>/latest points now ("" when there is no such link).
std::string latest_run_target(const std::string& output_dir, const std::string& name);

// Which folder a path names (device and inode, not followed if it is a link); 0/0 when there is
// none. Two ids are equal only for the same folder, however it was reached.
struct FolderId {
  uint64_t device = 0, inode = 0;
  bool operator==(const FolderId&) const = default;
};
FolderId folder_id(const std::string& path);

// Undoes reserve_run_dir for a run that failed before its first checkpoint: removes the folder,
// but only while it is still the folder `id` named (never one that took its place), and <name>/
// when nothing else is left in it; points `latest` back at `previous_latest` if it had moved to
// this run.
void discard_run_dir(const std::string& run_dir, const FolderId& id,
                     const std::string& previous_latest);

// An exclusive lock on a run folder (flock on <dir>/.lock, released when the process ends, even
// by SIGKILL), so that two processes never write one run. UserError naming the other process.
// It also remembers which folder it locked: check() says whether the run folder is still there.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  // UserError naming the run folder when it was deleted, moved, replaced (by a link or another
  // folder) or lost its lock file since it was locked: a job whose records are gone stops
  // instead of writing the rest of them somewhere else.
  void check() const;

 private:
  std::string dir_;        // as given, for messages
  std::string canonical_;  // without links: `latest` may move on while the run goes on
  FolderId id_;
  int fd_ = -1;
};

// After a resume from the checkpoint at `step`: drops the events of later steps from
// <run_dir>/metrics.jsonl (a killed run logged them, the resumed one logs them again), and a last
// line cut short by the kill.
void truncate_metrics_after(const std::string& path, int64_t step);

// Appends one JSON object per line and flushes it, so a crash loses at most the current line; a
// line that cannot be written (full disk), or a file deleted or replaced since it was opened, is a
// UserError naming the file.
class JsonlWriter {
 public:
  JsonlWriter() = default;
  explicit JsonlWriter(const std::string& path);
  void write(const nlohmann::json& event);
  bool is_open() const { return out_.is_open(); }

 private:
  std::string path_;
  std::ofstream out_;
  FolderId file_;  // the file opened (device and inode)
};

}  // namespace qfae::run
