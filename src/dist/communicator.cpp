// c10d behind qfae's Communicator: TCPStore rendezvous, Gloo (and NCCL) process groups, and the
// heartbeats that name a lost rank. Compiled on its own (not in a unity batch): USE_C10D_GLOO
// (and QFAE_HAVE_NCCL's USE_C10D_NCCL) must be defined before c10d's headers, and Gloo's headers
// come from Debian's libgloo-dev.
#include "qfae/dist/communicator.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#ifndef QFAE_HAVE_NCCL
#define QFAE_HAVE_NCCL 0
#endif
#if QFAE_HAVE_NCCL && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if QFAE_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "qfae/dist/world.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::dist {
namespace {

using namespace std::chrono_literals;
constexpr auto kBeatInterval = 1000ms;

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }
std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

std::string seconds_text(std::chrono::milliseconds ms) {
  std::ostringstream s;
  s << ms.count() / 1000.0 << " s";
  return s.str();
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The network device Gloo binds: GLOO_SOCKET_IFNAME as PyTorch reads it, loopback when the
// whole job is on this machine, else the address this machine's name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const World& world) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (is_loopback(world.master_addr)) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// LibTorch 1.x's store client cannot talk to PyTorch 2's store, which torchrun 2's agent hosts.
std::string agent_hint(const World& world) {
  if (!world.agent_store || TORCH_VERSION_MAJOR >= 2) return "";
  return "; this qfae is built on LibTorch " + std::string(TORCH_VERSION) +
         ", whose store cannot talk to a PyTorch 2 torchrun's: use qfae train --nproc N, or the "
         "QFAE_TORCH=wheel build with its torchrun";
}

// A socket error that escapes a thread of c10d's store client (LibTorch 1.13 reads the store in
// a thread of its own) ends the process through std::terminate. When it says the connection
// ended, the store's host is gone: said as such, with exit code kExitRankLost, instead of an
// abort. Anything else goes on to the handler before.
std::string g_store_lost_text;  // set while a Communicator exists
std::terminate_handler g_terminate_before = nullptr;

[[noreturn]] void on_terminate() {
  std::string what;
  if (const auto error = std::current_exception()) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = first_line(e.what());
    } catch (...) {
    }
  }
  const bool connection = what.find("Connection reset") != std::string::npos ||
                          what.find("Connection closed") != std::string::npos ||
                          what.find("Broken pipe") != std::string::npos;
  if (connection && !g_store_lost_text.empty()) {
    std::fprintf(stderr, "qfae: error: %s (its connection ended: %s)\n", g_store_lost_text.c_str(),
                 what.c_str());
    std::fflush(stderr);
    std::_Exit(kExitRankLost);
  }
  if (g_terminate_before) g_terminate_before();
  std::abort();
}

// What one rank's heartbeat said: "<beat> <step> <pid> <host>".
struct Beat {
  bool present = false;
  int64_t beat = -1, step = -1;
  std::string pid, host;
};

Beat parse_beat(const std::string& text) {
  Beat b;
  std::istringstream in(text);
  b.present = static_cast<bool>(in >> b.beat >> b.step >> b.pid >> b.host);
  return b;
}

}  // namespace

void Pending::wait() {
  if (!wait_) return;
  auto wait = std::move(wait_);
  wait_ = nullptr;
  wait();
}

struct Communicator::Impl {
  World world;
  torch::Device device;
  std::chrono::milliseconds timeout;
  std::string prefix;  // keys of this job's attempt in the store
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#if QFAE_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // The heartbeat: its own store connection and thread.
  c10::intrusive_ptr<c10d::Store> beat_store;
  std::thread beat_thread;
  std::mutex beat_mu;
  std::condition_variable beat_cv;
  bool beat_stop = false;
  std::atomic<int64_t> step{0};

  Impl(const World& w, torch::Device d, std::chrono::milliseconds t)
      : world(w), device(d), timeout(t), prefix("qfae/" + w.attempt + "/") {}

  // Joining is counted by the "joined/<rank>" keys (Communicator's constructor), so that a rank
  // that never comes can be named; the store itself waits for no number of clients.
  c10::intrusive_ptr<c10d::Store> connect(bool host, std::chrono::milliseconds wait_for) const {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(world.master_port);
    o.isServer = host;
    o.waitWorkers = false;
    o.timeout = wait_for;
    o.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(world.master_addr, o);
    return c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
  }

