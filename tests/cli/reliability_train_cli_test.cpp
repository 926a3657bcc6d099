// Training reliability with the real binary: divergence is exit 4 with the last good checkpoint
// kept, a full disk is exit 2 with the previous checkpoint intact, bad files and folders are exit 2
// naming them, and a run folder stays consistent (no empty runs, one writer, no repeated steps).
#include <gtest/gtest.h>
#include <torch/script.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "../support/tiny_training.h"
#include "../support/unprivileged.h"
#include "qfae/io/safetensors.h"
#include "qfae/run/run_dir.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::folder_entries;
using qfae::test::tiny_sets;
using qfae::test::train_tiny_run;

namespace {

nlohmann::json read_state(const fs::path& checkpoint) {
  std::ifstream in(checkpoint / "state.json");
  return nlohmann::json::parse(in);
}

bool weights_finite(const fs::path& checkpoint) {
  const auto file = qfae::io::load_safetensors((checkpoint / "model.safetensors").string());
  for (const auto& [name, t] : file.tensors) {
    if (!torch::isfinite(t).all().item<bool>()) return false;
  }
  return true;
}

// The error line qfae printed last, and that it is one line with no abort or backtrace.
void expect_one_clean_line(const qfae::test::RunResult& r, const std::string& must_contain) {
  const auto at = r.err.rfind("qfae: error: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  const auto line = r.err.substr(at);
  EXPECT_NE(line.find(must_contain), std::string::npos) << r.err;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

// A copy of the tiny DINO export whose qfae.json is edited by `edit`: weights and metadata
// disagree.
std::string backbone_with_metadata(const TempDir& dir, const std::string& name,
                                   const std::function<void(nlohmann::json&)>& edit) {
  torch::jit::ExtraFilesMap extra{{"qfae.json", ""}};
  auto module = torch::jit::load(qfae::test::fixture("backbones/tiny_dino.pt"), torch::kCPU, extra);
  auto meta = nlohmann::json::parse(extra["qfae.json"]);
  edit(meta);
  const auto path = (dir.path() / name).string();
  module.save(path, {{"qfae.json", meta.dump()}});
  return path;
}

}  // namespace

TEST(ReliabilityTrain, NonFiniteSettingsAreRefusedBeforeTraining) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  for (const char* set : {"train.lr=.inf", "data.mean=.nan", "train.warmup=-.inf"}) {
    const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                            tiny_sets(dir.path() / "data", {set}));
    EXPECT_EQ(r.code, 2) << set << ": " << r.err;
    expect_one_clean_line(r, std::string(set).substr(0, std::string(set).find('=')));
  }
  EXPECT_FALSE(fs::exists(dir.path() / "runs")) << "a run that cannot start leaves nothing";
}

TEST(ReliabilityTrain, DivergenceStopsWithExitFourAndKeepsTheLastGoodCheckpoint) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  const auto last = run / "checkpoints" / "last";
  ASSERT_EQ(read_state(last)["step"], 4);
  // An absurd learning rate: the first step throws the weights to ~1e30 and the loss to NaN.
  const auto r = run_qfae("train --resume '" + run.string() + "' --set train.lr=1e30 " +
                          "--set train.max_steps=12");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("diverged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(last.string()), std::string::npos) << r.err;
  EXPECT_EQ(read_state(last)["step"], 4) << "the good checkpoint is kept";
  EXPECT_TRUE(weights_finite(last));
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "best") && !weights_finite(run / "checkpoints" /
                                                                            "best"));
  const auto metrics = qfae::test::read_text(run / "metrics.jsonl");
  EXPECT_NE(metrics.find("\"event\":\"diverged\""), std::string::npos) << metrics;
  // The run reads back: eval works on the kept checkpoint.
  const auto e = run_qfae("eval --checkpoint '" + run.string() + "' -o '" +
                          (dir.path() / "eval").string() + "'");
  EXPECT_EQ(e.code, 0) << e.err;

  // A fresh run that diverges at once keeps no checkpoint at all and says so.
  const auto fresh = run_qfae("train -o '" + (dir.path() / "runs2").string() + "'" +
                              tiny_sets(dir.path() / "data", {"train.lr=1e30"}));
  EXPECT_EQ(fresh.code, 4) << fresh.err;
  EXPECT_NE(fresh.err.find("no checkpoint was saved"), std::string::npos) << fresh.err;
}

