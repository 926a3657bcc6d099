// Local ranks as child processes: environment, signal forwarding, exit codes.
#include "qfae/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <string>

#include "qfae/run/stop_signal.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

extern char** environ;

namespace qfae::dist {
namespace {

constexpr int kMaxRanks = 1024;
pid_t g_children[kMaxRanks];
std::atomic<int> g_child_count{0};
std::atomic<int> g_forwarded{0};
std::atomic<int64_t> g_forwarded_ms{0};

int64_t monotonic_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // async-signal-safe
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void signal_children(int signal) {
  for (int i = 0; i < g_child_count.load(); ++i) {
    if (g_children[i] > 0) ::kill(g_children[i], signal);
  }
}

// The first SIGINT/SIGTERM goes on to every rank (and wakes a stopped one, so that it can act on
// it); a second one, later than the same keypress's echo, kills them all at once.
extern "C" void forward_signal(int signal) {
  const int64_t now = monotonic_ms();
  int expected = 0;
  if (g_forwarded.compare_exchange_strong(expected, signal)) {
    g_forwarded_ms.store(now);
    signal_children(signal);
    signal_children(SIGCONT);
    return;
  }
  if (now - g_forwarded_ms.load() < run::kRepeatWindowMs) return;
  signal_children(SIGKILL);
}

// A TCP port on 127.0.0.1 that is free now (the kernel's choice).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw UserError(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw UserError("--nproc: cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The environment of rank `rank`: ours without the launch variables, plus them.
std::vector<std::string> rank_environment(int rank, int nproc, int port) {
  static const char* kOwn[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=",
                               "MASTER_ADDR=", "MASTER_PORT=", "QFAE_LAUNCHED_BY="};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    bool own = false;
    for (const char* k : kOwn) own = own || std::strncmp(*e, k, std::strlen(k)) == 0;
    if (!own) env.emplace_back(*e);
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(nproc));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back("MASTER_PORT=" + std::to_string(port));
  env.push_back("QFAE_LAUNCHED_BY=qfae --nproc");
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exited with " + std::to_string(WEXITSTATUS(status));
}

// What /proc says a process is doing, when it is not simply running or waiting.
std::string process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return "";
  const auto close = line.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos || close + 2 >= line.size()) return "";
  switch (line[close + 2]) {
    case 'T': return " (it was stopped, as by SIGSTOP)";
    case 't': return " (it was stopped by a debugger)";
    case 'D': return " (it was waiting on a disk or network file system)";
    case 'Z': return " (it had exited)";
    default: return "";
  }
}

// What became of each rank so far.
struct RankOutcomes {
  explicit RankOutcomes(size_t n) : codes(n, 0), how(n), running(n, true), left(n) {}
  std::vector<int> codes;        // exit code, or 128 + the signal that killed it
  std::vector<std::string> how;  // "exited with 3", "was killed by signal 9 (Killed)"
  std::vector<bool> running;
  size_t left;            // how many still run
  int first_failed = -1;  // the first rank seen to end with a code other than 0
};

// Records the end of process `done` (with `status`) when it is one of the ranks.
void record_rank_exit(const std::vector<pid_t>& pids, pid_t done, int status, RankOutcomes* ranks) {
  for (size_t r = 0; r < pids.size(); ++r) {
    if (pids[r] != done) continue;
    ranks->codes[r] = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    ranks->how[r] = describe_status(status);
    ranks->running[r] = false;
    g_children[r] = 0;
    --ranks->left;
    if (ranks->codes[r] != 0 && ranks->first_failed < 0) ranks->first_failed = static_cast<int>(r);
  }
}

// How long the ranks may run on after the first failure or passed-on stop signal. A rank that
// sees another fail gives up within its own timeout, then has some seconds to save; after a rank
// that already waited that long (exit 5), the others have only the seconds.
int64_t grace_period_ms(const RankOutcomes& ranks, double rank_timeout_s) {
  const int64_t save_ms = 15000, timeout_ms = static_cast<int64_t>(rank_timeout_s * 1000);
  const bool waited = ranks.first_failed >= 0 && ranks.codes[ranks.first_failed] == kExitRankLost;
  return waited ? save_ms : timeout_ms + save_ms;
}

// Names and kills the ranks still running when the grace period of `grace_ms` is over.
void kill_running_ranks(const std::vector<pid_t>& pids, const RankOutcomes& ranks,
                        int64_t grace_ms) {
  const int failed = ranks.first_failed;
  const std::string after = failed >= 0
                                ? "rank " + std::to_string(failed) + " " + ranks.how[failed]
                                : "signal " + std::to_string(g_forwarded.load()) + " was passed on";
  for (size_t r = 0; r < pids.size(); ++r) {
    if (!ranks.running[r]) continue;
    log("launch")->error("rank {} (pid {}) was still running {:.0f} s after {}{}; killing it", r,
                         pids[r], grace_ms / 1000.0, after, process_state(pids[r]));
    ::kill(pids[r], SIGKILL);
  }
}

