// SHA-256 against the FIPS 180-4 / NIST example digests, and files against coreutils' sha256sum.
#include <gtest/gtest.h>

#include <fstream>

#include "../support/run_binary.h"
#include "qfae/util/error.h"
#include "qfae/util/sha256.h"

namespace qfae {
namespace {

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Pieces of every size, across the 64-byte block and the 1 MiB read buffer: one digest.
TEST(Sha256, FilesMatchSha256sumAndPiecesMatchTheWhole) {
  test::TempDir dir;
  std::string bytes;
  uint32_t x = 12345;
  for (int i = 0; i < (1 << 20) + 4099; ++i) {
    x = x * 1664525u + 1013904223u;
    bytes.push_back(static_cast<char>(x >> 24));
  }
  const auto path = dir.path() / "data.bin";
  std::ofstream(path, std::ios::binary) << bytes;
  const auto r = test::run_shell("sha256sum '" + path.string() + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = r.out.substr(0, 64);
  EXPECT_EQ(sha256_file(path.string()), expected);
  EXPECT_EQ(sha256_hex(bytes), expected);
  for (size_t piece : {1ul, 63ul, 64ul, 65ul, 1000ul}) {
    Sha256 sha;
    for (size_t at = 0; at < bytes.size(); at += piece) {
      sha.update(bytes.data() + at, std::min(piece, bytes.size() - at));
    }
    EXPECT_EQ(sha.hex(), expected) << "pieces of " << piece;
  }
  EXPECT_THROW(sha256_file((dir.path() / "missing").string()), UserError);
}

}  // namespace
}  // namespace qfae
