// TrainStep on the tiny config: two steps of Adam against Adam's update written out in plain torch
// ops (PyTorch's torch.optim.Adam algorithm: L2 weight decay added to the gradient, bias
// correction with the step's own beta1), at the OneCycle lr and beta1 worked out by hand; the
// returned loss is loss.weight times the model's; dropout draws depend on the step only.
#include "qfae/train/train_step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../support/tiny_run.h"
#include "qfae/anomaly/anomaly_model.h"
#include "qfae/anomaly/precision.h"
#include "qfae/config/loader.h"

namespace {

// Tiny config, no dropout (so that the gradient below is the step's), L2 decay on, a loss
// weight, and a schedule whose first two steps have simple values: with 10 steps and
// warmup 0.2 the rise ends at step 0.2 * 10 - 1 = 1, so (PyTorch's OneCycleLR, cosine annealing)
//   step 0: lr = lr / div_factor = 1e-3 / 25 = 4e-5,  beta1 = beta1_max = 0.95
//   step 1: lr = lr = 1e-3,                           beta1 = beta1_min = 0.85.
qfae::config::Config step_test_config(double dropout) {
  auto sets = qfae::test::tiny_overrides();
  for (const char* s :
       {"train.lr=1e-3", "train.div_factor=25", "train.warmup=0.2", "train.beta1_max=0.95",
        "train.beta1_min=0.85", "train.beta2=0.999", "train.weight_decay=0.1", "loss.weight=2"}) {
    sets.emplace_back(s);
  }
  sets.push_back("model.dropout=" + std::to_string(dropout));
  return qfae::config::load_config({}, sets).config;
}

std::vector<torch::Tensor> trainable_of(qfae::anomaly::AnomalyModel& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.autoencoder()->parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

void forget_gradients(const std::vector<torch::Tensor>& params) {
  for (auto p : params) p.mutable_grad() = torch::Tensor();
}

// The loss and each trainable weight's gradient (undefined where the loss does not reach it) at
// the model's current weights, left with no gradient afterwards.
struct LossAndGradients {
  torch::Tensor loss;
  std::vector<torch::Tensor> grads;
};

LossAndGradients loss_and_gradients(qfae::anomaly::AnomalyModel& model,
                                    const torch::Tensor& images) {
  const auto params = trainable_of(model);
  forget_gradients(params);
  const auto loss = model.training_loss(images, model.reconstruct(images)) * 2.0;  // loss.weight
  loss.backward();
  LossAndGradients out{loss.detach(), {}};
  for (const auto& p : params) {
    out.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  }
  forget_gradients(params);
  return out;
}

// Adam's moments for one weight.
struct Moments {
  torch::Tensor m, v;
};

// One Adam update of `p` (PyTorch's algorithm, eps 1e-8 as TrainStep leaves it) at optimizer step
// `t` (1-based); updates `moments` and returns the new weight.
torch::Tensor adam_by_hand(const torch::Tensor& p, torch::Tensor g, Moments& moments, int t,
                           double lr, double beta1, double beta2, double weight_decay) {
  g = g + weight_decay * p;
  moments.m = beta1 * moments.m + (1 - beta1) * g;
  moments.v = beta2 * moments.v + (1 - beta2) * g * g;
  const double bias1 = 1 - std::pow(beta1, t), bias2 = 1 - std::pow(beta2, t);
  return p - (lr / bias1) * moments.m / (moments.v.sqrt() / std::sqrt(bias2) + 1e-8);
}

}  // namespace

TEST(TrainStep, TwoStepsAreAdamsUpdateAtTheOneCycleValuesOfTheirStep) {
  const auto cfg = step_test_config(/*dropout=*/0.0);
  torch::manual_seed(0);
  qfae::anomaly::AnomalyModel model(cfg, torch::kCPU);
  model.autoencoder()->train();
  torch::manual_seed(1);
  const auto images = torch::randn({2, 3, 32, 32});
  const auto params = trainable_of(model);
  ASSERT_FALSE(params.empty());

  qfae::train::TrainStep step(model, /*total_steps=*/10, qfae::anomaly::Precision::kFp32);
  std::vector<Moments> moments;
  for (const auto& p : params) moments.push_back({torch::zeros_like(p), torch::zeros_like(p)});

  const struct { double lr, beta1; } schedule[2] = {{4e-5, 0.95}, {1e-3, 0.85}};
  for (int s = 0; s < 2; ++s) {
    const auto at = loss_and_gradients(model, images);
    std::vector<torch::Tensor> expected;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto p = params[i].detach().clone();
      expected.push_back(at.grads[i].defined()
                             ? adam_by_hand(p, at.grads[i], moments[i], s + 1, schedule[s].lr,
                                            schedule[s].beta1, 0.999, 0.1)
                             : p);
    }
    const auto loss = step(images, s);
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
    EXPECT_NEAR(loss.item<double>(), at.loss.item<double>(), 1e-6 * at.loss.item<double>())
        << "step " << s;
    for (size_t i = 0; i < params.size(); ++i) {
      // Updates are about lr in size (1e-3, 4e-5): a wrong lr, beta1 or decay is far outside this.
      EXPECT_TRUE(torch::allclose(params[i].detach(), expected[i], /*rtol=*/1e-5, /*atol=*/1e-7))
          << "step " << s << ", weight " << i << ": largest difference "
          << (params[i].detach() - expected[i]).abs().max().item<double>();
    }
    const auto& options =
        static_cast<torch::optim::AdamOptions&>(step.optimizer().param_groups()[0].options());
    EXPECT_DOUBLE_EQ(options.lr(), schedule[s].lr) << "step " << s;
    EXPECT_DOUBLE_EQ(std::get<0>(options.betas()), schedule[s].beta1) << "step " << s;
    EXPECT_DOUBLE_EQ(std::get<1>(options.betas()), 0.999);
    EXPECT_DOUBLE_EQ(options.weight_decay(), 0.1);
  }
}

TEST(TrainStep, DropoutDrawsDependOnTheStepNotOnTheRandomStateBefore) {
  // What a resumed run relies on: step 3 from the same weights is the same step, whatever was
  // drawn from the default generator before it.
  const auto cfg = step_test_config(/*dropout=*/0.1);
  torch::manual_seed(1);
  const auto images = torch::randn({2, 3, 32, 32});
  std::vector<std::vector<torch::Tensor>> after;
  std::vector<double> losses;
  for (int run = 0; run < 3; ++run) {
    torch::manual_seed(0);  // the same fresh weights every time
    qfae::anomaly::AnomalyModel model(cfg, torch::kCPU);
    model.autoencoder()->train();
    qfae::train::TrainStep step(model, /*total_steps=*/10, qfae::anomaly::Precision::kFp32);
    torch::manual_seed(100 + run);  // a different state of the default generator each run
    torch::rand({1000});
    // Runs 0 and 1 take step 3, run 2 step 4. The loss is computed before the update, so run 2's
    // differs from run 0's by its dropout draws only.
    if (run == 2) {
      losses.push_back(step(images, 4).item<double>());
    } else {
      losses.push_back(step(images, 3).item<double>());
    }
    after.emplace_back();
    for (const auto& p : trainable_of(model)) after.back().push_back(p.detach().clone());
  }
  EXPECT_EQ(losses[0], losses[1]);
  for (size_t i = 0; i < after[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(after[0][i], after[1][i])) << "weight " << i;
  }
  // The draws do differ between steps, so the equality above is not dropout doing nothing.
  EXPECT_NE(losses[0], losses[2]);
}
