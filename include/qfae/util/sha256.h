// SHA-256 (FIPS 180-4) as lowercase hex: the config digest written with results, and the
// checksums of checkpoint files (the format of `sha256sum`, so `sha256sum -c` checks them too).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace qfae {

// Incremental: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> pending_{};
  size_t used_ = 0;
  uint64_t bytes_ = 0;
};

std::string sha256_hex(const std::string& data);
// The digest of a file's bytes, read in 1 MiB pieces; UserError naming it when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace qfae