TEST(ReliabilityTrain, AFullDiskIsExitTwoAndThePreviousCheckpointSurvives) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  const auto last = run / "checkpoints" / "last";
  const auto model_kb = static_cast<int64_t>(fs::file_size(last / "model.safetensors") / 1024);
  ASSERT_GT(model_kb, 16) << "the tiny model must outgrow config.yaml for this test";
  // With SIGXFSZ ignored, writing past the file size limit fails with EFBIG, as on a full disk:
  // config.yaml and metrics.jsonl fit, model.safetensors does not.
  const auto limit = std::to_string(model_kb / 2);
  const auto r = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8",
                          "", "trap '' XFSZ; ulimit -f " + limit + "; exec");
  EXPECT_EQ(r.code, 2) << r.err;
  expect_one_clean_line(r, (run / "checkpoints").string());  // best.tmp/ or last.tmp/...
  for (const auto& checkpoint : {last, run / "checkpoints" / "best"}) {
    EXPECT_EQ(read_state(checkpoint)["step"], 4) << "the previous checkpoint is intact";
    EXPECT_TRUE(weights_finite(checkpoint));
  }
  EXPECT_EQ(folder_entries(run / "checkpoints"), (std::vector<std::string>{"best", "last"}))
      << "no .tmp or .old left";
  // And the run resumes once there is room again.
  const auto again = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(read_state(last)["step"], 8);
}

TEST(ReliabilityTrain, BadFilesAndFoldersAreExitTwoNamingThem) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  // An output folder that is a file.
  const auto file = dir.write("not_a_folder", "x");
  auto r = run_qfae("train -o '" + file.string() + "'" + tiny_sets(data));
  EXPECT_EQ(r.code, 2) << r.err;
  expect_one_clean_line(r, file.string());

  // Backbones whose qfae.json does not match the weights: a wider width than the blocks have,
  // and more blocks than the file holds.
  const auto wide = backbone_with_metadata(dir, "wide.pt", [](nlohmann::json& m) {
    m["width"] = 48;
  });
  const auto deep = backbone_with_metadata(dir, "deep.pt", [](nlohmann::json& m) {
    m["blocks"] = m["depth"].get<int>() + 2;
    m["depth"] = m["depth"].get<int>() + 2;
  });
  for (const auto& [path, extra] : std::vector<std::pair<std::string, std::string>>{
           {wide, "backbone.encoder_dim=48"}, {deep, "backbone.taps=[-1]"}}) {
    r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                 tiny_sets(data, {"backbone.encoders=[" + path + "]", extra, "name=bad"}));
    EXPECT_EQ(r.code, 2) << path << ": " << r.err;
    expect_one_clean_line(r, path);
  }
  EXPECT_TRUE(folder_entries(dir.path() / "runs" / "bad").empty())
      << "a run that failed before its first checkpoint is removed";

  // A corrupt optimizer.pt on --resume.
  const auto run = train_tiny_run(dir, 4);
  std::ofstream(run / "checkpoints" / "last" / "optimizer.pt", std::ios::trunc) << "garbage";
  r = run_qfae("train --resume '" + run.string() + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  expect_one_clean_line(r, "optimizer.pt");
}

TEST(ReliabilityTrain, AFailedStartLeavesNoFolderAndKeepsLatest) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  const auto good = train_tiny_run(dir, 1);
  const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" +
                          tiny_sets(data, {"name=tiny", "train.batch_size=100"}));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(folder_entries(dir.path() / "runs" / "tiny"),
            (std::vector<std::string>{good.filename().string(), "latest"}));
  EXPECT_EQ(fs::canonical(dir.path() / "runs" / "tiny" / "latest"), good);
}

