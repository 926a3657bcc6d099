// Config reliability: NaN and infinity refused for every float key, every key survives the
// saved config.yaml that eval, infer and --resume read back, and absurd sizes are refused in
// validation, before anything allocates.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "../../src/config/fields.h"
#include "qfae/config/loader.h"
#include "../support/run_binary.h"
#include "../support/user_error.h"

namespace fs = std::filesystem;
using qfae::config::Config;
using qfae::config::LoadedConfig;
using qfae::test::TempDir;
using qfae::test::user_error;

namespace {

// The float keys, lists of floats included.
std::vector<std::string> float_keys() {
  Config config;
  std::vector<std::string> keys;
  for (const auto& f : qfae::config::detail::fields_of(config)) {
    if (std::holds_alternative<double*>(f.ptr) ||
        std::holds_alternative<std::vector<double>*>(f.ptr)) {
      keys.push_back(f.key);
    }
  }
  return keys;
}

// Every field moved off its default by a type-specific change; doubles get values that need all
// 17 significant digits, or are extreme (the smallest subnormal, the largest double, -0).
void perturb_every_field(Config& config) {
  int i = 0;
  const double awkward[] = {0.1 + 0.2, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, -0.0,
                            2.5e-05,   123456789.123456789};
  for (const auto& f : qfae::config::detail::fields_of(config)) {
    struct Change {
      int i;
      const double* awkward;
      void operator()(bool* p) const { *p = !*p; }
      void operator()(int64_t* p) const { *p = *p + 1000000007 * (i % 2 ? 1 : -1); }
      void operator()(double* p) const { *p = awkward[i % 7]; }
      void operator()(std::string* p) const { *p += " #: 'x' \"y\" {z} ü"; }
      void operator()(std::vector<int64_t>* p) const { p->push_back(-9223372036854775807LL); }
      void operator()(std::vector<double>* p) const { p->push_back(awkward[i % 7]); }
      void operator()(std::vector<std::string>* p) const { p->push_back("/a b/c,d: e.pt"); }
    };
    std::visit(Change{i++, awkward}, f.ptr);
  }
}

}  // namespace

TEST(ReliabilityConfig, EveryFloatKeyRefusesNanAndInfinity) {
  const auto keys = float_keys();
  ASSERT_GE(keys.size(), 25u);  // data, model, train, eval all have float keys
  int refused = 0;
  for (const auto& key : keys) {
    for (const char* value : {".nan", ".inf", "-.inf", "[.nan]"}) {
      LoadedConfig l;
      try {
        qfae::config::apply_assignment(l, key + "=" + value);
      } catch (const qfae::UserError&) {
        continue;  // a list given to a scalar key: refused as a type error already
      }
      const auto msg = user_error([&] { qfae::config::validate(l.config, l.sources); });
      EXPECT_EQ(msg.rfind(key + ":", 0), 0u) << key << "=" << value << " -> '" << msg << "'";
      EXPECT_NE(msg.find("finite"), std::string::npos) << key << "=" << value << " -> " << msg;
      ++refused;
    }
  }
  EXPECT_GE(refused, static_cast<int>(3 * keys.size()));
}

TEST(ReliabilityConfig, TheSavedConfigReloadsEveryKeyExactly) {
  Config config;
  perturb_every_field(config);
  TempDir dir;
  const auto path = dir.path() / "config.yaml";
  qfae::config::save_yaml(config, path.string());
  const auto back = qfae::config::load_config({path.string()}, {}).config;
  Config expected = config, got = back;
  const auto want = qfae::config::detail::fields_of(expected);
  const auto have = qfae::config::detail::fields_of(got);
  ASSERT_EQ(want.size(), have.size());
  for (size_t i = 0; i < want.size(); ++i) {
    std::visit(
        [&](auto* w) {
          using T = std::remove_pointer_t<decltype(w)>;
          auto* h = std::get<T*>(have[i].ptr);
          if constexpr (std::is_same_v<T, std::string>) {
            // Path keys come back resolved against the file's folder (a relative path does).
            if (want[i].is_path && !w->empty() && fs::path(*w).is_relative()) {
              EXPECT_EQ(fs::path(*h), (dir.path() / *w).lexically_normal()) << want[i].key;
              return;
            }
          }
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            if (want[i].is_path) {
              ASSERT_EQ(h->size(), w->size()) << want[i].key;
              for (size_t k = 0; k < w->size(); ++k) {
                const fs::path p((*w)[k]);
                EXPECT_EQ(fs::path((*h)[k]),
                          p.is_relative() ? (dir.path() / p).lexically_normal() : p)
                    << want[i].key;
              }
              return;
            }
          }
          EXPECT_EQ(*h, *w) << want[i].key;
          if constexpr (std::is_same_v<T, double>) {
            EXPECT_EQ(std::signbit(*h), std::signbit(*w)) << want[i].key;
          }
        },
        want[i].ptr);
  }
}

