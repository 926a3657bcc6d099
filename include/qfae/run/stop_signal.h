// The SIGINT/SIGTERM flag that lets long work (training, eval, infer) stop cleanly after the
// current step or batch, and the exception eval and infer end with when it is set.
#pragma once
#include <csignal>
#include <cstdint>
#include <stdexcept>

namespace qfae::run {

// A repeated signal within this many milliseconds of the first is the same request (a terminal's
// SIGINT to a whole process group, echoed by a launcher); a later one is a second request.
inline constexpr int64_t kRepeatWindowMs = 1000;

// For its scope, the first SIGINT or SIGTERM only records the signal (work loops poll
// stop_signal()) and says on stderr that a second one stops at once; a second one, at least
// kRepeatWindowMs later, ends the process at once as the signal's default action does (exit status
// 128 + signal; the files written so far are each complete, since every write is atomic). The
// handlers before it come back at its end. Process-wide by nature: one per command, in the
// function that runs the command's loop. Clears the flag when it starts.
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  struct sigaction int_before_ {};
  struct sigaction term_before_ {};
};

// The signal received since the innermost StopSignalScope began (0 = none).
int stop_signal();
// Test hook: pretend `signal` arrived (0 clears it).
void set_stop_signal(int signal);

// What eval and infer throw when a stop signal arrived: they finish the current batch, throw
// this, and their unfinished output folder is removed on the way out (StagedDir). The command
// exits with 128 + signal (130 for SIGINT, 143 for SIGTERM).
// what(): "stopped by SIGINT" (or SIGTERM, or "signal N").
class StopRequested : public std::runtime_error {
 public:
  explicit StopRequested(int signal);
  int signal_number() const { return signal_; }

 private:
  int signal_;
};
// Throws StopRequested when stop_signal() is set.
void throw_if_stopped();

}  // namespace qfae::run
