// `qfae train --nproc N`: runs N ranks of a data-parallel job on this machine, as torchrun would,
// for users without torchrun.
#pragma once
#include <string>
#include <vector>

namespace qfae::dist {

// Starts `args` (args[0] the program; run as /proc/self/exe) `nproc` times with RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set, passes SIGINT
// and SIGTERM on to every rank (a second one, a second or more later, kills them at once), waits
// for all, and returns the job's exit code: 0 when every rank succeeded, else the first failing
// rank's code that is not a consequence (kExitRankLost, SIGKILL, or 128 + the signal this
// launcher passed on) of another's. It never waits forever: `rank_timeout_s` (the ranks'
// --dist-timeout) + 15 s after the first rank failed or a signal was passed on (15 s after a rank
// exited 5, having waited its timeout already), the ranks still running are named (and whether
// they were frozen) and killed. Every rank gets SIGTERM when the
// launcher dies, however it dies, so that no rank trains on as an orphan.
int launch_local(int nproc, const std::vector<std::string>& args, double rank_timeout_s);

// `args` without "--nproc N" / "--nproc=N".
std::vector<std::string> without_nproc(const std::vector<std::string>& args);

}  // namespace qfae::dist