TEST(ReliabilityConfig, AbsurdSizesAreRefusedInValidation) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"model.decoder_dim=1000000000", "model.decoder_dim"},
      {"model.dim=4000000000", "model.dim"},
      {"model.qformer_mlp_ratio=1e6", "model.qformer_mlp_ratio"},
      {"model.decoder_mlp_ratio=1e6", "model.decoder_mlp_ratio"},
      {"model.decoder_depth=100000000", "model.decoder_depth"},
      {"model.qformer_depth=100000000", "model.qformer_depth"},
      {"model.decoder_heads=4096", "model.decoder_heads"},
      {"eval.smoothing_sigma=1e9", "eval.smoothing_sigma"},
      {"train.epochs=9223372036854775000", "train.epochs"},
      {"train.max_steps=9223372036854775000", "train.max_steps"},
      {"train.batch_size=4000000000", "train.batch_size"},
      {"eval.bootstrap=9000000000000", "eval.bootstrap"},
      {"data.image_size=1000000", "data.image_size"},
      {"data.workers=100000", "data.workers"},
      {"threads=100000", "threads"},
  };
  for (const auto& [assignment, key] : cases) {
    LoadedConfig l;
    qfae::config::apply_assignment(l, assignment);
    const auto msg = user_error([&] { qfae::config::validate(l.config, l.sources); });
    EXPECT_EQ(msg.rfind(key + ":", 0), 0u) << assignment << " -> '" << msg << "'";
  }
  // Every size within its bound, together far more than any machine's memory: 1024 blocks of
  // width 65532 (a multiple of the 12 heads) are 1024 x 12 x 65532^2 = 5.3e13 float32
  // parameters, 2e5 GB.
  LoadedConfig l;
  qfae::config::apply_assignment(l, "model.decoder_dim=65532");
  qfae::config::apply_assignment(l, "model.decoder_depth=1024");
  const auto msg = user_error([&] { qfae::config::validate(l.config, l.sources); });
  EXPECT_NE(msg.find("fits in memory"), std::string::npos) << msg;
}

TEST(ReliabilityConfigCli, SummaryOfAHugeModelIsRefusedAtOnce) {
  for (const char* set : {"model.decoder_depth=100000000", "model.decoder_dim=65532 --set "
                                                           "model.decoder_depth=1024"}) {
    const auto r = qfae::test::run_qfae(std::string("config --summary --set ") + set);
    EXPECT_EQ(r.code, 2) << set << ": " << r.err;
    EXPECT_NE(r.err.find("model.decoder_d"), std::string::npos) << r.err;
  }
  const auto r = qfae::test::run_qfae("config --set train.lr=.inf");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("train.lr: inf"), std::string::npos) << r.err;
}

