// GradientReducer with two ranks in one process (two threads, Gloo over 127.0.0.1): the
// gradients it leaves are the mean of the ranks' own, as plain autograd computes them.
#include "qfae/dist/gradient_reducer.h"

#include <gtest/gtest.h>

#include <thread>

#include "../support/loopback_port.h"

namespace {

// Three weights; `unused` takes no part in the loss.
struct Weights {
  torch::Tensor a, b, unused;
  std::vector<torch::Tensor> all() const { return {a, b, unused}; }
};

Weights make_weights() {
  torch::manual_seed(3);
  return {torch::randn({5, 4}).requires_grad_(), torch::randn({3, 5}).requires_grad_(),
          torch::randn({7}).requires_grad_()};
}

torch::Tensor loss_of(const Weights& w, const torch::Tensor& x) {
  return (x.matmul(w.a.t()).tanh().matmul(w.b.t())).pow(2).mean();
}

torch::Tensor input_of(int rank) {
  torch::manual_seed(100 + rank);
  return torch::randn({6, 4});
}

}  // namespace

TEST(GradientReducer, GradientsBecomeTheRanksMean) {
  // Expected: each rank's gradient by plain autograd, averaged here.
  std::vector<std::vector<torch::Tensor>> own(2);
  for (int r = 0; r < 2; ++r) {
    const auto w = make_weights();
    loss_of(w, input_of(r)).backward();
    for (const auto& p : {w.a, w.b}) own[r].push_back(p.grad().clone());
  }
  // Drawn here: the default generator is shared by the rank threads.
  const auto initial = make_weights();
  const std::vector<torch::Tensor> inputs = {input_of(0), input_of(1)};
  const auto copy = [](const Weights& w) {
    return Weights{w.a.detach().clone().requires_grad_(), w.b.detach().clone().requires_grad_(),
                   w.unused.detach().clone().requires_grad_()};
  };
  const int port = qfae::test::free_loopback_port();
  std::vector<std::vector<torch::Tensor>> got(2);
  std::vector<int64_t> buckets(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        qfae::dist::World world;
        world.rank = r;
        world.size = 2;
        world.master_addr = "127.0.0.1";
        world.master_port = port;
        qfae::dist::Communicator comm(world, torch::kCPU, std::chrono::seconds(30));
        const auto w = copy(initial);
        // 16-byte buckets: every weight (28, 60 and 80 bytes) fills one, so there are three
        // all-reduces, started one after another.
        qfae::dist::GradientReducer reducer(comm, w.all(), {16, 16});
        buckets[r] = reducer.buckets();
        for (int step = 0; step < 2; ++step) {  // a second step must not add to the first's
          reducer.prepare();
          loss_of(w, inputs[r]).backward();
          reducer.finish();
        }
        for (const auto& p : w.all()) got[r].push_back(p.grad().clone());
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  EXPECT_EQ(buckets[0], 3);
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 2; ++i) {
      const auto mean = (own[0][i] + own[1][i]) / 2;
      EXPECT_TRUE(torch::allclose(got[r][i], mean, 1e-6, 1e-7)) << "rank " << r << " weight " << i;
    }
    // The weight backward never reached gets zeros on every rank.
    EXPECT_TRUE(torch::equal(got[r][2], torch::zeros({7})));
  }
}
