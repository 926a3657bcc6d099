// `qfae train --nproc N`: runs N ranks of a data-parallel job on this machine, as torchrun would,
// for users without torchrun.
#pragma once
#include <string>
#include <vector>

namespace qfae::dist {

// Starts `args` (args[0] the program; run as /proc/self/exe) `nproc` times with RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set, passes SIGINT
// and SIGTERM on to every rank, waits for all, and returns the job's exit code: 0 when every
// rank succeeded, else the first failing rank's code that is not a consequence (kExitRankLost,
// or 128 + the signal this launcher passed on) of another's.
int launch_local(int nproc, const std::vector<std::string>& args);

// `args` without "--nproc N" / "--nproc=N".
std::vector<std::string> without_nproc(const std::vector<std::string>& args);

}  // namespace qfae::dist
