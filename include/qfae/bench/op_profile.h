// Where a step's time goes, op by op (`qfae bench --profile`): one extra step under LibTorch's
// profiler, its Chrome trace written for Perfetto / chrome://tracing and summed per op.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace qfae::bench {

struct OpTime {
  std::string name;  // "aten::addmm", an autograd node ("AddmmBackward0"), ...
  int64_t calls = 0;
  double self_ms = 0;     // its own time, without the ops it called
  double total_ms = 0;    // with them, summed over its calls
  double self_share = 0;  // self_ms over the sum of every op's self_ms (the profiled step)
};

// Per-op times from a Chrome trace of complete events ({"name", "ph": "X", "ts", "dur", "tid"}
// in microseconds, as LibTorch's RecordProfile writes them), sorted by self time, largest first.
// An event's self time is its duration less that of the events directly inside it on its thread.
std::vector<OpTime> op_times_from_trace(const nlohmann::json& trace);

// Runs `step` once under LibTorch's profiler (CPU-side op times; `step` must wait for the device
// itself), writes the trace to `trace_path` and returns op_times_from_trace of it.
std::vector<OpTime> profile_step(const std::function<void()>& step, const std::string& trace_path);

}  // namespace qfae::bench
