// Folder listing for dataset indexing and `qfae infer`: "does not exist" and "cannot be read" are
// told apart (the second is a UserError naming the path), and symbolic links that lead nowhere are
// listed like image files, so that reading them fails by name instead of the image vanishing.
#pragma once
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace qfae::data {

// Why a file could not be used: "permission denied" for EACCES/EPERM, else the system's message.
std::string error_reason(const std::error_code& ec);
// The same for the errno left by a failed open (std::ifstream and friends).
std::string errno_reason();

enum class PathKind { kMissing, kDirectory, kFile, kOther };

// What `path` is, following symbolic links; kMissing when it does not exist (nor does a link's
// target). UserError "'<path>': permission denied" (or the system's reason) when it cannot be
// looked at, e.g. because a folder above it may not be entered.
PathKind path_kind(const std::filesystem::path& path);

// True when `path` is a symbolic link whose target cannot be reached (missing, a loop of links,
// or behind a folder that may not be entered).
bool is_broken_link(const std::filesystem::path& path);

// The paths directly inside the folder `dir`, sorted. UserError naming `dir` when it cannot be
// listed (permission denied, or an I/O error part way).
std::vector<std::filesystem::path> list_folder(const std::filesystem::path& dir);

// The image files (io::is_image_file names) in the folder `dir`, sorted by path: regular files and
// broken links (reading those fails later, naming them). With `recursive`, sub-folders too (not
// through links to folders). UserError naming the folder that cannot be listed.
std::vector<std::string> list_image_files(const std::filesystem::path& dir, bool recursive);

// An input given to `qfae infer` that yields no image: the input as given and why.
struct InputProblem {
  std::string input;
  std::string reason;  // "no such file or folder", "folder holds no image files", ...
};

// `qfae infer`'s inputs: image files named directly (broken links included) or found in folders
// (list_image_files). Inputs that do not exist, folders that cannot be read and folders without
// images are added to `problems` and left out.
std::vector<std::string> collect_images(const std::vector<std::string>& inputs, bool recursive,
                                        std::vector<InputProblem>& problems);

}  // namespace qfae::data