  std::string store_text() const {
    return world.master_addr + ":" + std::to_string(world.master_port);
  }

  // What a rank says when the store stops answering.
  std::string store_lost() const {
    if (world.agent_store) return "lost torchrun's rendezvous store at " + store_text();
    return "lost rank 0 of " + std::to_string(world.size) +
           ": it exited or was killed (it hosts the rendezvous store at " + store_text() + ")";
  }

  void beat_loop() {
    const std::string key = "beat/" + std::to_string(world.rank);
    const std::string who = " " + std::to_string(::getpid()) + " " + host_name();
    int64_t beat = 0;
    std::unique_lock<std::mutex> lock(beat_mu);
    while (!beat_stop) {
      try {
        beat_store->set(key, bytes_of(std::to_string(++beat) + " " +
                                      std::to_string(step.load()) + who));
      } catch (const std::exception&) {
        return;  // the store is gone: a collective will fail and the diagnosis will say why
      }
      beat_cv.wait_for(lock, kBeatInterval, [&] { return beat_stop; });
    }
  }

  void stop_beating() {
    {
      std::lock_guard<std::mutex> lock(beat_mu);
      beat_stop = true;
    }
    beat_cv.notify_all();
    if (beat_thread.joinable()) beat_thread.join();
  }

  std::map<int, Beat> read_beats(c10d::Store& s) const {
    std::map<int, Beat> beats;
    for (int r = 0; r < world.size; ++r) {
      const std::string key = "beat/" + std::to_string(r);
      if (s.check({key})) beats[r] = parse_beat(text_of(s.get(key)));
    }
    return beats;
  }

  // Which rank was lost during `during`, and how: the heartbeats read twice, a few beats apart.
  std::string diagnose(const std::string& during, const std::string& error) const {
    const std::string here = "(" + world.describe() + " noticed it during " + during +
                             " at step " + std::to_string(step.load()) + ": " + error + ")";
    try {
      auto s = connect(/*host=*/false, 3000ms);
      const auto first = read_beats(*s);
      std::this_thread::sleep_for(3 * kBeatInterval);
      const auto second = read_beats(*s);
      std::vector<std::string> lost, hung;
      for (int r = 0; r < world.size; ++r) {
        if (r == world.rank) continue;
        const auto failed_key = "failed/" + std::to_string(r);
        if (s->check({failed_key})) {
          lost.push_back("rank " + std::to_string(r) + " failed: " + text_of(s->get(failed_key)));
          continue;
        }
        const auto a = first.find(r), b = second.find(r);
        const bool alive = a != first.end() && b != second.end() && b->second.beat > a->second.beat;
        if (!alive) {
          const auto& last = b != second.end() ? b->second : Beat{};
          lost.push_back("rank " + std::to_string(r) + (last.present ? " (pid " + last.pid +
                         " on " + last.host + ", last seen at step " + std::to_string(last.step) +
                         ")" : "") + " exited, was killed or froze: its heartbeat stopped");
        } else if (b->second.step < step.load()) {
          hung.push_back("rank " + std::to_string(r) + " (pid " + b->second.pid + " on " +
                         b->second.host + ") is alive but stuck at step " +
                         std::to_string(b->second.step) + ": it did not join within the " +
                         seconds_text(timeout) + " timeout (--dist-timeout)");
        }
      }
      std::string text;
      for (const auto& l : lost.empty() ? hung : lost) text += (text.empty() ? "" : "; ") + l;
      if (text.empty()) {
        text = "a collective with the other ranks failed; every rank still answers its "
               "heartbeat";
      }
      return text + " " + here;
    } catch (const std::exception&) {
      return store_lost() + " " + here;
    }
  }

  // Waits for `work`; a failure becomes RankLost naming the lost rank.
  template <class Work>
  void wait(const Work& work, const std::string& during) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw RankLost(diagnose(during, first_line(e.what())));
    }
  }

  // The group for tensors on `device`: NCCL for CUDA where built, Gloo otherwise.
  template <class F>
  void on_device_group(F&& f) {
#if QFAE_HAVE_NCCL
    if (device.is_cuda()) {
      f(*nccl);
      return;
    }
#endif
    f(*gloo);
  }
};

