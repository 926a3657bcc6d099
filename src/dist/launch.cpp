// Local ranks as child processes: environment, signal forwarding, exit codes.
#include "qfae/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

extern char** environ;

namespace qfae::dist {
namespace {

constexpr int kMaxRanks = 1024;
pid_t g_children[kMaxRanks];
std::atomic<int> g_child_count{0};
std::atomic<int> g_forwarded{0};

extern "C" void forward_signal(int signal) {
  g_forwarded.store(signal);
  for (int i = 0; i < g_child_count.load(); ++i) {
    if (g_children[i] > 0) ::kill(g_children[i], signal);
  }
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

int launch_local(int nproc, const std::vector<std::string>& args) {
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

  struct sigaction forward {}, int_before {}, term_before {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  g_forwarded.store(0);
  g_child_count.store(0);
  sigaction(SIGINT, &forward, &int_before);
  sigaction(SIGTERM, &forward, &term_before);

  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    auto envp = pointers(envs[r]);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execve("/proc/self/exe", argv.data(), envp.data());
      ::_exit(127);
    }
    if (pid < 0) {
      forward_signal(SIGTERM);
      break;
    }
    g_children[r] = pid;
    pids.push_back(pid);
    g_child_count.store(r + 1);
  }
  std::vector<int> codes(pids.size(), 0);
  std::vector<std::string> how(pids.size());
  for (size_t left = pids.size(); left > 0;) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t r = 0; r < pids.size(); ++r) {
      if (pids[r] != done) continue;
      codes[r] = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
      how[r] = describe_status(status);
      g_children[r] = 0;
      --left;
    }
  }
  sigaction(SIGINT, &int_before, nullptr);
  sigaction(SIGTERM, &term_before, nullptr);
  if (pids.size() < static_cast<size_t>(nproc)) {
    throw UserError("--nproc: could not start rank " + std::to_string(pids.size()) + ": " +
                    std::strerror(errno));
  }
  // The cause, not its echoes: a rank that failed on its own before the others noticed.
  const int forwarded = g_forwarded.load();
  int result = 0;
  for (size_t r = 0; r < codes.size(); ++r) {
    if (codes[r] == 0) continue;
    log("launch")->warn("rank {} {}", r, how[r]);
    const bool echo = codes[r] == kExitRankLost || (forwarded && codes[r] == 128 + forwarded);
    if (result == 0 || (!echo && (result == kExitRankLost || result == 128 + forwarded))) {
      result = codes[r];
    }
  }
  return result;
}

}  // namespace qfae::dist
