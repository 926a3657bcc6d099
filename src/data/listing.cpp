// Folder listing that never mistakes "cannot be read" for "not there" (see listing.h): every
// std::filesystem call takes an error_code, and an error other than "not found" names the path.
#include "qfae/data/listing.h"

#include <algorithm>
#include <cerrno>

#include "qfae/io/dicom.h"
#include "qfae/io/image.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae::data {
namespace {

[[noreturn]] void throw_unreadable(const fs::path& path, const std::error_code& ec) {
  throw UserError("'" + path.string() + "': " + error_reason(ec));
}

// The entry's own type, not following a link; UserError naming `folder` (which could be listed
// but not entered) when even that cannot be looked at.
fs::file_type own_type(const fs::path& entry, const fs::path& folder) {
  std::error_code ec;
  const auto st = fs::symlink_status(entry, ec);
  if (ec) throw_unreadable(folder, ec);
  return st.type();
}

// A listed entry named like an image: a regular file, or a link to one or to nowhere.
// Files without an extension count when they are DICOM (the "DICM" marker after the preamble), as
// PACS exports and scanners often name them.
bool is_image_entry(const fs::path& entry, fs::file_type own) {
  const bool named = io::is_image_file(entry.string());
  if (!named && (!entry.extension().empty() || own != fs::file_type::regular ||
                 !io::is_dicom_file(entry.string()))) {
    return false;
  }
  if (own == fs::file_type::regular) return true;
  if (own != fs::file_type::symlink) return false;
  std::error_code ec;
  const auto target = fs::status(entry, ec);
  return ec || target.type() == fs::file_type::regular;
}

void add_image_files(const fs::path& dir, bool recursive, std::vector<std::string>& out) {
  for (const auto& entry : list_folder(dir)) {
    const auto own = own_type(entry, dir);
    if (own == fs::file_type::directory) {
      if (recursive) add_image_files(entry, recursive, out);
    } else if (is_image_entry(entry, own)) {
      out.push_back(entry.string());
    }
  }
}

}  // namespace

std::string error_reason(const std::error_code& ec) {
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
    return "permission denied";
  }
  return ec.message();
}

std::string errno_reason() { return error_reason(std::error_code(errno, std::generic_category())); }

PathKind path_kind(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return PathKind::kMissing;
  if (ec) throw_unreadable(path, ec);
  switch (st.type()) {
    case fs::file_type::directory:
      return PathKind::kDirectory;
    case fs::file_type::regular:
      return PathKind::kFile;
    default:
      return PathKind::kOther;
  }
}

bool is_broken_link(const fs::path& path) {
  std::error_code ec;
  if (fs::symlink_status(path, ec).type() != fs::file_type::symlink) return false;
  const auto target = fs::status(path, ec);
  return ec || target.type() == fs::file_type::not_found;
}

std::vector<fs::path> list_folder(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> out;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    out.push_back(it->path());
  }
  if (ec) throw_unreadable(dir, ec);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> list_image_files(const fs::path& dir, bool recursive) {
  std::vector<std::string> out;
  add_image_files(dir, recursive, out);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> collect_images(const std::vector<std::string>& inputs, bool recursive,
                                        std::vector<InputProblem>& problems) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    try {
      if (is_broken_link(in)) {
        files.push_back(in);  // reading it fails, naming it, like any unreadable file
        continue;
      }
      const PathKind kind = path_kind(in);
      if (kind == PathKind::kMissing) {
        problems.push_back({in, "no such file or folder"});
      } else if (kind != PathKind::kDirectory) {
        files.push_back(in);
      } else {
        const auto found = list_image_files(in, recursive);
        if (found.empty()) problems.push_back({in, "folder holds no image files"});
        files.insert(files.end(), found.begin(), found.end());
      }
    } catch (const UserError& e) {
      problems.push_back({in, first_line(e.what())});
    }
  }
  return files;
}

}  // namespace qfae::data
