// Atomic small-file writes.
#include "qfae/util/files.h"

#include <filesystem>
#include <fstream>

#include "qfae/util/error.h"

namespace qfae {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) throw UserError("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw UserError("cannot write '" + path + "': " + ec.message());
}

}  // namespace qfae
