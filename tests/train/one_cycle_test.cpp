// OneCycle against PyTorch's OneCycleLR (tests/fixtures/onecycle_reference.json, made by
// scripts/fixtures/make_onecycle_fixture.py) and against hand-computed end points.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "qfae/train/one_cycle.h"
#include "qfae/util/error.h"

using qfae::train::OneCycle;
using qfae::train::OneCycleOptions;

TEST(OneCycle, MatchesPyTorchOneCycleLR) {
  std::ifstream in(std::string(QFAE_TEST_FIXTURES) + "/onecycle_reference.json");
  ASSERT_TRUE(in) << "missing fixture";
  const auto doc = nlohmann::json::parse(in);
  ASSERT_FALSE(doc["cases"].empty());
  for (const auto& c : doc["cases"]) {
    OneCycleOptions o;
    o.max_lr = c["max_lr"];
    o.total_steps = c["total_steps"];
    o.pct_start = c["pct_start"];
    o.div_factor = c["div_factor"];
    o.final_div_factor = c["final_div_factor"];
    const OneCycle schedule(o);
    const auto& lrs = c["lr"];
    const auto& beta1s = c["beta1"];
    ASSERT_EQ(static_cast<int64_t>(lrs.size()), o.total_steps);
    for (int64_t step = 0; step < o.total_steps; ++step) {
      const auto v = schedule.at(step);
      const double lr = lrs[step], b1 = beta1s[step];
      EXPECT_NEAR(v.lr, lr, 1e-12 * o.max_lr) << "step " << step;
      EXPECT_NEAR(v.beta1, b1, 1e-12) << "step " << step;
    }
  }
}

TEST(OneCycle, HandComputedEndPoints) {
  OneCycleOptions o;
  o.max_lr = 1.0;
  o.total_steps = 101;  // phase 1 ends at 0.15 * 101 - 1 = 14.15
  const OneCycle s(o);
  EXPECT_NEAR(s.at(0).lr, 1.0 / 25.0, 1e-15);  // cos(0) + 1 = 2 up to rounding
  EXPECT_NEAR(s.at(0).beta1, 0.95, 1e-15);
  EXPECT_NEAR(s.at(100).lr, 1.0 / 25.0 / 1e4, 1e-18);
  EXPECT_NEAR(s.at(100).beta1, 0.95, 1e-15);
  // Step 14 sits just before the peak: pct = 14 / 14.15.
  const double pct = 14.0 / 14.15;
  EXPECT_NEAR(s.at(14).lr, 1.0 + (0.04 - 1.0) / 2.0 * (std::cos(M_PI * pct) + 1.0), 1e-15);
  EXPECT_THROW(s.at(102), std::out_of_range);
  EXPECT_THROW(s.at(-1), std::out_of_range);
}

// PyTorch's OneCycleLR divides by pct_start * total_steps - 1 at step 0 (ZeroDivisionError when
// that is 0): a warm-up of exactly one step is refused; a fraction either side of it is not.
TEST(OneCycle, AWarmUpOfExactlyOneStepIsRefused) {
  OneCycleOptions o;
  o.total_steps = 4;
  o.pct_start = 0.25;
  try {
    const OneCycle schedule(o);
    FAIL() << "expected a UserError";
  } catch (const qfae::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("0.25 x 4 steps is exactly 1 step"), std::string::npos)
        << e.what();
  }
  o.total_steps = 10;
  o.pct_start = 0.1;  // 0.1 * 10 is exactly 1.0 in double arithmetic
  EXPECT_THROW(OneCycle{o}, qfae::UserError);
  for (const double pct : {0.2, 0.3}) {  // 0.8 and 1.2 steps: the schedule is finite throughout
    o.total_steps = 4;
    o.pct_start = pct;
    const OneCycle schedule(o);
    for (int64_t step = 0; step <= o.total_steps; ++step) {
      EXPECT_TRUE(std::isfinite(schedule.at(step).lr)) << pct << ", step " << step;
    }
  }
}
