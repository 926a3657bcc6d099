// Run folders, their lock and JSON-lines logs.
#include "qfae/run/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"

namespace fs = std::filesystem;

namespace qfae::run {

std::string child_dir(const std::string& parent, const std::string& name, const std::string& key) {
  if (!is_plain_name(name)) {
    throw UserError(key + ": '" + name.substr(0, 60) + (name.size() > 60 ? "..." : "") +
                    "' cannot name a folder inside " + parent + "; expected at most 200 letters, "
                    "digits, '.', '_' or '-', and not '.' or '..'");
  }
  return (fs::path(parent) / name).string();
}

std::string reserve_run_dir(const std::string& output_dir, const std::string& name) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  const fs::path parent = child_dir(output_dir, name, "name");
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

namespace {
// "folder" or "file" when `latest` exists but is not a link (qfae leaves it alone), else "".
std::string real_latest(const fs::path& latest) {
  std::error_code ec;
  const auto status = fs::symlink_status(latest, ec);
  if (!fs::exists(status) || fs::is_symlink(status)) return "";
  return fs::is_directory(status) ? "folder" : "file";
}
}  // namespace

void point_latest(const std::string& dir) {
  const fs::path d(dir);
  const fs::path latest = d.parent_path() / "latest";
  std::error_code ec;
  if (const auto kind = real_latest(latest); !kind.empty()) {
    log("run")->warn("{} is a real {}, not the link qfae keeps: left as it is, so it does not "
                     "point at {} (remove or rename it to have it kept up to date)",
                     latest.string(), kind, dir);
    return;
  }
  // A new link beside the old one, renamed over it: `latest` always names a run.
  const fs::path fresh = d.parent_path() / (".latest." + std::to_string(::getpid()));
  fs::remove(fresh, ec);
  fs::create_directory_symlink(d.filename(), fresh, ec);
  if (!ec) fs::rename(fresh, latest, ec);
  if (ec) {
    fs::remove(fresh, ec);
    log("run")->warn("cannot point {} at {}: {} (the filesystem may not allow links)",
                     latest.string(), dir, ec.message());
  }
}

void warn_if_latest_is_not_a_link(const std::string& output_dir, const std::string& name) {
  const fs::path latest = fs::path(output_dir) / name / "latest";
  if (const auto kind = real_latest(latest); !kind.empty()) {
    log("run")->warn("{} is a real {}, not the link qfae keeps: it will not point at this run",
                     latest.string(), kind);
  }
}

std::string latest_run_target(const std::string& output_dir, const std::string& name) {
  std::error_code ec;
  const auto target = fs::read_symlink(fs::path(output_dir) / name / "latest", ec);
  return ec ? "" : target.string();
}

FolderId folder_id(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

void discard_run_dir(const std::string& run_dir, const FolderId& id,
                     const std::string& previous_latest) {
  std::error_code ec;
  const fs::path dir(run_dir), parent = dir.parent_path(), latest = parent / "latest";
  if (id == FolderId{} || folder_id(run_dir) != id) return;  // not ours any more: leave it
  fs::remove_all(dir, ec);
  if (fs::read_symlink(latest, ec) == dir.filename()) {
    fs::remove(latest, ec);
    if (!previous_latest.empty()) fs::create_directory_symlink(previous_latest, latest, ec);
  }
  if (fs::is_empty(parent, ec)) fs::remove(parent, ec);  // the first run of this name
}

RunLock::RunLock(const std::string& run_dir) : dir_(run_dir) {
  std::error_code ec;
  canonical_ = fs::canonical(run_dir, ec).string();
  if (ec) throw UserError("run folder '" + run_dir + "': " + ec.message());
  id_ = folder_id(canonical_);
  const std::string path = (fs::path(canonical_) / ".lock").string();
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

void RunLock::check() const {
  struct stat st {};
  const auto gone = [&](const std::string& what) {
    throw UserError("run folder '" + dir_ + "' " + what + " while this process was writing it; "
                    "stopped so as not to write the rest of the run elsewhere");
  };
  if (::lstat(canonical_.c_str(), &st) != 0) gone("was deleted or moved (" + canonical_ + ")");
  if (S_ISLNK(st.st_mode)) gone("was replaced by a link (" + canonical_ + ")");
  const FolderId now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if (!S_ISDIR(st.st_mode) || now != id_) {
    gone("was replaced by another folder (" + canonical_ + ")");
  }
  struct stat lock {}, mine {};
  const std::string lock_path = (fs::path(canonical_) / ".lock").string();
  if (::stat(lock_path.c_str(), &lock) != 0 || ::fstat(fd_, &mine) != 0 ||
      lock.st_ino != mine.st_ino || lock.st_dev != mine.st_dev) {
    gone("was emptied (its .lock is gone)");
  }
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

namespace {
FolderId file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}
}  // namespace

JsonlWriter::JsonlWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw UserError("cannot write '" + path + "'");
  file_ = file_id(path);
}

void JsonlWriter::write(const nlohmann::json& event) {
  if (file_id(path_) != file_) {
    throw UserError("'" + path_ + "' was deleted or replaced while this process was writing it; "
                    "stopped so as not to lose the lines still to come");
  }
  out_ << event.dump() << "\n";
  out_.flush();
  if (!out_) throw UserError("cannot write '" + path_ + "' (disk full?)");
}

}  // namespace qfae::run