TEST(ReliabilityTrain, OneWriterPerRunFolder) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 2);
  {
    qfae::run::RunLock held(run.string());  // as another training would hold it
    const auto r = run_qfae("train --resume '" + run.string() + "'");
    EXPECT_EQ(r.code, 2) << r.err;
    expect_one_clean_line(r, "another qfae process (pid " + std::to_string(::getpid()) + ")");
  }
  EXPECT_EQ(run_qfae("train --resume '" + run.string() + "' --set train.max_steps=4").code, 0);
}

// After SIGKILL the run's metrics.jsonl holds steps past the last checkpoint (and maybe half a
// line); the resumed run logs those steps again, so they must be dropped first.
TEST(ReliabilityTrain, ResumeAfterAKillLogsEveryStepOnce) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  {
    std::ofstream log(run / "metrics.jsonl", std::ios::app);
    for (int step = 5; step <= 7; ++step) {
      log << R"({"event":"train","step":)" << step << R"(,"loss":0.5})" << "\n";
    }
    log << R"({"event":"train","st)";  // the kill cut this line short
  }
  ASSERT_EQ(run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8").code, 0);
  std::ifstream in(run / "metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);  // every line whole
    if (j["event"] == "train") steps.push_back(j["step"].get<int64_t>());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// A kill between the two renames of a checkpoint save leaves last.old (complete) and last.tmp
// (perhaps not): resume, eval and infer all take last.old.
TEST(ReliabilityTrain, EveryReaderRecoversACheckpointCutBetweenRenames) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  const auto ckpts = run / "checkpoints";
  fs::rename(ckpts / "last", ckpts / "last.old");
  fs::create_directories(ckpts / "last.tmp");
  std::ofstream(ckpts / "last.tmp" / "model.safetensors") << "half";
  auto r = run_qfae("eval --checkpoint '" + run.string() + "' -o '" +
                    (dir.path() / "eval").string() + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_qfae("infer --checkpoint '" + run.string() + "' -o '" +
               (dir.path() / "infer").string() + "' '" +
               (dir.path() / "data" / "test" / "good" / "img").string() + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_state(ckpts / "last")["step"], 8);
  EXPECT_EQ(folder_entries(ckpts), (std::vector<std::string>{"best", "last"}));
}

// Folders qfae may not write: permissions apply to the binary run as an unprivileged user (root,
// as CI runs, ignores them).
TEST(ReliabilityTrain, ReadOnlyOutputFoldersAreExitTwoNamingThem) {
  const std::string as_user =
      ::geteuid() == 0 ? "exec setpriv --reuid=65534 --regid=65534 --clear-groups" : "exec";
  if (!qfae::test::can_run_unprivileged()) {
    GTEST_SKIP() << "root without setpriv, or uid 65534 cannot start this qfae build: "
                    "permissions cannot be tested";
  }
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto locked = dir.path() / "locked";
  fs::create_directories(locked);
  fs::permissions(locked, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  if (::geteuid() != 0) fs::permissions(locked, fs::perms::owner_write, fs::perm_options::remove);
  auto r = run_qfae("train -o '" + (locked / "runs").string() + "'" +
                    tiny_sets(dir.path() / "data"), "", as_user);
  EXPECT_EQ(r.code, 2) << r.err;
  expect_one_clean_line(r, (locked / "runs").string());

  // A run folder of someone else's: --resume cannot write it.
  const auto run = train_tiny_run(dir, 1);
  const auto write = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
  if (::geteuid() != 0) fs::permissions(run, write, fs::perm_options::remove);
  r = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=2", "", as_user);
  EXPECT_EQ(r.code, 2) << r.err;
  expect_one_clean_line(r, run.string());
  if (::geteuid() != 0) {
    fs::permissions(run, fs::perms::owner_write, fs::perm_options::add);
    fs::permissions(locked, fs::perms::owner_write, fs::perm_options::add);
  }
}
