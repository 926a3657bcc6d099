// Run folders, their lock and JSON-lines logs.
#include "qfae/run/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::run {

std::string reserve_run_dir(const std::string& output_dir, const std::string& name) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  const fs::path parent = fs::path(output_dir) / name;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw UserError("output_dir: cannot create '" + parent.string() + "': " + ec.message());
  // create_directory is true only for the process that made the folder: two runs started in the
  // same second get -2, -3, ... and never share one.
  fs::path dir = parent / stamp;
  for (int n = 2; !fs::create_directory(dir, ec); ++n) {
    if (ec) throw UserError("output_dir: cannot create '" + dir.string() + "': " + ec.message());
    dir = parent / (std::string(stamp) + "-" + std::to_string(n));
  }
  return dir.string();
}

void point_latest(const std::string& dir) {
  const fs::path d(dir);
  const fs::path latest = d.parent_path() / "latest";
  std::error_code ec;
  fs::remove(latest, ec);
  fs::create_directory_symlink(d.filename(), latest, ec);  // best effort: some filesystems refuse
}

std::string create_run_dir(const std::string& output_dir, const std::string& name) {
  const std::string dir = reserve_run_dir(output_dir, name);
  point_latest(dir);
  return dir;
}


std::string latest_run_target(const std::string& output_dir, const std::string& name) {
  std::error_code ec;
  const auto target = fs::read_symlink(fs::path(output_dir) / name / "latest", ec);
  return ec ? "" : target.string();
}

void discard_run_dir(const std::string& run_dir, const std::string& previous_latest) {
  std::error_code ec;
  const fs::path dir(run_dir), latest = dir.parent_path() / "latest";
  fs::remove_all(dir, ec);
  if (fs::read_symlink(latest, ec) != dir.filename()) return;  // someone else moved it since
  fs::remove(latest, ec);
  if (!previous_latest.empty()) fs::create_directory_symlink(previous_latest, latest, ec);
}

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UserError("cannot write '" + path + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    const auto n = ::pread(fd_, pid, sizeof(pid) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw UserError("run folder '" + run_dir + "' is being written by another qfae process" +
                    (n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : "") +
                    "; wait for it to finish or stop it first");
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // The lock holds without the pid in the file; the pid only makes the message friendlier.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

void truncate_metrics_after(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool changed = false;
  while (std::getline(in, line)) {
    const bool complete = !in.eof();  // a last line without its newline was cut short
    const auto event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool later = event.is_object() && event.contains("step") &&
                       event["step"].is_number_integer() && event["step"].get<int64_t>() > step;
    if (!complete || event.is_discarded() || later) {
      changed = true;
      continue;
    }
    kept += line + "\n";
  }
  in.close();
  if (changed) write_file_atomic(path, kept);
}

JsonlWriter::JsonlWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw UserError("cannot write '" + path + "'");
}

void JsonlWriter::write(const nlohmann::json& event) {
  out_ << event.dump() << "\n";
  out_.flush();
  if (!out_) throw UserError("cannot write '" + path_ + "' (disk full?)");
}

}  // namespace qfae::run
