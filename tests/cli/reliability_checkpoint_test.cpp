// Checkpoints prove their integrity, with the real binary: every checkpoint folder holds a
// checksums.sha256 that coreutils' `sha256sum -c` accepts; a file changed, cut short or removed
// after saving makes eval, infer, --resume and --init-from exit 2 naming it; --no-verify
// loads it anyway.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "../support/tiny_training.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::run_shell;
using qfae::test::TempDir;
using qfae::test::tiny_sets;
using qfae::test::train_tiny_run;

namespace {

// Flips one bit of a weight inside model.safetensors: still a valid file of the same tensors
// (8-byte header length, JSON header, then the data), as bit rot or a bad copy would leave it.
void flip_a_weight_bit(const fs::path& file) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header = 0;
  f.read(reinterpret_cast<char*>(&header), 8);
  const auto at = static_cast<std::streamoff>(8 + header + 101);
  f.seekg(at);
  char byte = 0;
  f.read(&byte, 1);
  byte ^= 0x40;
  f.seekp(at);
  f.write(&byte, 1);
}

std::string verify_eval_args(const fs::path& checkpoint, const TempDir& dir) {
  return "eval --checkpoint '" + checkpoint.string() + "' -o '" + (dir.path() / "eval").string() +
         "' --set eval.save_maps=false";
}

}  // namespace

TEST(ReliabilityCheckpoint, EveryCheckpointRecordsChecksumsThatSha256sumAccepts) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  for (const char* which : {"last", "best"}) {
    const auto folder = run / "checkpoints" / which;
    const auto r = run_shell("cd '" + folder.string() + "' && sha256sum -c checksums.sha256");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    for (const char* file : {"model.safetensors", "optimizer.pt", "state.json", "config.yaml"}) {
      EXPECT_NE(r.out.find(std::string(file) + ": OK"), std::string::npos) << which << r.out;
    }
  }
}

TEST(ReliabilityCheckpoint, ChangedWeightsAreExitTwoNamingTheFileUnlessNoVerify) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  const auto last = run / "checkpoints" / "last";
  ASSERT_EQ(run_qfae(verify_eval_args(run, dir)).code, 0);
  flip_a_weight_bit(last / "model.safetensors");

  auto r = run_qfae(verify_eval_args(run, dir));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("checkpoint '" + last.string() + "': model.safetensors differs from the "
                       "file saved"), std::string::npos) << r.err;
  r = run_qfae("infer --checkpoint '" + run.string() + "' -o '" + (dir.path() / "infer").string() +
               "' '" + (dir.path() / "data" / "test" / "good" / "img").string() + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.safetensors differs"), std::string::npos) << r.err;
  r = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.safetensors differs"), std::string::npos) << r.err;
  r = run_qfae("train -o '" + (dir.path() / "runs2").string() + "' --init-from '" +
               (last / "model.safetensors").string() + "'" + tiny_sets(dir.path() / "data"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("model.safetensors differs"), std::string::npos) << r.err;

  // On purpose: --no-verify loads it, and says that it did not check.
  r = run_qfae(verify_eval_args(run, dir) + " --no-verify");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("checksums not verified (--no-verify)"), std::string::npos) << r.err;
}

TEST(ReliabilityCheckpoint, MissingCutOrEditedFilesAreNamed) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  const auto last = run / "checkpoints" / "last";

  // optimizer.pt cut short (a partial sync): --resume needs it and refuses; eval does not read it.
  fs::resize_file(last / "optimizer.pt", fs::file_size(last / "optimizer.pt") / 2);
  auto r = run_qfae("train --resume '" + run.string() + "' --set train.max_steps=8");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("optimizer.pt differs from the file saved"), std::string::npos) << r.err;
  EXPECT_EQ(run_qfae(verify_eval_args(run, dir)).code, 0);

  // A config.yaml edited by hand after saving.
  std::ofstream(last / "config.yaml", std::ios::app) << "# edited\n";
  r = run_qfae(verify_eval_args(run, dir));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("config.yaml differs"), std::string::npos) << r.err;

  // state.json gone: the copy was incomplete.
  const auto best = run / "checkpoints" / "best";
  fs::remove(best / "state.json");
  r = run_qfae(verify_eval_args(best, dir));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("state.json"), std::string::npos) << r.err;

  // Damaged checksums themselves.
  const auto other = train_tiny_run(dir, 2) / "checkpoints" / "last";
  std::ofstream(other / "checksums.sha256", std::ios::trunc) << "not a checksum line\n";
  r = run_qfae(verify_eval_args(other, dir));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("checksums.sha256:1: not a 'sha256  file' line"), std::string::npos)
      << r.err;
}

// A checkpoint folder written before checksums were recorded still loads, saying it was not
// verified.
TEST(ReliabilityCheckpoint, AFolderWithoutChecksumsLoadsUnverified) {
  TempDir dir;
  qfae::test::tiny_config(dir.path() / "data");
  const auto run = train_tiny_run(dir, 4);
  fs::remove(run / "checkpoints" / "last" / "checksums.sha256");
  const auto r = run_qfae(verify_eval_args(run, dir) + " -v");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("no checksums.sha256"), std::string::npos) << r.err;
}
