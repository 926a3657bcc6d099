// What the training loop shows while it runs: on a terminal, a progress bar refreshed a few times
// a second and a line every train.log_every steps; elsewhere only the log lines.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace qfae::train {

// "h:mm:ss" of a non-negative duration (negative: 0:00:00).
std::string format_duration(double seconds);

class ProgressReporter {
 public:
  // epochs and stop_step are the run's; batch_size the global batch (images per step).
  ProgressReporter(int64_t epochs, int64_t stop_step, int64_t batch_size, bool tty);

  // Starts an epoch's clock and image count.
  void start_epoch(int64_t epoch);
  // Counts the images of one step (every rank's).
  void add_images(int64_t images) { images_ += images; }
  // Images a second since the epoch started.
  double rate() const;
  // Whether the terminal bar is due for a refresh (a quarter second since the last one).
  bool bar_due() const;
  // Shows the state after `step`: the bar on a terminal (ended with a newline at the end of an
  // epoch's logged step), else a log line when `logged`. `loss` NaN: none logged yet.
  void show(int64_t step, double loss, double lr, bool logged, bool epoch_end);

 private:
  using Clock = std::chrono::steady_clock;
  int64_t epochs_, stop_step_, batch_size_;
  bool tty_;
  int64_t epoch_ = 0, images_ = 0;
  Clock::time_point start_ = Clock::now(), last_bar_ = start_;
};

}  // namespace qfae::train
