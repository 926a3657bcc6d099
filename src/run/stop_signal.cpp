// The stop flag set by SIGINT/SIGTERM, and the scope that installs and restores its handlers.
#include "qfae/run/stop_signal.h"

#include <atomic>
#include <string>

namespace qfae::run {
namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }
}  // namespace

StopSignalScope::StopSignalScope() {
  g_stop_signal.store(0);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // as std::signal sets it on glibc: system calls resume
  sigaction(SIGINT, &action, &int_before_);
  sigaction(SIGTERM, &action, &term_before_);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &int_before_, nullptr);
  sigaction(SIGTERM, &term_before_, nullptr);
}

int stop_signal() { return g_stop_signal.load(); }
void set_stop_signal(int signal) { g_stop_signal.store(signal); }

StopRequested::StopRequested(int signal)
    : std::runtime_error(signal == SIGINT    ? "stopped by SIGINT"
                         : signal == SIGTERM ? "stopped by SIGTERM"
                                             : "stopped by signal " + std::to_string(signal)),
      signal_(signal) {}

void throw_if_stopped() {
  if (const int signal = stop_signal()) throw StopRequested(signal);
}

}  // namespace qfae::run
