// Small file helpers shared by every area: atomic writes, whole-or-absent result folders, CSV.
#pragma once
#include <string>

namespace qfae {

// Writes `text` to `path` atomically: a temporary file beside it, then a rename, so a crash
// never leaves half a file. UserError naming the path when it cannot be written (the temporary
// file is removed then).
void write_file_atomic(const std::string& path, const std::string& text);

// fs::create_directories, with a UserError naming the folder instead of a filesystem_error.
void make_dirs(const std::string& dir);

// A results folder that is complete and of one run, or absent. Files are written into a
// temporary sibling, "<final>.partial-<pid>" (path()); commit() puts it in place of <final>,
// replacing an earlier result there in one step (RENAME_EXCHANGE where the filesystem has it).
// Without commit() (an error, a stop signal) the destructor removes the temporary folder and
// <final> is left as it was. The constructor also removes "<final>.partial-<pid>" folders of
// processes that no longer run (left by a kill -9), and refuses (UserError) to take over a
// non-empty folder that lacks `marker`, so a mistyped -o never deletes unrelated files.
class StagedDir {
 public:
  StagedDir(const std::string& final_dir, const std::string& marker);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::string& path() const { return tmp_; }
  const std::string& final_path() const { return final_; }
  void commit();

 private:
  std::string final_, tmp_;
  bool committed_ = false;
};

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or newline.
std::string csv_field(const std::string& text);

// One TSV field: backslash, tab, newline and carriage return written as \\, \t, \n and \r (the
// escapes of PostgreSQL's text format), so a file name never splits a row or a column.
std::string tsv_field(const std::string& text);

}  // namespace qfae
