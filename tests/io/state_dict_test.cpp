// module_state / load_module_state on a tiny module: names, round trips through a safetensors file,
// strict-mode reports, shape mismatches naming the key, and loading a slice of the parity fixture.
#include "qfae/io/state_dict.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "qfae/io/safetensors.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;
using qfae::io::load_module_state;
using qfae::io::module_state;

namespace {

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    fc_ = register_module("fc", torch::nn::Linear(/*in=*/3, /*out=*/2));
    head_ = register_module("head", torch::nn::Linear(/*in=*/2, /*out=*/1));
    running_ = register_buffer("running", torch::zeros({4}));
  }
  torch::nn::Linear fc_{nullptr}, head_{nullptr};
  torch::Tensor running_;
};
TORCH_MODULE(TinyNet);

std::string load_error(torch::nn::Module& m, const std::map<std::string, torch::Tensor>& state,
                       const std::string& prefix, bool strict) {
  try {
    load_module_state(m, state, prefix, strict, "weights.safetensors");
  } catch (const qfae::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StateDictTest, ModuleStateListsParametersAndBuffersDetached) {
  TinyNet net;
  const auto state = module_state(*net, "model.");
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"model.fc.bias", "model.fc.weight", "model.head.bias",
                                             "model.head.weight", "model.running"}));
  EXPECT_FALSE(state.at("model.fc.weight").requires_grad());
  EXPECT_EQ(state.at("model.fc.weight").data_ptr(), net->fc_->weight.data_ptr());
  EXPECT_EQ(state.at("model.running").sizes(), torch::IntArrayRef({4}));
}

TEST(StateDictTest, RoundTripThroughSafetensorsFile) {
  TinyNet source;
  source->running_.copy_(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}));
  auto state = module_state(*source, "model.");
  state["other.ignored"] = torch::ones({7});  // outside the prefix: neither loaded nor reported
  const auto path = (fs::temp_directory_path() /
                     ("qfae_state_dict_" + std::to_string(::getpid()) + ".safetensors"))
                        .string();
  qfae::io::save_safetensors(path, state);
  const auto file = qfae::io::load_safetensors(path);
  fs::remove(path);

  TinyNet target;
  ASSERT_FALSE(torch::equal(target->fc_->weight, source->fc_->weight));
  const auto report = load_module_state(*target, file.tensors, "model.", /*strict=*/true, path);
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  EXPECT_TRUE(torch::equal(target->fc_->weight, source->fc_->weight));
  EXPECT_TRUE(torch::equal(target->head_->bias, source->head_->bias));
  EXPECT_TRUE(torch::equal(target->running_, torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
  EXPECT_TRUE(target->fc_->weight.requires_grad());  // still a trainable parameter
}

TEST(StateDictTest, ConvertsDtypeToTheParameters) {
  TinyNet net;
  auto state = module_state(*net);
  state["fc.weight"] = torch::tensor({{0.5, 1.5, -2.0}, {0.25, 0.0, 8.0}}, torch::kFloat64);
  load_module_state(*net, state, "", /*strict=*/true, "w");
  EXPECT_EQ(net->fc_->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(
      torch::equal(net->fc_->weight, torch::tensor({{0.5f, 1.5f, -2.0f}, {0.25f, 0.0f, 8.0f}})));
}

TEST(StateDictTest, StrictReportsMissingAndUnexpectedNames) {
  TinyNet net;
  auto state = module_state(*TinyNet());
  state.erase("fc.bias");
  state["fc.extra"] = torch::zeros({1});
  state["head.weight"] = torch::full({1, 2}, 3.0f);

  const std::string message = load_error(*net, state, "", /*strict=*/true);
  EXPECT_NE(message.find("weights.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("missing 1 (fc.bias)"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected 1 (fc.extra)"), std::string::npos) << message;
  EXPECT_FALSE(torch::equal(net->head_->weight, torch::full({1, 2}, 3.0f)));  // nothing copied

  const auto report = load_module_state(*net, state, "", /*strict=*/false, "w");
  EXPECT_EQ(report.missing, std::vector<std::string>{"fc.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"fc.extra"});
  EXPECT_TRUE(torch::equal(net->head_->weight, torch::full({1, 2}, 3.0f)));
}

TEST(StateDictTest, StrictListsAtMostTenNames) {
  TinyNet net;
  auto state = module_state(*net, "m.");
  for (int i = 0; i < 15; ++i) state["m.extra" + std::to_string(100 + i)] = torch::zeros({1});
  const std::string message = load_error(*net, state, "m.", /*strict=*/true);
  EXPECT_NE(message.find("unexpected 15"), std::string::npos) << message;
  EXPECT_NE(message.find("m.extra109, ... and 5 more"), std::string::npos) << message;
  EXPECT_EQ(message.find("m.extra110"), std::string::npos) << message;
}

TEST(StateDictTest, ShapeMismatchNamesTheKeyEvenWhenNotStrict) {
  TinyNet net;
  auto state = module_state(*TinyNet(), "model.");
  state["model.fc.weight"] = torch::zeros({2, 4});
  state["model.fc.bias"] = torch::full({2}, 9.0f);
  const std::string message = load_error(*net, state, "model.", /*strict=*/false);
  EXPECT_NE(message.find("weights.safetensors: 'model.fc.weight' has shape [2, 4], the model "
                         "expects [2, 3]"),
            std::string::npos)
      << message;
  EXPECT_FALSE(torch::equal(net->fc_->bias, torch::full({2}, 9.0f)));  // nothing copied
}

TEST(StateDictTest, LoadsAPrefixOfTheParityFixture) {
  const auto file =
      qfae::io::load_safetensors(std::string(QFAE_TEST_FIXTURES) + "/parity_small.safetensors");
  torch::nn::Linear projection(/*in=*/48, /*out=*/32);
  const auto report = load_module_state(*projection, file.tensors, "state.final_projection.",
                                        /*strict=*/true, "parity_small.safetensors");
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(torch::equal(projection->weight, file.tensors.at("state.final_projection.weight")));
  EXPECT_TRUE(torch::equal(projection->bias, file.tensors.at("state.final_projection.bias")));
}
