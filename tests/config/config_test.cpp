// Config defaults, YAML files, --set overrides, round trips and validation messages.
#include <gtest/gtest.h>

#include <filesystem>

#include "qfae/config/loader.h"
#include "qfae/util/error.h"
#include "../support/run_binary.h"
#include "../support/user_error.h"

namespace fs = std::filesystem;
using qfae::UserError;
using qfae::config::Config;
using qfae::config::LoadedConfig;
using qfae::test::TempDir;

using qfae::test::user_error;

TEST(Config, DefaultsFollowTheSpec) {
  const Config c;
  EXPECT_EQ(c.data.image_size, 224);
  EXPECT_DOUBLE_EQ(c.data.mean, 0.449);
  EXPECT_DOUBLE_EQ(c.data.std, 0.226);
  EXPECT_EQ(c.backbone.taps, (std::vector<int64_t>{-2, -4}));
  EXPECT_EQ(c.model.queries, 784);
  EXPECT_EQ(c.decoder_grid() * c.decoder_grid(), c.model.queries);
  EXPECT_TRUE(c.model.causal);
  EXPECT_FALSE(c.model.residual);
  EXPECT_EQ(c.loss.patch_sizes, (std::vector<int64_t>{32, 56}));
  EXPECT_EQ(c.loss.layers, (std::vector<int64_t>{15, 19}));
  EXPECT_EQ(c.eval.patch_sizes, (std::vector<int64_t>{16, 32, 56}));
  EXPECT_EQ(c.eval.layers, (std::vector<int64_t>{11, 15, 19}));
  EXPECT_EQ(c.train.seed, 42);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.train.epochs, 300);
  EXPECT_DOUBLE_EQ(c.train.lr, 8e-5);
  EXPECT_DOUBLE_EQ(c.train.final_div_factor, 1e4);
  EXPECT_NO_THROW(qfae::config::validate(c));
}

TEST(Config, FilesLayerAndResolvePathsAgainstTheirFolder) {
  TempDir dir;
  const auto a = dir.write("a/base.yaml",
                           "name: base\ndata:\n  root: ../data\n  image_size: 112\n"
                           "train:\n  lr: 1e-4\n  batch_size: 8\n");
  const auto b = dir.write("b/over.yaml",
                           "train:\n  lr: 2.5e-4\nbackbone:\n  encoders: [x.pt, /abs/y.pt]\n"
                           "  taps: [-1]\n");
  const auto loaded = qfae::config::load_config({a.string(), b.string()}, {"train.batch_size=4"});
  const auto& c = loaded.config;
  EXPECT_EQ(c.name, "base");
  EXPECT_EQ(c.data.image_size, 112);
  EXPECT_DOUBLE_EQ(c.train.lr, 2.5e-4);  // the later file wins
  EXPECT_EQ(c.train.batch_size, 4);      // --set wins over files
  EXPECT_EQ(fs::path(c.data.root), (dir.path() / "data").lexically_normal());
  ASSERT_EQ(c.backbone.encoders.size(), 2u);
  EXPECT_EQ(fs::path(c.backbone.encoders[0]), (dir.path() / "b" / "x.pt").lexically_normal());
  EXPECT_EQ(c.backbone.encoders[1], "/abs/y.pt");
  EXPECT_EQ(c.backbone.taps, (std::vector<int64_t>{-1}));
  EXPECT_EQ(loaded.sources.at("train.lr"), b.string());
  EXPECT_EQ(loaded.sources.at("train.batch_size"), "--set");
  EXPECT_EQ(loaded.sources.count("train.epochs"), 0u);
}

