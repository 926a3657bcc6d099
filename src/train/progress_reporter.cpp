// The training progress bar and log lines.
#include "qfae/train/progress_reporter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "qfae/util/log.h"

namespace qfae::train {

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", static_cast<long>(s / 3600),
                static_cast<long>(s / 60 % 60), static_cast<long>(s % 60));
  return buf;
}

ProgressReporter::ProgressReporter(int64_t epochs, int64_t stop_step, int64_t batch_size, bool tty)
    : epochs_(epochs), stop_step_(stop_step), batch_size_(batch_size), tty_(tty) {}

void ProgressReporter::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  images_ = 0;
  start_ = last_bar_ = Clock::now();
}

double ProgressReporter::rate() const {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  return static_cast<double>(images_) / std::max(seconds, 1e-9);
}

bool ProgressReporter::bar_due() const {
  return tty_ && Clock::now() - last_bar_ > std::chrono::milliseconds(250);
}

void ProgressReporter::show(int64_t step, double loss, double lr, bool logged, bool epoch_end) {
  last_bar_ = Clock::now();
  const double images_per_s = rate();
  const double eta = static_cast<double>((stop_step_ - step) * batch_size_) / images_per_s;
  if (tty_) {
    char loss_text[32] = "-";
    if (!std::isnan(loss)) std::snprintf(loss_text, sizeof(loss_text), "%.5f", loss);
    std::fprintf(stderr, "\r[train] epoch %ld/%ld step %ld/%ld loss %s lr %.2e %.1f img/s ETA %s ",
                 static_cast<long>(epoch_ + 1), static_cast<long>(epochs_),
                 static_cast<long>(step), static_cast<long>(stop_step_), loss_text, lr,
                 images_per_s, format_duration(eta).c_str());
    if (logged && epoch_end) std::fprintf(stderr, "\n");
  } else if (logged) {
    log("train")->info("epoch {}/{} step {}/{} loss {:.5f} lr {:.2e} {:.1f} img/s ETA {}",
                       epoch_ + 1, epochs_, step, stop_step_, loss, lr, images_per_s,
                       format_duration(eta));
  }
}

}  // namespace qfae::train
