// Atomic small-file writes.
#include "qfae/util/files.h"

#include <filesystem>
#include <fstream>

#include "qfae/util/error.h"

namespace qfae {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      throw UserError("cannot write '" + path + "' (disk full, or no permission?)");
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
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