TEST(Config, FileErrorsNameTheFileAndTheKey) {
  TempDir dir;
  const auto typo = dir.write("typo.yaml", "train:\n  lrr: 1\n");
  auto msg = user_error([&] { qfae::config::load_config({typo.string()}, {}); });
  EXPECT_NE(msg.find(typo.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lrr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;  // the suggestion

  const auto type = dir.write("type.yaml", "model:\n  queries: many\n");
  msg = user_error([&] { qfae::config::load_config({type.string()}, {}); });
  EXPECT_NE(msg.find(type.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.queries"), std::string::npos) << msg;
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;

  const auto section = dir.write("section.yaml", "train: 3\n");
  msg = user_error([&] { qfae::config::load_config({section.string()}, {}); });
  EXPECT_NE(msg.find("'train' is a section"), std::string::npos) << msg;

  const auto broken = dir.write("broken.yaml", "train: [1, 2\n");
  msg = user_error([&] { qfae::config::load_config({broken.string()}, {}); });
  EXPECT_NE(msg.find("not valid YAML"), std::string::npos) << msg;

  msg = user_error([&] { qfae::config::load_config({(dir.path() / "none.yaml").string()}, {}); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(Config, SetIsTyped) {
  LoadedConfig l;
  qfae::config::apply_assignment(l, "model.causal=false");
  qfae::config::apply_assignment(l, "backbone.taps=[-1, -3, -5]");
  qfae::config::apply_assignment(l, "train.lr=3e-4");
  qfae::config::apply_assignment(l, "eval.pixel_reduction=mean");
  EXPECT_FALSE(l.config.model.causal);
  EXPECT_EQ(l.config.backbone.taps, (std::vector<int64_t>{-1, -3, -5}));
  EXPECT_DOUBLE_EQ(l.config.train.lr, 3e-4);
  EXPECT_EQ(l.config.eval.pixel_reduction, "mean");

  EXPECT_THROW(qfae::config::apply_assignment(l, "train.epochs=1.5"), UserError);
  EXPECT_THROW(qfae::config::apply_assignment(l, "model.causal=maybe"), UserError);
  EXPECT_THROW(qfae::config::apply_assignment(l, "backbone.taps=[a]"), UserError);
  EXPECT_THROW(qfae::config::apply_assignment(l, "no_equals_sign"), UserError);
  const auto msg = user_error([&] { qfae::config::apply_assignment(l, "data.imagesize=3"); });
  EXPECT_NE(msg.find("data.image_size"), std::string::npos) << msg;
}

// model.mlp_ratio, the one ratio of configs written before the split, sets both MLP ratios;
// whatever comes later (a later file, a --set) still sets either alone.
TEST(Config, MlpRatioShorthandSetsBothRatios) {
  TempDir dir;
  const auto file = dir.write("old.yaml", "model:\n  mlp_ratio: 2.5\n");
  auto l = qfae::config::load_config({file.string()}, {});
  EXPECT_DOUBLE_EQ(l.config.model.qformer_mlp_ratio, 2.5);
  EXPECT_DOUBLE_EQ(l.config.model.decoder_mlp_ratio, 2.5);
  EXPECT_EQ(l.sources.at("model.decoder_mlp_ratio"), file.string());
  l = qfae::config::load_config({file.string()}, {"model.decoder_mlp_ratio=3"});
  EXPECT_DOUBLE_EQ(l.config.model.qformer_mlp_ratio, 2.5);
  EXPECT_DOUBLE_EQ(l.config.model.decoder_mlp_ratio, 3.0);
  l = qfae::config::load_config({}, {"model.mlp_ratio=1.5"});
  EXPECT_DOUBLE_EQ(l.config.model.qformer_mlp_ratio, 1.5);
  EXPECT_DOUBLE_EQ(l.config.model.decoder_mlp_ratio, 1.5);
  EXPECT_EQ(qfae::config::to_yaml(l.config).find("  mlp_ratio:"), std::string::npos)
      << "the resolved config spells out both ratios";
  EXPECT_THROW(qfae::config::load_config({}, {"model.mlp_ratio=wide"}), UserError);
}

TEST(Config, YamlRoundTripKeepsEveryValue) {
  LoadedConfig l;
  for (const char* a : {"name=round", "train.lr=1.2345678901234e-05", "data.mean=0.1",
                        "backbone.encoders=[/a b/c.pt, /d.pt]", "model.residual=true",
                        "train.final_div_factor=10000", "eval.layers=[0, 7]"}) {
    qfae::config::apply_assignment(l, a);
  }
  TempDir dir;
  const auto path = dir.path() / "resolved.yaml";
  qfae::config::save_yaml(l.config, path.string());
  const auto back = qfae::config::load_config({path.string()}, {});
  EXPECT_EQ(qfae::config::to_yaml(back.config), qfae::config::to_yaml(l.config));
  EXPECT_DOUBLE_EQ(back.config.train.lr, 1.2345678901234e-05);
  EXPECT_EQ(back.config.backbone.encoders[0], "/a b/c.pt");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST(Config, ValidationNamesKeyValueSourceAndExpectation) {
  LoadedConfig l;
  qfae::config::apply_assignment(l, "model.queries=100");
  auto msg = user_error([&] { qfae::config::validate(l.config, l.sources); });
  EXPECT_NE(msg.find("model.queries"), std::string::npos) << msg;
  EXPECT_NE(msg.find("100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--set"), std::string::npos) << msg;
  EXPECT_NE(msg.find("784"), std::string::npos) << msg;

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"train.lr=-1", "train.lr"},
      {"data.layout=weird", "data.layout"},
      {"train.precision=fp8", "train.precision"},
      {"eval.pixel_reduction=median", "eval.pixel_reduction"},
      {"loss.patch_sizes=[30]", "loss.patch_sizes"},
      {"model.qformer_heads=7", "model.qformer_heads"},
      {"device=tpu", "device"},
      {"train.warmup=1.5", "train.warmup"},
  };
  for (const auto& [assignment, key] : bad) {
    LoadedConfig one;
    qfae::config::apply_assignment(one, assignment);
    msg = user_error([&] { qfae::config::validate(one.config, one.sources); });
    EXPECT_EQ(msg.rfind(key + ":", 0), 0u) << assignment << " -> " << msg;
  }

  const Config defaults;
  msg = user_error([&] { qfae::config::validate(defaults, {}, /*check_files=*/true); });
  EXPECT_NE(msg.find("data.root"), std::string::npos) << msg;
}

// Values the model or the narrowing to a block index would otherwise meet first: the model names
// no config key, and 2^32 + 1 would silently become block 1.
TEST(Config, ValidationRefusesWhatOnlyTheModelWouldRefuse) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      // Divides the heads (so only the multiple of 4 is wrong): the Decoder cannot build it.
      {{"model.decoder_dim=30", "model.decoder_heads=2"}, "model.decoder_dim"},
      {{"backbone.taps=[4294967295]"}, "backbone.taps"},
      {{"backbone.taps=[-1025]"}, "backbone.taps"},
      {{"loss.layers=[1024]"}, "loss.layers"},
      {{"eval.layers=[1, 4294967297]"}, "eval.layers"},
  };
  for (const auto& [assignments, key] : bad) {
    LoadedConfig one;
    for (const auto& a : assignments) qfae::config::apply_assignment(one, a);
    const auto msg = user_error([&] { qfae::config::validate(one.config, one.sources); });
    EXPECT_EQ(msg.rfind(key + ":", 0), 0u) << assignments.front() << " -> " << msg;
  }
  // The largest block indices pass.
  LoadedConfig edge;
  for (const char* a : {"model.decoder_dim=32", "model.decoder_heads=2",
                        "backbone.taps=[-1024, 1023]", "loss.layers=[1023]", "eval.layers=[0]"}) {
    qfae::config::apply_assignment(edge, a);
  }
  EXPECT_EQ(user_error([&] { qfae::config::validate(edge.config, edge.sources); }), "");
}

TEST(Config, ShippedConfigsLoadAndValidate) {
  for (const char* name : {"brats", "resc", "rsna", "rsna_dicom", "isic", "liver", "demo"}) {
    const std::string path = std::string(QFAE_CONFIG_DIR) + "/" + name + ".yaml";
    SCOPED_TRACE(path);
    const auto l = qfae::config::load_config({path}, {});
    EXPECT_EQ(l.config.name, name);
    EXPECT_NO_THROW(qfae::config::validate(l.config, l.sources));
  }
  const auto rsna = qfae::config::load_config({std::string(QFAE_CONFIG_DIR) + "/rsna.yaml"}, {});
  EXPECT_EQ(rsna.config.eval.pixel_reduction, "mean");
  EXPECT_EQ(rsna.config.eval.layer_reduction, "max");
  const auto rsna_dicom =
      qfae::config::load_config({std::string(QFAE_CONFIG_DIR) + "/rsna_dicom.yaml"}, {});
  EXPECT_EQ(rsna_dicom.config.data.layout, "rsna-dicom");
  EXPECT_EQ(rsna_dicom.config.data.test_size, (std::vector<int64_t>{1000, 1000}));
  const auto liver =
      qfae::config::load_config({std::string(QFAE_CONFIG_DIR) + "/liver.yaml"}, {});
  EXPECT_EQ(liver.config.eval.patch_sizes, (std::vector<int64_t>{8, 16}));
}

TEST(Config, KeysListEverySection) {
  const auto keys = qfae::config::config_keys();
  for (const char* k : {"name", "data.root", "backbone.taps", "model.queries", "loss.layers",
                        "train.lr", "eval.max_fpr"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  }
}
