// SHA-256 (FIPS 180-4) of a string, as lowercase hex: the config digest written with results.
#pragma once
#include <string>

namespace qfae {

std::string sha256_hex(const std::string& data);

}  // namespace qfae
