// The real binary's prepare and train subcommands: files written, and bad input refused with one
// clear line and exit code 2 before anything heavy runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "qfae/io/safetensors.h"
#include "../support/run_binary.h"
#include "../support/tiny_run.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::tiny_sets;

namespace {
size_t count_files(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

}  // namespace

TEST(PrepareCli, WritesASyntheticBmadTreeOnce) {
  TempDir dir;
  const auto root = dir.path() / "demo";
  auto r = run_qfae("prepare --synthetic '" + root.string() +
                    "' --image-size 32 --train 5 --val 2 --test-normal 3 --test-anomalous 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 5u);
  EXPECT_EQ(count_files(root / "valid" / "good" / "img"), 2u);
  EXPECT_EQ(count_files(root / "test" / "good" / "img"), 3u);
  EXPECT_EQ(count_files(root / "test" / "Ungood" / "img"), 4u);
  EXPECT_EQ(count_files(root / "test" / "Ungood" / "label"), 4u);
  // The same request keeps the dataset; another is refused naming the first difference, and the
  // dataset stays; --force replaces it whole. A dataset that does not record its request (an
  // earlier qfae's) is kept, as before.
  const std::string same = "prepare --synthetic '" + root.string() +
                           "' --image-size 32 --train 5 --val 2 --test-normal 3 --test-anomalous 4";
  r = run_qfae(same);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("already holds this dataset"), std::string::npos) << r.err;
  r = run_qfae(same + " --seed 7");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("seed: 42 there, 7 now"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 5u);
  r = run_qfae("prepare --synthetic '" + root.string() + "' --train 9 --force");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 9u);
  fs::remove(root / "prepare.json");
  r = run_qfae("prepare --synthetic '" + root.string() + "' --train 3");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count_files(root / "train" / "good" / "img"), 9u);
  EXPECT_NE(r.err.find("does not say what it was made from"), std::string::npos) << r.err;
}

TEST(TrainCli, RefusesBadInputWithOneLine) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);  // writes the dataset
  struct Case {
    std::vector<std::string> sets;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"data.root=" + (dir.path() / "nowhere").string()}, "data.root"},
      {{"backbone.encoder_dim=64"}, "backbone.encoder_dim"},
      {{"backbone.perceptual=" + qfae::test::fixture("backbones/tiny_dino.pt")},
       "backbone.perceptual_model"},
      {{"loss.layers=[9]"}, "loss.layers"},
      {{"train.batch_size=100"}, "train.batch_size"},
      {{"backbone.encoders=[" + (dir.path() / "missing.pt").string() + "]"}, "missing.pt"},
  };
  for (const auto& c : cases) {
    const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                            tiny_sets(data, c.sets));
    EXPECT_EQ(r.code, 2) << c.expect << ": " << r.err;
    const auto last_line = r.err.substr(r.err.rfind("qfae: "));
    EXPECT_NE(last_line.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(last_line.begin(), last_line.end(), '\n'), 1) << r.err;
  }
}

// --init-from: weights from a run (or its checkpoint folder, or a .safetensors file), a fresh
// optimizer, schedule and step count, the source recorded in the run's config; a model of other
// sizes is refused naming the first tensor that differs.
TEST(TrainCli, InitFromStartsFromGivenWeightsWithAFreshSchedule) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  const auto runs = dir.path() / "runs";
  const auto train = [&](const std::string& name, const std::string& extra,
                         const std::vector<std::string>& sets = {}) {
    auto all = sets;
    all.push_back("name=" + name);
    return run_qfae("train -o '" + runs.string() + "'" + tiny_sets(data, all) + " " + extra);
  };
  auto r = train("source", "", {"train.epochs=1", "train.eval_every=0"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto source = runs / "source" / "latest";
  const auto source_weights =
      qfae::io::load_safetensors((source / "checkpoints/last/model.safetensors").string());

  // A learning rate of 1e-30 moves no weight by a visible amount in one Adam step (|step| <= lr
  // at Adam's first step), so the tuned run's weights are the source's: loaded, not drawn.
  for (const auto& from : {source.string(), (source / "checkpoints/last").string(),
                           (source / "checkpoints/last/model.safetensors").string()}) {
    r = train("tuned", "--init-from '" + from + "'",
              {"train.max_steps=1", "train.lr=1e-30", "train.eval_every=0"});
    ASSERT_EQ(r.code, 0) << from << ": " << r.err;
    const auto tuned = runs / "tuned" / "latest";
    const auto state =
        nlohmann::json::parse(qfae::test::read_text(tuned / "checkpoints/last/state.json"));
    EXPECT_EQ(state.at("step").get<int64_t>(), 1) << "a fresh step count, not the source's";
    const auto weights =
        qfae::io::load_safetensors((tuned / "checkpoints/last/model.safetensors").string());
    ASSERT_EQ(weights.tensors.size(), source_weights.tensors.size());
    for (const auto& [name, t] : source_weights.tensors) {
      const double d = (weights.tensors.at(name) - t).abs().max().item<double>();
      EXPECT_LE(d, 1e-20) << name << " from " << from;
    }
    const auto config = qfae::test::read_text(tuned / "config.yaml");
    EXPECT_NE(config.find("init_from: \"" + fs::absolute(from).lexically_normal().string()),
              std::string::npos)
        << config;
  }

  // Other sizes: exit 2 naming the key and the first tensor that differs.
  r = train("wider", "--init-from '" + source.string() + "'", {"model.decoder_mlp_ratio=2"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("train.init_from"), std::string::npos) << r.err;
  // In name order the bias comes first: 4 x 32 rows in the source, 2 x 32 in this model.
  EXPECT_NE(r.err.find("'decoder.decoder_blocks.0.mlp.fc1.bias' has shape [128], the model "
                       "expects [64]"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(runs / "wider")) << "a run that cannot start leaves no folder";
  // A file of other names, and --init-from with --resume.
  r = train("foreign", "--init-from '" + qfae::test::fixture("parity_small.safetensors") + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("train.init_from"), std::string::npos) << r.err;
  r = train("both", "--init-from '" + source.string() + "' --resume '" + source.string() + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
}
