// Small file helpers shared by every area: atomic writes, folders (or parts of them) staged and
// moved in whole, CSV and TSV fields.
#pragma once
#include <string>
#include <vector>

namespace qfae {

// Writes `text` to `path` atomically: a temporary file beside it, then a rename, so a crash
// never leaves half a file. UserError naming the path when it cannot be written (the temporary
// file is removed then).
void write_file_atomic(const std::string& path, const std::string& text);

// fs::create_directories, with a UserError naming the folder instead of a filesystem_error.
void make_dirs(const std::string& dir);

// New content for a folder, written aside and moved in only when complete, so an error, a stop
// signal or bad input found late never leaves half of it behind. It covers either the whole folder
// or named parts of it:
//  - StagedDir(final, marker): the whole folder, staged in the sibling "<final>.partial-<pid>";
//    commit() puts it in place of <final>, replacing an earlier result there in one step
//    (RENAME_EXCHANGE where the filesystem has it). The constructor removes "<final>.partial-<pid>"
//    folders of processes that no longer run (left by a kill -9), and refuses (UserError) to take
//    over a non-empty folder that lacks `marker`, so a mistyped -o never deletes unrelated files.
//  - StagedDir::parts_of(root, parts): only the entries `parts` of `root` (created when needed),
//    staged in "<root>/.partial" (one left by a killed run is removed first); commit() replaces
//    each part by its staged version, or removes it when none was written, and leaves everything
//    else in `root` alone. UserError naming the path when `root` is not a folder.
// Without commit() the destructor removes the staging folder, and <final> is left as it was (a
// `root` that parts_of created is removed again if it is empty).
class StagedDir {
 public:
  StagedDir(const std::string& final_dir, const std::string& marker);
  static StagedDir parts_of(const std::string& root, std::vector<std::string> parts);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  // Where to write the new content.
  const std::string& path() const { return staging_; }
  const std::string& final_path() const { return final_; }
  // Moves the staged content in; UserError naming the path that failed.
  void commit();

 private:
  StagedDir(const std::string& root, std::vector<std::string> parts);
  void commit_whole();
  void commit_parts();

  std::string final_, staging_;
  bool whole_ = true;
  std::vector<std::string> parts_;  // parts_of: the entries of final_ that commit() replaces
  bool created_root_ = false;       // parts_of created final_
  bool committed_ = false;
};

// True for a name that is one folder inside its parent and nothing else: 1 to 200 letters,
// digits, '.', '_' or '-', and not "." or "..".
bool is_plain_name(const std::string& name);

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or newline.
std::string csv_field(const std::string& text);

// The rows of a CSV text (RFC 4180): quoted fields may hold commas, doubled quotes and line
// breaks; "\r\n" ends a row like "\n"; a last line break adds no empty row. UserError when a quoted
// field is not closed.
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

// The whole file as text; UserError naming it when it cannot be read.
std::string read_text_file(const std::string& path);

// One TSV field: backslash, tab, newline and carriage return written as \\, \t, \n and \r (the
// escapes of PostgreSQL's text format), so a file name never splits a row or a column.
std::string tsv_field(const std::string& text);

}  // namespace qfae
