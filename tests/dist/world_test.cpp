// Which rank this process is, from torchrun's, Slurm's or qfae --nproc's environment.
#include "qfae/dist/world.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "qfae/util/error.h"

using qfae::dist::World;
using qfae::dist::world_from_environment;

namespace {
World world_of(const std::map<std::string, std::string>& env) {
  return world_from_environment([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    world_of(env);
  } catch (const qfae::UserError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(World, NoLauncherIsAWorldOfOne) {
  const auto w = world_of({});
  EXPECT_EQ(w.size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_FALSE(w.distributed());
  EXPECT_TRUE(w.leader());
}

TEST(World, TorchrunsVariables) {
  const auto w = world_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                           {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"},
                           {"MASTER_PORT", "29500"}, {"TORCHELASTIC_RUN_ID", "x"},
                           {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                           {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.size, 8);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_size, 2);
  EXPECT_EQ(w.master_addr, "10.0.0.1");
  EXPECT_EQ(w.master_port, 29500);
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_TRUE(w.agent_store);
  EXPECT_EQ(w.attempt, "2");
}

TEST(World, SlurmsVariablesInsideSrun) {
  const auto w = world_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"},
                           {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_LOCALID", "1"},
                           {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"}, {"MASTER_ADDR", "node1"},
                           {"MASTER_PORT", "12345"}, {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.size, 8);  // the step's tasks, not the allocation's
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_size, 4);
  EXPECT_FALSE(w.agent_store);
}

TEST(World, ASlurmBatchScriptOutsideSrunIsOneProcess) {
  // sbatch --ntasks 8 runs the script once: SLURM_NTASKS=8 and SLURM_PROCID=0, but no srun step
  // set SLURM_STEP_NUM_TASKS.
  const auto w = world_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}});
  EXPECT_EQ(w.size, 1);
}

TEST(World, MissingOrBadVariablesAreNamed) {
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}})
                .find("RANK is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}}).find("RANK='2'"), std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "two"}, {"RANK", "0"}}).find("WORLD_SIZE='two'"),
            std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "1"}})
                .find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"},
                      {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT='70000'"),
            std::string::npos);
  const auto slurm = error_of({{"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_NE(slurm.find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(slurm.find("scontrol show hostnames"), std::string::npos);
}

TEST(World, RanksOnOneMachineShareItsCores) {
  World w;
  w.local_size = 2;
  EXPECT_EQ(qfae::dist::threads_per_rank(0, w, 16), 8);
  EXPECT_EQ(qfae::dist::threads_per_rank(3, w, 16), 3);  // the config's threads stand
  w.local_size = 32;
  EXPECT_EQ(qfae::dist::threads_per_rank(0, w, 16), 1);
}
