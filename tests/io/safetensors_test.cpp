// safetensors reader/writer: bitwise round trips, a hand-made file, the reference fixture, the
// writer's byte layout parsed by hand, and malformed files rejected with the path in the message.
#include "qfae/io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qfae/util/error.h"

namespace fs = std::filesystem;
using qfae::io::load_safetensors;
using qfae::io::save_safetensors;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("qfae_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  static void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
  }
  static std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // An 8-byte little-endian length, the header text as given, then the data bytes.
  static std::string make_file(const std::string& header, const std::string& data) {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return out + header + data;
  }
  // The message of the UserError that loading `path` throws, or "" when it loads.
  static std::string load_error(const std::string& path) {
    try {
      load_safetensors(path);
    } catch (const qfae::UserError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

std::string raw_bytes(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

void expect_bitwise_equal(const torch::Tensor& expected, const torch::Tensor& actual,
                          const std::string& name) {
  ASSERT_TRUE(actual.defined()) << name;
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type()) << name;
  EXPECT_EQ(actual.sizes(), expected.sizes()) << name;
  EXPECT_EQ(raw_bytes(actual), raw_bytes(expected)) << name;
}


TEST_F(SafetensorsTest, RoundTripIsBitwiseExactForEveryDtype) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto floats = torch::tensor({1.0f, -0.0f, inf, -inf, nan, 1e-40f /*denormal*/, 3.14159f});
  std::map<std::string, torch::Tensor> tensors = {
      {"f32", floats.reshape({7, 1})},
      {"f64", torch::tensor({1.0 / 3.0, -1e300}, torch::kFloat64)},
      {"f16", torch::tensor({0.1f, -65504.0f, 6e-8f}).to(torch::kFloat16)},
      {"bf16", torch::tensor({0.1f, 1e38f, -3.0f}).to(torch::kBFloat16)},
      {"i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{0},
                             std::numeric_limits<int64_t>::max()})},
      {"i32", torch::tensor({-7, 123456789}, torch::kInt32)},
      {"i16", torch::tensor({-300, 300}, torch::kInt16)},
      {"i8", torch::tensor({-128, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 200, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f)},                         // 0-d
      {"empty", torch::zeros({0, 3})},                         // no bytes
      {"transposed", torch::arange(6.0f).reshape({2, 3}).t()}  // not contiguous
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"json", R"({"enc_dim": 48, "quote": "\""})"}, {"unicode", "µ → ü"}};
  save_safetensors(file("all.safetensors"), tensors, metadata);
  EXPECT_FALSE(fs::exists(file("all.safetensors.tmp")));

  const auto loaded = load_safetensors(file("all.safetensors"));
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors)
    expect_bitwise_equal(tensor, loaded.tensors.at(name), name);
  EXPECT_EQ(loaded.tensors.at("scalar").dim(), 0);
  EXPECT_EQ(loaded.tensors.at("transposed")[0][1].item<float>(), 3.0f);  // [[0, 3], [1, 4], [2, 5]]
}

TEST_F(SafetensorsTest, ReadsHandCraftedFile) {
  // 1.0f = 0x3F800000, -2.5f = 0xC0200000, int16 300 = 0x012C, -2 = 0xFFFE, bf16 1.5 = 0x3FC0.
  const std::string header = R"({"__metadata__":{"who":"hand"},)"
                             R"("b":{"dtype":"I16","shape":[2,1],"data_offsets":[8,12]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("c":{"dtype":"BF16","shape":[],"data_offsets":[12,14]}})";
  const std::string data("\x00\x00\x80\x3F\x00\x00\x20\xC0\x2C\x01\xFE\xFF\xC0\x3F", 14);
  write_bytes(file("hand.safetensors"), make_file(header, data));

  const auto loaded = load_safetensors(file("hand.safetensors"));
  EXPECT_EQ(loaded.metadata.at("who"), "hand");
  const auto& a = loaded.tensors.at("a");
  ASSERT_EQ(a.scalar_type(), torch::kFloat32);
  ASSERT_EQ(a.sizes(), torch::IntArrayRef({2}));
  EXPECT_EQ(a[0].item<float>(), 1.0f);
  EXPECT_EQ(a[1].item<float>(), -2.5f);
  const auto& b = loaded.tensors.at("b");
  ASSERT_EQ(b.scalar_type(), torch::kInt16);
  ASSERT_EQ(b.sizes(), torch::IntArrayRef({2, 1}));
  EXPECT_EQ(b[0][0].item<int64_t>(), 300);
  EXPECT_EQ(b[1][0].item<int64_t>(), -2);
  const auto& c = loaded.tensors.at("c");
  ASSERT_EQ(c.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c.dim(), 0);
  EXPECT_EQ(c.item<float>(), 1.5f);
}

