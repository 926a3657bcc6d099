// Atomic small-file writes; staged folders: written beside (or inside) their final place, then
// renamed in (same file system, so each move is atomic), removed on every other way out.
#include "qfae/util/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae {
namespace {

// "<final>.partial-<pid>" folders beside `final` whose process is gone.
void remove_orphaned_partials(const fs::path& final) {
  const std::string prefix = final.filename().string() + ".partial-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(final.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    fs::remove_all(e.path(), ec);
  }
}

[[noreturn]] void throw_fs_error(const std::string& what, const fs::path& path,
                                 const std::error_code& ec) {
  throw UserError("cannot " + what + " '" + path.string() + "': " + ec.message());
}

// Creates `dir` (and its parents) unless it is a folder already; true when it did.
bool ensure_folder(const fs::path& dir) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (st.type() == fs::file_type::directory) return false;
  if (st.type() != fs::file_type::not_found) {
    if (ec) throw_fs_error("use", dir, ec);
    throw UserError("'" + dir.string() + "' exists and is not a folder");
  }
  fs::create_directories(dir, ec);
  if (ec) throw_fs_error("create folder", dir, ec);
  return true;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  bool ok;
  errno = 0;
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    ok = static_cast<bool>(out);
    out.close();
    ok = ok && !out.fail();
  }
  std::error_code ec;
  if (!ok) {
    const std::string why = errno ? std::strerror(errno) : "write failed";
    fs::remove(tmp, ec);
    throw UserError("cannot write '" + path + "': " + why);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw UserError("cannot write '" + path + "': " + ec.message());
  }
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError("cannot create the folder '" + dir + "': " + ec.message());
}

StagedDir::StagedDir(const std::string& final_dir, const std::string& marker) {
  fs::path final = fs::absolute(final_dir).lexically_normal();
  if (final.filename().empty()) final = final.parent_path();  // "out/" and "." name a folder
  final_ = final.string();
  std::error_code ec;
  if (fs::exists(final, ec) && !fs::is_directory(final, ec)) {
    throw UserError("'" + final_ + "' exists and is not a folder");
  }
  if (fs::is_directory(final, ec) && !fs::is_empty(final, ec) &&
      !fs::exists(final / marker, ec)) {
    throw UserError("'" + final_ + "' holds files but no " + marker + ", so it is not an earlier "
                    "result that may be replaced; give a new or empty folder");
  }
  make_dirs(final.parent_path().string());
  remove_orphaned_partials(final);
  staging_ = final_ + ".partial-" + std::to_string(::getpid());
  fs::remove_all(staging_, ec);
  make_dirs(staging_);
}

StagedDir::StagedDir(const std::string& root, std::vector<std::string> parts)
    : final_(root),
      staging_((fs::path(root) / ".partial").string()),
      whole_(false),
      parts_(std::move(parts)) {
  created_root_ = ensure_folder(final_);
  std::error_code ec;
  fs::remove_all(staging_, ec);  // left over from a run that was killed
  if (ec) throw_fs_error("remove", staging_, ec);
  ensure_folder(staging_);
}

StagedDir StagedDir::parts_of(const std::string& root, std::vector<std::string> parts) {
  return StagedDir(root, std::move(parts));
}

StagedDir::~StagedDir() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
  if (created_root_) fs::remove(final_, ignored);  // only removes an empty folder
}

void StagedDir::commit() {
  if (whole_) {
    commit_whole();
  } else {
    commit_parts();
  }
}

void StagedDir::commit_whole() {
  std::error_code ec;
  if (!fs::exists(final_, ec)) {
    fs::rename(staging_, final_, ec);
    if (ec) throw UserError("cannot move '" + staging_ + "' to '" + final_ + "': " + ec.message());
    committed_ = true;
    return;
  }
  // Swap in one step, then remove the old result (now at staging_).
  if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) != 0) {
    // Filesystems without RENAME_EXCHANGE: the old folder aside, the new one in, the old one out.
    const std::string old = final_ + ".old-" + std::to_string(::getpid());
    fs::remove_all(old, ec);
    fs::rename(final_, old, ec);
    if (ec) throw UserError("cannot replace '" + final_ + "': " + ec.message());
    fs::rename(staging_, final_, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(old, final_, ignored);  // put the earlier result back
      throw UserError("cannot move '" + staging_ + "' to '" + final_ + "': " + ec.message());
    }
    fs::remove_all(old, ec);
    committed_ = true;
    return;
  }
  committed_ = true;
  fs::remove_all(staging_, ec);
}

void StagedDir::commit_parts() {
  std::error_code ec;
  for (const auto& name : parts_) {
    const fs::path target = fs::path(final_) / name, staged = fs::path(staging_) / name;
    fs::remove_all(target, ec);
    if (ec) throw_fs_error("replace", target, ec);
    if (fs::symlink_status(staged, ec).type() == fs::file_type::not_found) continue;
    fs::rename(staged, target, ec);
    if (ec) throw_fs_error("move into place", staged, ec);
  }
  fs::remove_all(staging_, ec);
  committed_ = true;
}

bool is_plain_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, started = false;  // started: the row has a field (maybe empty) begun
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      started = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      started = false;
    } else {
      field += c;
      started = true;
    }
  }
  if (quoted) throw UserError("a quoted CSV field is not closed (row " +
                              std::to_string(rows.size() + 1) + ")");
  if (started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("cannot read '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UserError("cannot read '" + path + "'");
  return text.str();
}

std::string tsv_field(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace qfae
