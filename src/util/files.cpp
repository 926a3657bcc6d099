// Atomic small-file writes: checked to the close, and no temporary left behind when they fail.
#include "qfae/util/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "qfae/util/error.h"

namespace qfae {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary);
  if (out) out << text;
  if (out) out.close();  // closing flushes: a full disk may only show here
  std::error_code ec;
  if (!out) {
    // The reason first: remove() may change errno. Then no half file is left behind.
    const std::string reason = std::strerror(errno);
    std::filesystem::remove(tmp, ec);
    throw UserError("cannot write '" + path + "': " + reason);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw UserError("cannot write '" + path + "': " + ec.message());
  }
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace qfae