TEST_F(SafetensorsTest, ReadsReferenceParityFixture) {
  const auto loaded =
      load_safetensors(std::string(QFAE_TEST_FIXTURES) + "/parity_small.safetensors");
  const auto& tokens = loaded.tensors.at("in.tokens");
  EXPECT_EQ(tokens.scalar_type(), torch::kFloat32);
  EXPECT_EQ(tokens.sizes(), torch::IntArrayRef({2, 42, 48}));
  // Values read from the file with Python's struct module.
  EXPECT_EQ(tokens[0][0][0].item<float>(), -1.3568077087402344f);
  EXPECT_EQ(tokens[0][0][1].item<float>(), 0.01539413258433342f);
  EXPECT_EQ(tokens[1][41][47].item<float>(), 0.22665925323963165f);
  EXPECT_NEAR(tokens.to(torch::kFloat64).sum().item<double>(), 84.89325343410019, 1e-9);
  const auto& queries = loaded.tensors.at("state.junction.queries");
  EXPECT_EQ(queries.sizes(), torch::IntArrayRef({1, 16, 32}));
  EXPECT_EQ(queries[0][15][31].item<float>(), 0.3451354205608368f);
  EXPECT_EQ(loaded.tensors.at("state.final_projection.weight").sizes(),
            torch::IntArrayRef({32, 48}));
  EXPECT_EQ(loaded.tensors.at("out.x_hat").sizes(), torch::IntArrayRef({2, 3, 32, 32}));

  const auto fixture = nlohmann::json::parse(loaded.metadata.at("qfae_fixture"));
  EXPECT_EQ(fixture.at("enc_dim").get<int>(), 48);
  EXPECT_EQ(fixture.at("proj_dim").get<int>(), 32);
}

