// Device resolution and thread set-up.
#include <gtest/gtest.h>

#include "qfae/util/error.h"
#include "qfae/util/runtime.h"

TEST(Runtime, ResolvesCpuAndRejectsNonsense) {
  EXPECT_EQ(qfae::resolve_device("cpu").type(), torch::kCPU);
  EXPECT_THROW(qfae::resolve_device("gpu7"), qfae::UserError);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(qfae::resolve_device("cuda:0"), qfae::UserError);
    EXPECT_EQ(qfae::resolve_device("auto").type(), torch::kCPU);
  }
}

TEST(Runtime, InitThreadsUsesRequestedCount) {
  qfae::init_threads(2);
  EXPECT_EQ(torch::get_num_threads(), 2);
}
