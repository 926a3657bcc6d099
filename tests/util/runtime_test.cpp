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

TEST(Runtime, BlasThreadingAdviceOnlyForOpenBlasOwnThreadsBesideSeveralOpenMpThreads) {
  using qfae::blas_threading_advice;
  // OpenBLAS with its own pthreads (1) beside 2 LibTorch threads: the advice names the fix.
  const auto advice = blas_threading_advice(1, 2, nullptr);
  EXPECT_NE(advice.find("libopenblas0-openmp"), std::string::npos) << advice;
  EXPECT_NE(advice.find("OMP_WAIT_POLICY=passive"), std::string::npos) << advice;
  EXPECT_EQ(blas_threading_advice(1, 2, "active"), advice);
  // Nothing to say: OpenBLAS on OpenMP (2), sequential (0) or absent (-1, PyPI's LibTorch with
  // MKL), one thread, or waiting threads that sleep.
  EXPECT_EQ(blas_threading_advice(2, 2, nullptr), "");
  EXPECT_EQ(blas_threading_advice(0, 2, nullptr), "");
  EXPECT_EQ(blas_threading_advice(-1, 16, nullptr), "");
  EXPECT_EQ(blas_threading_advice(1, 1, nullptr), "");
  EXPECT_EQ(blas_threading_advice(1, 2, "passive"), "");
}
