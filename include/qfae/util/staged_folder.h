// A folder's new content written beside it first and moved in only when complete, so a failed or
// refused write (a full disk, bad input found late) never leaves half a dataset behind.
#pragma once
#include <string>
#include <vector>

namespace qfae {

class StagedFolder {
 public:
  // Creates `root` when needed (remembering that it did) and an empty staging folder
  // <root>/.partial inside it. UserError naming the path when `root` is not a folder or either
  // cannot be created.
  explicit StagedFolder(const std::string& root);
  // Without commit(): removes the staging folder, and `root` too when this created it and it is
  // empty again.
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;

  // Where to write the new content.
  const std::string& path() const { return staging_; }

  // Replaces each of `names` in `root` by its staged version: the old one is removed, the staged
  // one (when it was written) renamed into place. UserError naming the path that failed.
  void commit(const std::vector<std::string>& names);

 private:
  std::string root_, staging_;
  bool created_root_ = false;
  bool committed_ = false;
};

}  // namespace qfae
