// Small file helpers shared by every area.
#pragma once
#include <string>

namespace qfae {

// Writes `text` to `path` atomically: a temporary file beside it, then a rename, so a crash
// never leaves half a file. UserError naming the path when it cannot be written (the temporary
// file removed). Binary data is fine: `text` is written byte for byte.
void write_file_atomic(const std::string& path, const std::string& text);

// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or newline.
std::string csv_field(const std::string& text);

}  // namespace qfae
