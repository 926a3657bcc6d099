// Per-op self and total times from a Chrome trace: a hand-built trace whose answer is worked out
// below, and a profiled LibTorch step.
#include "qfae/bench/op_profile.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "../support/run_binary.h"

namespace qfae::bench {
namespace {

nlohmann::json event(const std::string& name, double ts, double dur, int tid = 1) {
  return {{"name", name},
          {"ph", "X"},
          {"ts", ts},
          {"dur", dur},
          {"tid", tid},
          {"pid", "CPU Functions"},
          {"args", nlohmann::json::object()}};
}

// Thread 1: linear [0, 100) holding t [5, 15) and addmm [20, 90); addmm holds copy_ [30, 40).
// Then relu [100, 110), starting where linear ends. Thread 2: addmm [0, 50), alone. Listed out of
// order, as LibTorch writes them (children first).
//   linear: self 100 - 10 - 70 = 20, total 100
//   addmm:  self (70 - 10) + 50 = 110, total 120, 2 calls
//   t: 10; copy_: 10; relu: 10 (not inside linear: it starts at linear's end)
//   all self: 20 + 110 + 10 + 10 + 10 = 160 us
TEST(OpProfile, SelfTimesFromAHandBuiltTrace) {
  const nlohmann::json trace = {event("copy_", 30, 10), event("t", 5, 10),
                                event("addmm", 20, 70), event("linear", 0, 100),
                                event("relu", 100, 10), event("addmm", 0, 50, 2)};
  const auto ops = op_times_from_trace(trace);
  std::map<std::string, OpTime> by_name;
  for (const auto& op : ops) by_name[op.name] = op;
  ASSERT_EQ(by_name.size(), 5u);
  EXPECT_EQ(ops.front().name, "addmm");
  EXPECT_EQ(by_name["addmm"].calls, 2);
  EXPECT_NEAR(by_name["addmm"].self_ms, 0.110, 1e-12);
  EXPECT_NEAR(by_name["addmm"].total_ms, 0.120, 1e-12);
  EXPECT_NEAR(by_name["linear"].self_ms, 0.020, 1e-12);
  EXPECT_NEAR(by_name["linear"].total_ms, 0.100, 1e-12);
  EXPECT_NEAR(by_name["relu"].self_ms, 0.010, 1e-12);
  EXPECT_NEAR(by_name["copy_"].self_ms, 0.010, 1e-12);
  EXPECT_NEAR(by_name["addmm"].self_share, 110.0 / 160.0, 1e-12);
  EXPECT_NEAR(by_name["t"].self_share, 10.0 / 160.0, 1e-12);
  // The {"traceEvents": [...]} form holds the same events.
  const auto wrapped = op_times_from_trace({{"traceEvents", trace}});
  ASSERT_EQ(wrapped.size(), ops.size());
  EXPECT_NEAR(wrapped.front().self_ms, ops.front().self_ms, 1e-12);
}

// A real step: the matrix product dominates a (256, 256) linear layer's forward and backward,
// every op's self time is at most its total, and the shares add up to one.
TEST(OpProfile, AProfiledStepListsItsOps) {
  test::TempDir dir;
  const auto trace = (dir.path() / "step.trace.json").string();
  const auto x = torch::randn({256, 256});
  auto w = torch::randn({256, 256}, torch::requires_grad());
  const auto ops =
      profile_step([&] { torch::nn::functional::linear(x, w).relu().sum().backward(); }, trace);
  ASSERT_TRUE(std::filesystem::exists(trace));
  ASSERT_FALSE(ops.empty());
  double shares = 0;
  bool has_mm = false;
  for (const auto& op : ops) {
    EXPECT_LE(op.self_ms, op.total_ms + 1e-9) << op.name;
    EXPECT_GE(op.calls, 1) << op.name;
    shares += op.self_share;
    has_mm = has_mm || op.name == "aten::mm" || op.name == "aten::addmm" ||
             op.name == "aten::matmul" || op.name == "aten::linear";
  }
  EXPECT_NEAR(shares, 1.0, 1e-9);
  EXPECT_TRUE(has_mm) << "the linear layer's product is among the ops";
}

}  // namespace
}  // namespace qfae::bench
