// StagedFolder: write into <root>/.partial, then rename into <root> (same file system, so each
// move is atomic); cleanup on every other way out.
#include "qfae/util/staged_folder.h"

#include <filesystem>
#include <system_error>

#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae {
namespace {

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

StagedFolder::StagedFolder(const std::string& root)
    : root_(root), staging_((fs::path(root) / ".partial").string()) {
  created_root_ = ensure_folder(root_);
  std::error_code ec;
  fs::remove_all(staging_, ec);  // left over from a run that was killed
  if (ec) throw_fs_error("remove", staging_, ec);
  ensure_folder(staging_);
}

StagedFolder::~StagedFolder() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (created_root_) fs::remove(root_, ec);  // only removes an empty folder
}

void StagedFolder::commit(const std::vector<std::string>& names) {
  std::error_code ec;
  for (const auto& name : names) {
    const fs::path target = fs::path(root_) / name, staged = fs::path(staging_) / name;
    fs::remove_all(target, ec);
    if (ec) throw_fs_error("replace", target, ec);
    if (fs::symlink_status(staged, ec).type() == fs::file_type::not_found) continue;
    fs::rename(staged, target, ec);
    if (ec) throw_fs_error("move into place", staged, ec);
  }
  fs::remove_all(staging_, ec);
  committed_ = true;
}

}  // namespace qfae