Communicator::Communicator(const World& world, torch::Device device,
                           std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(world, device, timeout)) {
  auto& m = *impl_;
  // What can be told without the others first, as set-up errors (exit 2).
  check_rendezvous(world);
  const auto started = std::chrono::steady_clock::now();
  const bool host = world.leader() && !world.agent_store;
  try {
    m.store = m.connect(host, timeout);
  } catch (const std::exception& e) {
    const std::string why = first_line(e.what());
    if (host && why.find("ddress already in use") != std::string::npos) {
      throw UserError("MASTER_PORT " + std::to_string(world.master_port) + " is already in use "
                      "on this machine: rank 0 cannot host the rendezvous store there; choose a "
                      "free port (" + world.describe() + ")");
    }
    if (host) {
      throw UserError("rank 0 cannot host the rendezvous store at " + m.store_text() + ": " + why);
    }
    throw RankLost(world.describe() + " could not reach the rendezvous store at " +
                   m.store_text() + " within the " + seconds_text(timeout) +
                   " timeout (--dist-timeout): " +
                   (world.agent_store ? std::string("torchrun's agent hosts it")
                                      : "rank 0 hosts it, so rank 0 did not start, failed before "
                                        "hosting it, or MASTER_ADDR and MASTER_PORT do not name "
                                        "its machine and port") +
                   agent_hint(world) + " (LibTorch: " + why + ")");
  }
  // Every rank says it has joined and waits for the others: one that never comes is named.
  try {
    m.store->set("joined/" + std::to_string(world.rank),
                 bytes_of(std::to_string(::getpid()) + " " + host_name()));
    std::vector<std::string> keys;
    for (int r = 0; r < world.size; ++r) keys.push_back("joined/" + std::to_string(r));
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    m.store->wait(keys, std::max(timeout - spent, std::chrono::milliseconds(1000)));
  } catch (const std::exception& e) {
    std::string missing, joined;
    try {
      for (int r = 0; r < world.size; ++r) {
        auto& list = m.store->check({"joined/" + std::to_string(r)}) ? joined : missing;
        list += (list.empty() ? "" : ", ") + std::to_string(r);
      }
    } catch (const std::exception&) {
      throw RankLost(m.store_lost() + " while the ranks were joining (" + world.describe() + ": " +
                     first_line(e.what()) + ")");
    }
    if (missing.empty()) throw RankLost(world.describe() + ": " + first_line(e.what()));
    throw RankLost(std::string(missing.find(',') == std::string::npos ? "rank " : "ranks ") +
                   missing + " of " + std::to_string(world.size) + " never joined the job at " +
                   m.store_text() + " within the " + seconds_text(timeout) +
                   " timeout (--dist-timeout): not started, failed before joining, or unable to "
                   "reach MASTER_ADDR:MASTER_PORT (joined: rank" +
                   (joined.find(',') == std::string::npos ? " " : "s ") + joined + "; " +
                   world.describe() + ")");
  }
  g_store_lost_text = m.store_lost();
  g_terminate_before = std::set_terminate(on_terminate);
  m.beat_store = m.connect(false, timeout);
  m.beat_thread = std::thread([&m] { m.beat_loop(); });
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(world));
    m.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", m.store), world.rank, world.size, options);
#if QFAE_HAVE_NCCL
    if (device.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      m.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", m.store), world.rank, world.size,
          nccl_options);
    }
#endif
  } catch (const std::exception& e) {
    m.stop_beating();
    throw RankLost(m.diagnose("the set-up of the process groups", first_line(e.what())));
  }
  log("dist")->info("{}: joined through {}; {} on {}, timeout {}", world.describe(),
                    m.store_text(), device.is_cuda() && QFAE_HAVE_NCCL ? "NCCL" : "Gloo",
                    device.str(), seconds_text(timeout));
}

Communicator::~Communicator() {
  impl_->stop_beating();
  impl_.reset();  // the store connections close while the handler still speaks for them
  std::set_terminate(g_terminate_before);
  g_store_lost_text.clear();
}

const World& Communicator::world() const { return impl_->world; }
torch::Device Communicator::device() const { return impl_->device; }
std::chrono::milliseconds Communicator::timeout() const { return impl_->timeout; }