// The job's exit code (see launch_local); logs each rank that failed.
int job_exit_code(const RankOutcomes& ranks) {
  // The cause, not its echoes: a rank that failed on its own before the others noticed.
  const int forwarded = g_forwarded.load();
  int result = 0;
  for (size_t r = 0; r < ranks.codes.size(); ++r) {
    const int code = ranks.codes[r];
    if (code == 0) continue;
    log("launch")->warn("rank {} {}", r, ranks.how[r]);
    const bool echo =
        code == kExitRankLost || code == 128 + SIGKILL || (forwarded && code == 128 + forwarded);
    if (result == 0 || (!echo && (result == kExitRankLost || result == 128 + SIGKILL ||
                                  result == 128 + forwarded))) {
      result = code;
    }
  }
  // Stopped by a signal (a second one kills the ranks): the job ends as that signal says.
  if (forwarded && (result == 128 + SIGKILL || result == kExitRankLost)) return 128 + forwarded;
  return result;
}

// Waits for every rank, and never longer than a grace period after the first rank failed or a stop
// signal was passed on: the ranks still running then are named and killed. Returns the job's
// exit code (see launch_local).
int watch_ranks(const std::vector<pid_t>& pids, double rank_timeout_s) {
  RankOutcomes ranks(pids.size());
  int64_t grace_ms = 0;
  int64_t deadline = -1;  // set once a rank failed or a signal was passed on
  while (ranks.left > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done < 0 && errno != EINTR) break;
    if (done > 0) {
      record_rank_exit(pids, done, status, &ranks);
      continue;
    }
    if (deadline < 0 && (ranks.first_failed >= 0 || g_forwarded.load() != 0)) {
      grace_ms = grace_period_ms(ranks, rank_timeout_s);
      deadline = monotonic_ms() + grace_ms;
    }
    if (deadline >= 0 && monotonic_ms() > deadline) {
      kill_running_ranks(pids, ranks, grace_ms);
      deadline = std::numeric_limits<int64_t>::max();  // killed: the loop reaps them
    }
    timespec pause{0, 100 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  return job_exit_code(ranks);
}

// The SIGINT and SIGTERM handlers that forward_stop_signals replaced.
struct StopHandlers {
  struct sigaction int_before;
  struct sigaction term_before;
};

// From now on SIGINT and SIGTERM go on to the ranks (forward_signal), none forwarded yet and no
// rank started; returns the handlers they had.
StopHandlers forward_stop_signals() {
  struct sigaction forward {};
  StopHandlers before{};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  g_forwarded.store(0);
  g_child_count.store(0);
  sigaction(SIGINT, &forward, &before.int_before);
  sigaction(SIGTERM, &forward, &before.term_before);
  return before;
}

void restore_stop_signals(const StopHandlers& before) {
  sigaction(SIGINT, &before.int_before, nullptr);
  sigaction(SIGTERM, &before.term_before, nullptr);
}

// In the child just forked by `launcher`: becomes the rank, running this program again.
[[noreturn]] void exec_rank(pid_t launcher, char* const* argv, char* const* envp) {
  // A rank ends with its launcher, however the launcher ends (even by SIGKILL): SIGTERM
  // stops it as a stop request does, after the current step.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != launcher) ::_exit(128 + SIGTERM);  // the launcher died before prctl
  ::execve("/proc/self/exe", argv, envp);
  ::_exit(127);
}

// The ranks started, in rank order, and the errno of the fork that failed (0: none did).
struct StartedRanks {
  std::vector<pid_t> pids;
  int fork_errno = 0;
};

// Forks one rank for each environment of `envs`, until a stop signal is passed on; when a fork
// fails, the ranks already started are asked to stop.
StartedRanks start_ranks(std::vector<char*>& argv, std::vector<std::vector<std::string>>& envs) {
  const pid_t launcher = ::getpid();
  StartedRanks started;
  for (int r = 0; r < static_cast<int>(envs.size()) && g_forwarded.load() == 0; ++r) {
    auto envp = pointers(envs[r]);
    const pid_t pid = ::fork();
    if (pid == 0) exec_rank(launcher, argv.data(), envp.data());
    if (pid < 0) {
      started.fork_errno = errno;
      signal_children(SIGTERM);
      signal_children(SIGCONT);
      break;
    }
    g_children[r] = pid;
    started.pids.push_back(pid);
    g_child_count.store(r + 1);
  }
  return started;
}

}  // namespace

std::vector<std::string> without_nproc(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

int launch_local(int nproc, const std::vector<std::string>& args, double rank_timeout_s) {
  if (nproc < 1 || nproc > kMaxRanks) {
    throw UserError("--nproc: " + std::to_string(nproc) + " is not from 1 to " +
                    std::to_string(kMaxRanks));
  }
  const int port = free_port();
  log("launch")->info("starting {} ranks on this machine (MASTER_ADDR=127.0.0.1 MASTER_PORT={})",
                      nproc, port);
  std::vector<std::string> argv_strings = args;
  auto argv = pointers(argv_strings);
  std::vector<std::vector<std::string>> envs;
  for (int r = 0; r < nproc; ++r) envs.push_back(rank_environment(r, nproc, port));

  const StopHandlers before = forward_stop_signals();
  const StartedRanks started = start_ranks(argv, envs);
  const auto result = watch_ranks(started.pids, rank_timeout_s);
  restore_stop_signals(before);
  if (started.fork_errno != 0) {
    throw UserError("--nproc: could not start rank " + std::to_string(started.pids.size()) + ": " +
                    std::strerror(started.fork_errno));
  }
  if (started.pids.size() < static_cast<size_t>(nproc)) {
    log("launch")->warn("stopped by signal {} while starting the ranks ({} of {} started)",
                        g_forwarded.load(), started.pids.size(), nproc);
    return 128 + g_forwarded.load();
  }
  return result;
}

}  // namespace qfae::dist
