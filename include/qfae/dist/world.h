// Which process of a data-parallel job this is: read from what torchrun, Slurm or `--nproc` put
// in the environment. No LibTorch here: the launchers and the thread count need it too.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace qfae::dist {

struct World {
  int rank = 0;        // 0 .. size-1; rank 0 writes the run folder
  int size = 1;        // processes in the job; 1 = not distributed (today's behaviour)
  int local_rank = 0;  // index on this machine: the CUDA device it uses
  int local_size = 1;  // processes on this machine: they share its cores
  std::string master_addr;  // where the rendezvous store listens
  int master_port = 0;
  std::string launcher = "none";  // "torchrun", "slurm", "qfae --nproc", "environment"
  // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects
  // to it as a client, and the store outlives a lost rank 0.
  bool agent_store = false;
  std::string attempt;  // TORCHELASTIC_RESTART_COUNT under torchrun, so restarts do not mix keys

  bool distributed() const { return size > 1; }
  bool leader() const { return rank == 0; }
  // "rank 1 of 2 (torchrun)".
  std::string describe() const;
};

// Another rank of the job died, hung or could not be reached (exit code kExitRankLost). what():
// one line naming the rank.
class RankLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a variable: ::getenv, or a map in tests.
using GetEnv = std::function<const char*(const char*)>;

// The world this process belongs to:
// - torchrun, `qfae --nproc` or by hand: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
//   MASTER_ADDR, MASTER_PORT;
// - Slurm, inside srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID,
//   SLURM_STEP_TASKS_PER_NODE, with MASTER_ADDR and MASTER_PORT exported by the batch script (a
//   batch script outside srun is one process);
// - neither: a world of one.
// UserError naming the variable when one is missing or not a number in range.
World world_from_environment(const GetEnv& getenv);
World world_from_environment();

// What this rank can check of the rendezvous on its own before connecting, cause first (UserError:
// exit 2): MASTER_ADDR resolves; on rank 0 hosting the store (not under torchrun's agent store),
// MASTER_PORT is free on this machine. A rank 0 whose MASTER_ADDR is not one of this machine's
// addresses gets a warning (a service address may forward to it). Nothing for a world of one.
void check_rendezvous(const World& world);

// Threads for LibTorch on this rank: `configured` when > 0, else `cores` shared evenly among
// this machine's ranks (at least 1).
int threads_per_rank(int configured, const World& world, int cores);

}  // namespace qfae::dist