TEST_F(SafetensorsTest, WriterLayoutIsPaddedSortedAndContiguous) {
  const std::map<std::string, torch::Tensor> tensors = {
      {"zeta", torch::tensor({1.0f, 2.0f, 3.0f})},
      {"alpha", torch::tensor({int64_t{7}})},
      {"mid", torch::tensor({1, 2, 3}, torch::kUInt8)}};
  save_safetensors(file("layout.safetensors"), tensors, {{"k", "v"}});
  const std::string bytes = read_bytes(file("layout.safetensors"));

  // Hand parse: u64 little-endian header length, then the header text.
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 8 + 3 + 12);  // I64 + 3 x U8 + 3 x F32
  const std::string header = bytes.substr(8, n);
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(n - 1 - last, 8u);  // at most 7 spaces of padding
  EXPECT_LT(header.find("\"alpha\""), header.find("\"mid\""));
  EXPECT_LT(header.find("\"mid\""), header.find("\"zeta\""));

  const auto json = nlohmann::json::parse(header);
  EXPECT_EQ(json.at("__metadata__").at("k"), "v");
  EXPECT_EQ(json.at("alpha").at("dtype"), "I64");
  EXPECT_EQ(json.at("alpha").at("data_offsets"), nlohmann::json({0, 8}));
  EXPECT_EQ(json.at("mid").at("dtype"), "U8");
  EXPECT_EQ(json.at("mid").at("data_offsets"), nlohmann::json({8, 11}));
  EXPECT_EQ(json.at("zeta").at("dtype"), "F32");
  EXPECT_EQ(json.at("zeta").at("shape"), nlohmann::json({3}));
  EXPECT_EQ(json.at("zeta").at("data_offsets"), nlohmann::json({11, 23}));

  const std::string data = bytes.substr(8 + n);
  EXPECT_EQ(data.substr(0, 8), std::string("\x07\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(data.substr(8, 3), std::string("\x01\x02\x03"));
  EXPECT_EQ(data.substr(11, 4), std::string("\x00\x00\x80\x3F", 4));  // 1.0f
  EXPECT_EQ(data.substr(19, 4), std::string("\x00\x00\x40\x40", 4));  // 3.0f
}

TEST_F(SafetensorsTest, OverwritesAnExistingFileWhole) {
  const std::string path = file("w.safetensors");
  save_safetensors(path, {{"big", torch::zeros({1000})}});
  save_safetensors(path, {{"small", torch::ones({2})}});
  const auto loaded = load_safetensors(path);
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_TRUE(loaded.tensors.count("small"));
  EXPECT_TRUE(loaded.metadata.empty());
}

TEST_F(SafetensorsTest, RejectsMalformedFilesNamingThePath) {
  const auto check = [&](const std::string& name, const std::string& bytes,
                         const std::string& problem) {
    const std::string path = file(name);
    write_bytes(path, bytes);
    const std::string message = load_error(path);
    EXPECT_NE(message.find(path), std::string::npos) << name << ": " << message;
    EXPECT_NE(message.find(problem), std::string::npos) << name << ": " << message;
  };
  const std::string f32x2 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string eight(8, '\0');
  check("short", std::string("\x10\0\0\0", 4), "shorter than the 8-byte");
  check("long_header", make_file(f32x2, eight).substr(0, 20), "larger than the file");
  check("garbage", make_file("this is not json", eight), "not valid JSON");
  check("array", make_file("[1, 2]", ""), "not a JSON object");
  check("dtype", make_file(R"({"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", "ab"),
        "unknown or unsupported dtype 'F8'");
  check("past_end", make_file(f32x2, std::string(4, '\0')), "outside the data buffer");
  check("size", make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
        "needs 12");
  check("negative", make_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[-4,4]}})", eight),
        "non-negative");
  check("overlap",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  std::string(12, '\0')),
        "overlap");
  check("bad_shape", make_file(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", ""),
        "non-negative integers");
  check("bad_metadata", make_file(R"({"__metadata__":{"k":1}})", ""), "not a string");
  check("bad_bool", make_file(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "\x07"),
        "BOOL");
  check("huge_shape",
        make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                  eight),
        "more than the whole buffer");
}

TEST_F(SafetensorsTest, RejectsTruncatedAndMissingFiles) {
  const std::string path = file("cut.safetensors");
  save_safetensors(path, {{"w", torch::ones({4, 4})}});
  const std::string bytes = read_bytes(path);
  write_bytes(path, bytes.substr(0, bytes.size() - 3));
  const std::string message = load_error(path);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("'w'"), std::string::npos) << message;

  const std::string missing = file("nowhere.safetensors");
  EXPECT_NE(load_error(missing).find(missing), std::string::npos);
}

TEST_F(SafetensorsTest, WriterRejectsUnstorableTensors) {
  EXPECT_THROW(save_safetensors(file("x"), {{"c", torch::zeros({2}, torch::kComplexFloat)}}),
               std::invalid_argument);
  EXPECT_THROW(save_safetensors(file("x"), {{"u", torch::Tensor()}}), std::invalid_argument);
  EXPECT_THROW(save_safetensors(file("x"), {{"__metadata__", torch::zeros({1})}}),
               std::invalid_argument);
  EXPECT_THROW(save_safetensors(file("no_dir/x"), {{"a", torch::zeros({1})}}), qfae::UserError);
  EXPECT_FALSE(fs::exists(file("x")));
}

}  // namespace
