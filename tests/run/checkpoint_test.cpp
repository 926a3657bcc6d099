// The checkpoint folder run::save_checkpoint writes and load_checkpoint reads: its files, their
// checksums as `sha256sum -c` checks them, the state round trip, and a folder changed after saving
// (a flipped byte, a missing or added file, damaged checksums) refused before anything loads.
#include "qfae/run/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/config/config.h"

namespace fs = std::filesystem;
using qfae::run::TrainProgress;
using qfae::test::TempDir;

namespace {

// A tiny model with one step of Adam behind it, so that the optimizer has state to save.
struct CheckpointedNet {
  torch::nn::Linear net{nullptr};
  std::unique_ptr<torch::optim::Adam> adam;

  explicit CheckpointedNet(int seed) {
    torch::manual_seed(seed);
    net = torch::nn::Linear(4, 3);
    adam = std::make_unique<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(1e-2));
  }
  void step(const torch::Tensor& x) {
    adam->zero_grad();
    net->forward(x).pow(2).sum().backward();
    adam->step();
  }
};

TrainProgress some_progress() {
  TrainProgress p;
  p.step = 120;
  p.epoch = 3;
  p.batch = 7;
  p.best_val_loss = 0.25;
  p.best_step = 100;
  p.map_scale = 1.5;  // threshold stays NaN: no validation of the normal images yet
  return p;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

void flip_one_byte(const fs::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ 0x01));
}

// The folder saved from a trained CheckpointedNet(1) in a fresh TempDir.
struct SavedCheckpoint {
  TempDir tmp;
  fs::path dir = tmp.path() / "checkpoints" / "last";
  CheckpointedNet original{1};

  explicit SavedCheckpoint(bool with_optimizer = true) {
    original.step(torch::ones({2, 4}));
    qfae::run::save_checkpoint(dir.string(), *original.net,
                               with_optimizer ? original.adam.get() : nullptr, some_progress(),
                               qfae::config::Config{});
  }
};

}  // namespace

TEST(Checkpoint, WritesItsFilesAndTheirChecksumsAsSha256sumChecksThem) {
  SavedCheckpoint saved;
  EXPECT_EQ(names_in(saved.dir),
            (std::set<std::string>{"model.safetensors", "optimizer.pt", "state.json", "config.yaml",
                                   "checksums.sha256"}));
  // Nothing temporary left beside it.
  EXPECT_EQ(names_in(saved.dir.parent_path()), (std::set<std::string>{"last"}));
  // One "<hex>  <name>" line per file but itself, which coreutils' sha256sum verifies.
  const auto lines = qfae::test::read_text(saved.dir / "checksums.sha256");
  for (const char* name : {"model.safetensors", "optimizer.pt", "state.json", "config.yaml"}) {
    EXPECT_NE(lines.find(std::string("  ") + name + "\n"), std::string::npos) << name;
  }
  const auto r = qfae::test::run_shell("cd '" + saved.dir.string() +
                                       "' && sha256sum --check --strict checksums.sha256");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("model.safetensors: OK"), std::string::npos) << r.out;

  const auto state = nlohmann::json::parse(qfae::test::read_text(saved.dir / "state.json"));
  EXPECT_EQ(state.at("format"), qfae::run::kCheckpointFormat);
  EXPECT_EQ(state.at("step"), 120);
  EXPECT_EQ(state.at("epoch"), 3);
  EXPECT_EQ(state.at("batch"), 7);
  EXPECT_EQ(state.at("best_step"), 100);
  EXPECT_EQ(state.at("best_val_loss"), 0.25);
  EXPECT_EQ(state.at("map_scale"), 1.5);
  EXPECT_FALSE(state.contains("threshold"));  // JSON has no NaN: absent means none yet
}

TEST(Checkpoint, LoadGivesBackWeightsProgressAndTheOptimizersState) {
  SavedCheckpoint saved;
  CheckpointedNet loaded(2);  // other weights, no optimizer state
  ASSERT_FALSE(torch::equal(loaded.net->weight, saved.original.net->weight));
  const auto p = qfae::run::load_checkpoint(saved.dir.string(), *loaded.net, loaded.adam.get());
  EXPECT_TRUE(torch::equal(loaded.net->weight, saved.original.net->weight));
  EXPECT_TRUE(torch::equal(loaded.net->bias, saved.original.net->bias));
  EXPECT_EQ(p.step, 120);
  EXPECT_EQ(p.epoch, 3);
  EXPECT_EQ(p.batch, 7);
  EXPECT_EQ(p.best_step, 100);
  EXPECT_EQ(p.best_val_loss, 0.25);
  EXPECT_EQ(p.map_scale, 1.5);
  EXPECT_TRUE(std::isnan(p.threshold));
  // Adam's moments came back: the next step is the original's, bit for bit, and differs from
  // that of an Adam starting afresh from the same weights.
  const auto x = torch::full({2, 4}, 0.5);
  saved.original.step(x);
  loaded.step(x);
  EXPECT_TRUE(torch::equal(loaded.net->weight, saved.original.net->weight));
  CheckpointedNet fresh(2);
  qfae::run::load_checkpoint(saved.dir.string(), *fresh.net, nullptr);
  fresh.step(x);
  EXPECT_FALSE(torch::equal(fresh.net->weight, saved.original.net->weight));
}

