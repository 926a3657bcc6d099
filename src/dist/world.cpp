// The data-parallel world from torchrun's, Slurm's or qfae's own environment variables.
#include "qfae/dist/world.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::dist {
namespace {

const char* value_of(const GetEnv& getenv, const char* name) {
  const char* v = getenv(name);
  return v && *v ? v : nullptr;
}

std::string text_of(const GetEnv& getenv, const char* name) {
  const char* v = value_of(getenv, name);
  return v ? v : "";
}

// The leading integer of `text` (Slurm's "2(x3)" gives 2); UserError naming `name` otherwise.
int64_t parse_integer(const char* name, const std::string& text, int64_t low, int64_t high,
                      bool leading_only = false) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  const bool whole = end != text.c_str() && (leading_only || *end == '\0');
  if (!whole || errno == ERANGE || v < low || v > high) {
    throw UserError("environment variable " + std::string(name) + "='" + text +
                    "' is not a whole number from " + std::to_string(low) + " to " +
                    std::to_string(high));
  }
  return v;
}

int required_integer(const GetEnv& getenv, const char* name, int64_t low, int64_t high,
                     const std::string& why) {
  const char* v = value_of(getenv, name);
  if (!v) throw UserError("environment variable " + std::string(name) + " is not set; " + why);
  return static_cast<int>(parse_integer(name, v, low, high));
}

int optional_integer(const GetEnv& getenv, const char* name, int fallback, int64_t low,
                     int64_t high, bool leading_only = false) {
  const char* v = value_of(getenv, name);
  return v ? static_cast<int>(parse_integer(name, v, low, high, leading_only)) : fallback;
}

// MASTER_ADDR and MASTER_PORT, which every launcher must provide for a world of several.
void read_master(const GetEnv& getenv, World& w, const std::string& hint) {
  const char* addr = value_of(getenv, "MASTER_ADDR");
  if (!addr) {
    throw UserError("environment variable MASTER_ADDR is not set; " + w.describe() +
                    " needs the address of rank 0's machine" + hint);
  }
  w.master_addr = addr;
  w.master_port = required_integer(getenv, "MASTER_PORT", 1, 65535,
                                   w.describe() + " needs a free TCP port on rank 0's machine" +
                                       hint);
}

}  // namespace

std::string World::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size) + " (" + launcher + ")";
}

World world_from_environment(const GetEnv& getenv) {
  World w;
  if (value_of(getenv, "WORLD_SIZE")) {
    w.launcher = value_of(getenv, "TORCHELASTIC_RUN_ID")   ? "torchrun"
                 : value_of(getenv, "QFAE_LAUNCHED_BY")     ? value_of(getenv, "QFAE_LAUNCHED_BY")
                                                            : "environment";
    w.size = required_integer(getenv, "WORLD_SIZE", 1, 1 << 20, "");
    w.rank = required_integer(getenv, "RANK", 0, w.size - 1,
                              "WORLD_SIZE is set, so RANK must say which process this is");
    w.local_rank = optional_integer(getenv, "LOCAL_RANK", w.rank, 0, w.size - 1);
    w.local_size = optional_integer(getenv, "LOCAL_WORLD_SIZE", w.size, 1, w.size);
    if (w.size > 1) read_master(getenv, w, "");
    w.agent_store = w.launcher == "torchrun" &&
                    text_of(getenv, "TORCHELASTIC_USE_AGENT_STORE") == "True";
    w.attempt = text_of(getenv, "TORCHELASTIC_RESTART_COUNT");
    return w;
  }
  // Only inside `srun`, which sets the step's task count. A batch script is one process whatever
  // --ntasks says (SLURM_NTASKS counts the allocation's tasks, and SLURM_PROCID is 0 there too).
  if (value_of(getenv, "SLURM_STEP_NUM_TASKS") && value_of(getenv, "SLURM_PROCID")) {
    w.launcher = "slurm";
    w.size = required_integer(getenv, "SLURM_STEP_NUM_TASKS", 1, 1 << 20, "");
    w.rank = required_integer(getenv, "SLURM_PROCID", 0, w.size - 1, "");
    w.local_rank = optional_integer(getenv, "SLURM_LOCALID", 0, 0, w.size - 1);
    const char* per_node = value_of(getenv, "SLURM_STEP_TASKS_PER_NODE")
                               ? "SLURM_STEP_TASKS_PER_NODE"
                               : "SLURM_NTASKS_PER_NODE";
    w.local_size = optional_integer(getenv, per_node, w.size, 1, w.size, /*leading_only=*/true);
    if (w.size > 1) {
      read_master(getenv, w,
                  " (export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head "
                  "-n 1) and a MASTER_PORT before srun, as scripts/sweep.sh --slurm does)");
    }
  }
  return w;
}

World world_from_environment() {
  return world_from_environment([](const char* name) { return std::getenv(name); });
}

int threads_per_rank(int configured, const World& world, int cores) {
  if (configured > 0) return configured;
  return std::max(1, cores / std::max(1, world.local_size));
}

namespace {

// A socket bound to `addr` (port `port`), closed again; errno of the bind, 0 when it worked.
int try_bind(const sockaddr* addr, socklen_t size, int family) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as the store's server does
  const int result = ::bind(fd, addr, size) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

}  // namespace

void check_rendezvous(const World& world) {
  if (!world.distributed()) return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(world.master_addr.c_str(), nullptr, &hints, &found);
  if (gai != 0) {
    throw UserError("MASTER_ADDR '" + world.master_addr + "' cannot be resolved on this machine (" +
                    ::gai_strerror(gai) + "); it must name rank 0's machine (" +
                    world.describe() + ")");
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, ::freeaddrinfo);
  if (!world.leader() || world.agent_store) return;
  // Rank 0 hosts the store on MASTER_PORT of every interface: the port must be free here.
  sockaddr_in any4{};
  any4.sin_family = AF_INET;
  any4.sin_addr.s_addr = htonl(INADDR_ANY);
  any4.sin_port = htons(static_cast<uint16_t>(world.master_port));
  if (try_bind(reinterpret_cast<sockaddr*>(&any4), sizeof(any4), AF_INET) == EADDRINUSE) {
    throw UserError("MASTER_PORT " + std::to_string(world.master_port) + " is already in use on "
                    "this machine (another job's store, or any other program): rank 0 hosts the "
                    "rendezvous store there; choose a free port (" + world.describe() + ")");
  }
  // A MASTER_ADDR that is not this machine's: the others will look for the store elsewhere
  // (behind a service address, as on Kubernetes, it may still be right: only a warning).
  bool local = false;
  for (const addrinfo* a = found; a && !local; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    sockaddr_storage copy{};
    std::memcpy(&copy, a->ai_addr, a->ai_addrlen);
    if (a->ai_family == AF_INET) reinterpret_cast<sockaddr_in*>(&copy)->sin_port = 0;
    else reinterpret_cast<sockaddr_in6*>(&copy)->sin6_port = 0;
    local = try_bind(reinterpret_cast<sockaddr*>(&copy), a->ai_addrlen, a->ai_family) == 0;
  }
  if (!local) {
    log("dist")->warn("MASTER_ADDR '{}' is not an address of this machine, where rank 0 hosts the "
                      "rendezvous store: the other ranks look for it there", world.master_addr);
  }
}

}  // namespace qfae::dist
