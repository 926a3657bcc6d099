// Per-op self and total times of one profiled step, from LibTorch's Chrome trace.
#include "qfae/bench/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "qfae/util/error.h"

namespace qfae::bench {

std::vector<OpTime> op_times_from_trace(const nlohmann::json& trace) {
  struct Event {
    std::string name;
    double start = 0, duration = 0, children = 0;
  };
  const auto& events = trace.is_object() ? trace.at("traceEvents") : trace;
  std::map<std::string, std::vector<Event>> by_thread;
  for (const auto& e : events) {
    if (e.value("ph", "") != "X") continue;
    const auto tid = e.contains("tid") ? e.at("tid").dump() : "";
    by_thread[tid].push_back(
        {e.at("name").get<std::string>(), e.at("ts").get<double>(), e.at("dur").get<double>()});
  }
  std::map<std::string, OpTime> ops;
  for (auto& [tid, list] : by_thread) {
    // Parents before their children: by start, the longer first where two start together.
    std::sort(list.begin(), list.end(), [](const Event& a, const Event& b) {
      return a.start != b.start ? a.start < b.start : a.duration > b.duration;
    });
    std::vector<size_t> open;  // the events enclosing the current one, innermost last
    for (size_t i = 0; i < list.size(); ++i) {
      // The trace rounds to nanoseconds: an event ending within 1 ns of a start has ended.
      while (!open.empty() &&
             list[open.back()].start + list[open.back()].duration <= list[i].start + 1e-3) {
        open.pop_back();
      }
      if (!open.empty()) list[open.back()].children += list[i].duration;
      open.push_back(i);
    }
    for (const auto& e : list) {
      auto& op = ops[e.name];
      op.name = e.name;
      ++op.calls;
      op.self_ms += std::max(0.0, e.duration - e.children) / 1e3;
      op.total_ms += e.duration / 1e3;
    }
  }
  std::vector<OpTime> out;
  double all = 0;
  for (auto& [name, op] : ops) {
    all += op.self_ms;
    out.push_back(op);
  }
  for (auto& op : out) op.self_share = all > 0 ? op.self_ms / all : 0;
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) {
    return a.self_ms != b.self_ms ? a.self_ms > b.self_ms : a.name < b.name;
  });
  return out;
}

std::vector<OpTime> profile_step(const std::function<void()>& step, const std::string& trace_path) {
  {
    // Writes the trace when it goes out of scope.
    torch::autograd::profiler::RecordProfile profile(trace_path);
    step();
  }
  std::ifstream in(trace_path);
  if (!in) throw UserError("--profile: cannot read back '" + trace_path + "'");
  nlohmann::json trace;
  try {
    in >> trace;
  } catch (const nlohmann::json::exception& e) {
    throw UserError("--profile: '" + trace_path + "' is not the JSON trace expected (" + e.what() +
                    ")");
  }
  return op_times_from_trace(trace);
}

}  // namespace qfae::bench