void Communicator::broadcast(std::vector<torch::Tensor> tensors, int root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one = {t};
    impl_->on_device_group([&](auto& group) {
      impl_->wait(group.broadcast(one, options), "the broadcast of rank 0's weights");
    });
  }
}

Pending Communicator::all_reduce_sum(torch::Tensor flat) {
  std::vector<at::Tensor> tensors = {std::move(flat)};
  Pending pending;
  impl_->on_device_group([&](auto& group) {
    auto work = group.allreduce(tensors);
    pending = Pending([this, work, tensors] { impl_->wait(work, "the gradient all-reduce"); });
  });
  return pending;
}

std::vector<double> Communicator::sum(std::vector<double> values) {
  auto t = torch::tensor(values, torch::kDouble);
  std::vector<at::Tensor> tensors = {t};
  impl_->wait(impl_->gloo->allreduce(tensors), "a sum over the ranks");
  const auto* p = t.data_ptr<double>();
  return {p, p + t.numel()};
}

int Communicator::agree_stop(int local_signal) {
  std::vector<at::Tensor> tensors = {torch::tensor({static_cast<int64_t>(local_signal)})};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  impl_->wait(impl_->gloo->allreduce(tensors, options), "the stop-signal check");
  return static_cast<int>(tensors[0].item<int64_t>());
}

torch::Tensor Communicator::all_gather_rows(const torch::Tensor& rows) {
  TORCH_CHECK(rows.dim() == 2 && rows.scalar_type() == torch::kDouble && rows.device().is_cpu(),
              "all_gather_rows takes (n, k) float64 CPU rows");
  auto gather = [&](const torch::Tensor& mine) {
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(mine));
    std::vector<at::Tensor> in = {mine};
    impl_->wait(impl_->gloo->allgather(out, in), "the gathering of results");
    return out[0];
  };
  const auto counts = gather(torch::tensor({rows.size(0)}, torch::kLong));
  int64_t most = 0;
  for (const auto& c : counts) most = std::max(most, c.item<int64_t>());
  auto padded = torch::zeros({most, rows.size(1)}, rows.options());
  padded.narrow(0, 0, rows.size(0)).copy_(rows);
  const auto all = gather(padded);
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < size(); ++r) parts.push_back(all[r].narrow(0, 0, counts[r].item<int64_t>()));
  return torch::cat(parts);
}

torch::Tensor Communicator::gather_rows(const torch::Tensor& rows, int root) {
  TORCH_CHECK(rows.dim() >= 1 && rows.device().is_cpu(), "gather_rows takes CPU rows");
  // Everyone learns the row counts, then sends rows padded to the largest.
  const auto counts = all_gather_rows(torch::tensor({{static_cast<double>(rows.size(0))}},
                                                    torch::kDouble));
  int64_t most = 0;
  for (int r = 0; r < size(); ++r) most = std::max(most, static_cast<int64_t>(counts[r][0].item<double>()));
  auto sizes = rows.sizes().vec();
  sizes[0] = most;
  auto padded = torch::zeros(sizes, rows.options());
  padded.narrow(0, 0, rows.size(0)).copy_(rows);
  std::vector<std::vector<at::Tensor>> out;
  if (rank() == root) {
    out.emplace_back();
    for (int r = 0; r < size(); ++r) out[0].push_back(torch::empty_like(padded));
  }
  std::vector<at::Tensor> in = {padded};
  c10d::GatherOptions options;
  options.rootRank = root;
  impl_->wait(impl_->gloo->gather(out, in, options), "the gathering of results");
  if (rank() != root) return {};
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < size(); ++r) {
    parts.push_back(out[0][r].narrow(0, 0, static_cast<int64_t>(counts[r][0].item<double>())));
  }
  return torch::cat(parts);
}

void Communicator::barrier() {
  impl_->wait(impl_->gloo->barrier(), "a barrier");
}

void Communicator::announce_failure(const std::string& what) noexcept {
  try {
    impl_->store->set("failed/" + std::to_string(rank()), bytes_of(what));
  } catch (...) {
  }
}

void Communicator::set_progress(int64_t step) { impl_->step.store(step); }

}  // namespace qfae::dist
