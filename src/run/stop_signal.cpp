// The stop flag set by SIGINT/SIGTERM, and the scope that installs and restores its handlers.
#include "qfae/run/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

namespace qfae::run {
namespace {
std::atomic<int> g_stop_signal{0};
std::atomic<int64_t> g_first_ms{0};  // CLOCK_MONOTONIC milliseconds of the first signal

int64_t signal_clock_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // async-signal-safe
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void say(const char* text, size_t size) { [[maybe_unused]] auto n = ::write(2, text, size); }

extern "C" void on_stop_signal(int signal) {
  const int64_t now = signal_clock_ms();
  int expected = 0;
  if (g_stop_signal.compare_exchange_strong(expected, signal)) {
    g_first_ms.store(now);
    static const char kFirst[] =
        "\nqfae: stopping cleanly after the current step or batch (send the signal again to stop "
        "at once)\n";
    say(kFirst, sizeof(kFirst) - 1);
    return;
  }
  // The same keypress often arrives twice (the terminal's SIGINT and a launcher passing it on):
  // only a signal a while after the first is a second request.
  if (now - g_first_ms.load() < kRepeatWindowMs) return;
  static const char kSecond[] = "\nqfae: stop signal repeated: stopping at once\n";
  say(kSecond, sizeof(kSecond) - 1);
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
  ::raise(signal);  // ends the process as the signal does: exit status 128 + signal
}
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
void set_stop_signal(int signal) {
  g_stop_signal.store(signal);
  g_first_ms.store(signal_clock_ms());
}

StopRequested::StopRequested(int signal)
    : std::runtime_error(signal == SIGINT    ? "stopped by SIGINT"
                         : signal == SIGTERM ? "stopped by SIGTERM"
                                             : "stopped by signal " + std::to_string(signal)),
      signal_(signal) {}

void throw_if_stopped() {
  if (const int signal = stop_signal()) throw StopRequested(signal);
}

}  // namespace qfae::run