// A key or section written twice in one file is refused naming both lines (YAML readers keep the
// last silently); each file of several may still set the same key.
TEST(ReliabilityConfig, DuplicateKeysAndSectionsNameBothLines) {
  TempDir dir;
  const auto keys = dir.write("keys.yaml", "train:\n  lr: 1e-4\n  epochs: 3\n  lr: 2e-4\n");
  auto msg = user_error([&] { qfae::config::load_config({keys.string()}, {}); });
  EXPECT_NE(msg.find(keys.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'train.lr' is given twice (first on line 2)"), std::string::npos) << msg;
  const auto sections = dir.write("sections.yaml", "train:\n  lr: 1e-4\ndata:\n  std: 0.2\n"
                                                   "train:\n  epochs: 3\n");
  msg = user_error([&] { qfae::config::load_config({sections.string()}, {}); });
  EXPECT_NE(msg.find("line 5: 'train' is given twice (first on line 1)"), std::string::npos)
      << msg;
  const auto other = dir.write("other.yaml", "train:\n  lr: 3e-4\n");
  const auto l = qfae::config::load_config({other.string(), other.string()}, {});
  EXPECT_DOUBLE_EQ(l.config.train.lr, 3e-4);
}

// Lists: bounded before they are converted, and no value twice where it would count twice.
TEST(ReliabilityConfig, ListsAreBoundedAndListNoValueTwice) {
  std::string huge = "backbone.taps=[";
  for (int i = 0; i < 300; ++i) huge += (i ? "," : "") + std::to_string(i);
  auto msg = user_error([&] { qfae::config::load_config({}, {huge + "]"}); });
  EXPECT_NE(msg.find("backbone.taps: a list of 300 entries; at most 256"), std::string::npos)
      << msg;
  for (const auto& [set, key] : std::vector<std::pair<std::string, std::string>>{
           {"backbone.taps=[-2, -4, -2]", "backbone.taps"},
           {"loss.layers=[15, 15]", "loss.layers"},
           {"eval.layers=[11, 15, 11]", "eval.layers"},
           {"loss.patch_sizes=[32, 32]", "loss.patch_sizes"},
           {"eval.patch_sizes=[16, 56, 16]", "eval.patch_sizes"}}) {
    const auto l = qfae::config::load_config({}, {set});
    msg = user_error([&] { qfae::config::validate(l.config, l.sources, false); });
    EXPECT_EQ(msg.rfind(key + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("(from --set)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("is listed twice"), std::string::npos) << msg;
  }
}

// Messages that said the wrong thing: an empty value, a folder given as a file, where a list
// entry came from, a name no file system takes.
TEST(ReliabilityConfig, MessagesSayWhatIsWrong) {
  auto msg = user_error([&] { qfae::config::load_config({}, {"train.lr="}); });
  EXPECT_NE(msg.find("train.lr: no value given; expected a number"), std::string::npos) << msg;

  TempDir dir;
  auto l = qfae::config::load_config(
      {}, {"backbone.encoders=[" + dir.path().string() + "]", "data.root=" + dir.path().string(),
           "backbone.perceptual=" + dir.path().string()});
  msg = user_error([&] { qfae::config::validate(l.config, l.sources, true); });
  EXPECT_EQ(msg.rfind("backbone.encoders[0]: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("(from --set)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a file (this is a folder)"), std::string::npos) << msg;

  l = qfae::config::load_config({}, {"backbone.encoders=[" + std::string(5000, 'x') + ".pt]",
                                     "data.root=" + dir.path().string()});
  msg = user_error([&] { qfae::config::validate(l.config, l.sources, true); });
  EXPECT_EQ(msg.rfind("backbone.encoders[0]: ", 0), 0u) << msg;

  l = qfae::config::load_config({}, {"name=" + std::string(100000, 'a')});
  msg = user_error([&] { qfae::config::validate(l.config, l.sources, false); });
  EXPECT_EQ(msg.rfind("name: ", 0), 0u) << msg;
  EXPECT_LT(msg.size(), 400u) << "the message quotes the start of the name, not all of it";
}

// NaN passes CLI11's PositiveNumber; --dist-timeout and --peak-tflops refuse it (exit 2).
TEST(ReliabilityConfigCli, NumberFlagsRefuseNan) {
  for (const auto& args : {std::string("train --dist-timeout nan"),
                           std::string("bench --peak-tflops nan"),
                           std::string("train --dist-timeout inf")}) {
    const auto r = qfae::test::run_qfae(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find("finite number > 0"), std::string::npos) << args << ": " << r.err;
  }
}

// Range messages name their bound in a few digits: CLI11's PositiveNumber printed the largest
// double (309 digits); a number beyond its type is "out of the range", not "not a number".
TEST(ReliabilityConfigCli, RangeMessagesAreShortAndTrue) {
  for (const auto& [args, expected] : std::vector<std::pair<std::string, std::string>>{
           {"bench --iters -1", "'-1' is not a whole number >= 1"},
           {"bench --warmup -5", "'-5' is not a whole number >= 0"},
           {"bench --batch-size 0", "'0' is not a whole number >= 1"},
           {"bench --iters 99999999999999999999999", "is not a whole number >= 1"}}) {
    const auto r = qfae::test::run_qfae(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << args << ": " << r.err;
    EXPECT_LT(r.err.size(), 300u) << args << ": " << r.err;
  }
  auto msg = user_error([&] { qfae::config::load_config({}, {"train.lr=1e400"}); });
  EXPECT_NE(msg.find("train.lr: '1e400' is out of the range of a number"), std::string::npos)
      << msg;
  msg = user_error([&] { qfae::config::load_config({}, {"train.epochs=99999999999999999999"}); });
  EXPECT_NE(msg.find("is out of the range of a 64-bit integer"), std::string::npos) << msg;
}