TEST(Checkpoint, AFlippedByteIsRefusedNamingTheFileAndNothingLoads) {
  SavedCheckpoint saved;
  const auto weights = saved.dir / "model.safetensors";
  flip_one_byte(weights, static_cast<std::streamoff>(fs::file_size(weights)) - 3);
  CheckpointedNet target(2);
  const auto before = target.net->weight.clone();
  const auto error = qfae::test::user_error(
      [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr); });
  EXPECT_NE(error.find("checkpoint '" + saved.dir.string() +
                       "': model.safetensors differs from the file saved"),
            std::string::npos)
      << error;
  EXPECT_TRUE(torch::equal(target.net->weight, before));
  // run::load_weights (train.init_from) verifies the same way.
  const auto init_error =
      qfae::test::user_error([&] { qfae::run::load_weights(weights.string(), *target.net); });
  EXPECT_NE(init_error.find("model.safetensors differs"), std::string::npos) << init_error;

  // A change to a file the load reads but does not hold in tensors is refused too.
  SavedCheckpoint other;
  std::ofstream(other.dir / "config.yaml", std::ios::app) << "# edited\n";
  const auto config_error = qfae::test::user_error(
      [&] { qfae::run::load_checkpoint(other.dir.string(), *target.net, nullptr); });
  EXPECT_NE(config_error.find("config.yaml differs"), std::string::npos) << config_error;
}

TEST(Checkpoint, AMissingOrAddedFileOrDamagedChecksumsAreRefused) {
  {
    SavedCheckpoint saved;
    fs::remove(saved.dir / "state.json");
    CheckpointedNet target(2);
    const auto error = qfae::test::user_error(
        [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr); });
    EXPECT_NE(error.find("state.json is missing"), std::string::npos) << error;
  }
  {  // saved without an optimizer; an optimizer.pt copied in afterwards is not trusted
    SavedCheckpoint saved(/*with_optimizer=*/false);
    EXPECT_FALSE(fs::exists(saved.dir / "optimizer.pt"));
    CheckpointedNet target(2);
    const auto resumed = qfae::test::user_error(
        [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, target.adam.get()); });
    EXPECT_NE(resumed.find("has no optimizer.pt: it cannot be resumed"), std::string::npos)
        << resumed;
    std::ofstream(saved.dir / "optimizer.pt") << "not saved here";
    const auto added = qfae::test::user_error(
        [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, target.adam.get()); });
    EXPECT_NE(added.find("optimizer.pt is not in its checksums.sha256"), std::string::npos)
        << added;
  }
  {
    SavedCheckpoint saved;
    std::ofstream(saved.dir / "checksums.sha256") << "0123  model.safetensors\n";
    CheckpointedNet target(2);
    const auto error = qfae::test::user_error(
        [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr); });
    EXPECT_NE(error.find("checksums.sha256:1: not a 'sha256  file' line"), std::string::npos)
        << error;
  }
}

TEST(Checkpoint, WithVerificationOffAnEditedFileLoads) {
  SavedCheckpoint saved;
  std::ofstream(saved.dir / "config.yaml", std::ios::app) << "# edited on purpose\n";
  CheckpointedNet target(2);
  qfae::run::set_verify_checksums(false);
  const auto error = qfae::test::user_error(
      [&] { qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr); });
  qfae::run::set_verify_checksums(true);
  EXPECT_EQ(error, "");
  EXPECT_TRUE(torch::equal(target.net->weight, saved.original.net->weight));
}

TEST(Checkpoint, ASaveInterruptedBetweenItsRenamesIsFoundAndReplacedWhole) {
  SavedCheckpoint saved;
  // A crash after "<dir>" became "<dir>.old" and before "<dir>.tmp" became "<dir>".
  const fs::path old = saved.dir.string() + ".old";
  fs::rename(saved.dir, old);
  fs::create_directories(saved.dir.string() + ".tmp");
  const auto run = saved.tmp.path();
  EXPECT_EQ(qfae::run::find_checkpoint(run.string()), old.string());
  CheckpointedNet target(2);
  EXPECT_EQ(qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr).step, 120);
  // The next save puts the old folder back first, then replaces it whole.
  auto progress = some_progress();
  progress.step = 200;
  qfae::run::save_checkpoint(saved.dir.string(), *target.net, nullptr, progress,
                             qfae::config::Config{});
  EXPECT_EQ(names_in(saved.dir.parent_path()), (std::set<std::string>{"last"}));
  EXPECT_EQ(qfae::run::load_checkpoint(saved.dir.string(), *target.net, nullptr).step, 200);
  EXPECT_FALSE(fs::exists(saved.dir / "optimizer.pt"));  // nothing of the earlier folder kept
}
