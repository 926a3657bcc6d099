// Parity with the reference implementation: builds the model a fixture file describes, loads its
// weights strictly and checks every output (model and perceptual maths) to 1e-5 relative error.
// The fixture is QFAE_PARITY_FIXTURE when set, else tests/fixtures/parity_small.safetensors.
// QFAE_TEST_DEVICE=cuda runs the model on the GPU: float32 to 1e-4 there. bf16 autocast to 2e-2 on
// the GPU, and on a CPU with bf16 units.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "qfae/io/safetensors.h"
#include "qfae/io/state_dict.h"
#include "qfae/loss/perceptual_maps.h"
#include "qfae/model/autoencoder.h"
#include "qfae/model/pos_embed.h"
#include "qfae/util/cpu_features.h"
#include "qfae/util/torch_compat.h"
#include "../support/test_device.h"

namespace {

constexpr double kTolerance = 1e-5;      // CPU, float32
constexpr double kCudaTolerance = 1e-4;  // CUDA, float32 (other kernels, other summation order)
constexpr double kBf16Tolerance = 2e-2;  // bf16 autocast (CUDA or CPU)

std::string fixture_path() {
  if (const char* env = std::getenv("QFAE_PARITY_FIXTURE"); env && *env) return env;
  return std::string(QFAE_TEST_FIXTURES) + "/parity_small.safetensors";
}

double parity_relative_error(const torch::Tensor& ours, const torch::Tensor& ref) {
  EXPECT_EQ(ours.numel(), ref.numel());
  const auto a = ours.detach().to(torch::kFloat64).reshape(ref.sizes());
  const auto b = ref.to(torch::kFloat64);
  return ((a - b).norm() / b.norm()).item<double>();
}

int64_t count_blocks(const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& prefix) {
  int64_t blocks = 0;
  for (const auto& [name, t] : tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    blocks = std::max<int64_t>(blocks, std::stoll(name.substr(prefix.size())) + 1);
  }
  return blocks;
}

struct Fixture {
  qfae::io::SafetensorsFile file;
  nlohmann::json meta;
  const torch::Tensor& at(const std::string& name) const {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw std::runtime_error("fixture lacks tensor " + name);
    return it->second;
  }
};

Fixture load_fixture() {
  Fixture f;
  f.file = qfae::io::load_safetensors(fixture_path());
  f.meta = nlohmann::json::parse(f.file.metadata.at("qfae_fixture"));
  return f;
}

// Every dimension of the model comes from the fixture: its metadata, and the block count from its
// tensors. The MLP ratio is the reference's one `mlp_ratio` for the Q-Former and the decoder alike
// (`dec_mlp_ratio`, when a fixture has it, for the decoder alone); the attention options keep the
// reference's defaults unless the metadata names them.
qfae::model::AutoencoderOptions options_from(const nlohmann::json& m,
                                             const std::map<std::string, torch::Tensor>& tensors) {
  qfae::model::AutoencoderOptions o;
  o.encoder_dims = {m.at("enc_dim").get<int64_t>()};
  o.qformer.dim = m.at("proj_dim").get<int64_t>();
  o.qformer.queries = m.at("qformer_queries").get<int64_t>();
  o.qformer.depth = count_blocks(tensors, "state.junction.blocks.");
  o.qformer.heads = m.at("qformer_heads").get<int64_t>();
  o.qformer.cross_heads = m.value("qformer_cross_heads", o.qformer.heads);
  o.qformer.cross_head_dim = m.at("qformer_cross_dim_head").get<int64_t>();
  o.qformer.mlp_ratio = m.at("mlp_ratio").get<double>();
  o.qformer.causal = m.value("causal", o.qformer.causal);
  o.qformer.residual = m.value("residual", o.qformer.residual);
  o.qformer.cross_attn_every_block = m.value("cross_attn_every_block",
                                             o.qformer.cross_attn_every_block);
  o.decoder.in_dim = o.qformer.dim;
  o.decoder.dim = m.at("dec_dim").get<int64_t>();
  o.decoder.depth = m.at("dec_depth").get<int64_t>();
  o.decoder.heads = m.at("dec_heads").get<int64_t>();
  o.decoder.mlp_ratio = m.value("dec_mlp_ratio", o.qformer.mlp_ratio);
  o.decoder.grid = m.at("dec_grid").get<int64_t>();
  o.decoder.patch = m.at("dec_patch").get<int64_t>();
  o.decoder.registers = m.at("dec_reg_tokens").get<int64_t>();
  return o;
}

qfae::model::AutoencoderOptions options_from(const Fixture& f) {
  return options_from(f.meta, f.file.tensors);
}

// The fixture's state.* names are the reference's; its lone projection is `final_projection`,
// which real checkpoints (and our model) call `encoders.0.final_projection`.
std::map<std::string, torch::Tensor> model_state(const Fixture& f) {
  std::map<std::string, torch::Tensor> state;
  const std::string prefix = "state.";
  for (const auto& [name, t] : f.file.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto ours = name.substr(prefix.size());
    if (ours.rfind("final_projection.", 0) == 0) ours = "encoders.0." + ours;
    state[ours] = t;
  }
  return state;
}

}  // namespace

TEST(Parity, ModelOutputsMatchTheReference) {
  const auto f = load_fixture();
  const auto device = qfae::test::test_device();
  const double tolerance = device.is_cuda() ? kCudaTolerance : kTolerance;
  std::cout << "[ parity ] fixture " << fixture_path() << " on " << device << ": "
            << f.meta.dump() << "\n";
  qfae::model::QFormerAutoencoder model(options_from(f));
  const auto report =
      qfae::io::load_module_state(*model, model_state(f), "", /*strict=*/true, fixture_path());
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty());
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  if (device.is_cuda()) qfae::compat::set_cuda_tf32(false);

  const auto tokens = f.at("in.tokens").to(device);
  const auto projected = model->project({tokens});
  const auto queries = model->encode(projected);
  const auto x_hat = model->decode(queries);
  ASSERT_EQ(x_hat.sizes(), f.at("out.x_hat").sizes());
  for (const auto& [name, ours] : std::vector<std::pair<std::string, torch::Tensor>>{
           {"out.projected", projected}, {"out.queries", queries}, {"out.x_hat", x_hat}}) {
    const double err = parity_relative_error(ours.cpu(), f.at(name));
    std::cout << "[ parity ] " << name << " relative error " << err << "\n";
    EXPECT_LE(err, tolerance) << name;
  }
  // forward() is the same chain.
  EXPECT_LE(parity_relative_error(model->forward({tokens}).cpu(), f.at("out.x_hat")), tolerance);

  // bf16 autocast where the device has bf16 units (CUDA; AMX or AVX512-BF16 on the CPU).
  if (!device.is_cuda() && !qfae::cpu_bf16_support().supported) return;
  qfae::compat::Bf16Autocast autocast(device.type(), true);
  const double err = parity_relative_error(model->forward({tokens}).cpu(), f.at("out.x_hat"));
  std::cout << "[ parity ] out.x_hat under bf16 autocast relative error " << err << "\n";
  EXPECT_LE(err, kBf16Tolerance) << "bf16 autocast";
}

TEST(Parity, OurSinCosFormulaReproducesTheStoredPositionEmbedding) {
  const auto f = load_fixture();
  const auto& stored = f.at("state.decoder.decoder_pos_embed");  // (1, G*G, D)
  const auto ours = qfae::model::sincos_pos_embed_2d(f.meta.at("dec_dim").get<int64_t>(),
                                                     f.meta.at("dec_grid").get<int64_t>());
  EXPECT_LE((ours - stored[0]).abs().max().item<double>(), 1e-6);
}

TEST(Parity, PerceptualMapsMatchTheReference) {
  const auto f = load_fixture();
  const auto layers = f.meta.at("perc_layers").get<std::vector<int64_t>>();
  const auto scales = f.meta.at("perc_grids").get<std::vector<int64_t>>().size();
  const auto img = f.meta.at("img").get<int64_t>();
  qfae::loss::HiddenStates h_x(scales), h_xhat(scales);
  for (size_t s = 0; s < scales; ++s) {
    for (const auto l : layers) {
      const auto key = ".s" + std::to_string(s) + ".l" + std::to_string(l);
      h_x[s].push_back(f.at("perc.h_x" + key));
      h_xhat[s].push_back(f.at("perc.h_xhat" + key));
    }
  }
  using qfae::loss::Reduction;
  const auto maps = qfae::loss::layer_maps(h_x, h_xhat, img);
  ASSERT_EQ(maps.sizes(), f.at("perc.layer_maps").sizes());
  for (const auto& [name, ours] : std::vector<std::pair<std::string, torch::Tensor>>{
           {"perc.layer_maps", maps},
           {"perc.loss", qfae::loss::perceptual_loss(maps)},
           {"perc.pixel_map", qfae::loss::pixel_map(maps)},
           {"perc.image_score.max_mean",
            qfae::loss::image_scores(maps, Reduction::kMax, Reduction::kMean)},
           {"perc.image_score.mean_max",
            qfae::loss::image_scores(maps, Reduction::kMean, Reduction::kMax)}}) {
    const double err = parity_relative_error(ours, f.at(name));
    std::cout << "[ parity ] " << name << " relative error " << err << "\n";
    EXPECT_LE(err, kTolerance) << name;
  }
}

// A fixture of the same format with another MLP ratio: the decoder's MLPs must be as wide as the
// metadata says (fc1 has ratio x width rows), or such a fixture's weights fail the strict load.
TEST(Parity, TheDecoderFollowsTheFixtureMlpRatio) {
  const auto f = load_fixture();
  auto meta = f.meta;
  meta["mlp_ratio"] = 2.0;
  qfae::model::QFormerAutoencoder model(options_from(meta, f.file.tensors));
  const auto dec_dim = meta.at("dec_dim").get<int64_t>();
  int64_t checked = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    if (name.rfind("decoder.", 0) != 0 || name.find("mlp.fc1.weight") == std::string::npos) {
      continue;
    }
    EXPECT_EQ(item.value().size(0), 2 * dec_dim) << name;
    ++checked;
  }
  EXPECT_EQ(checked, meta.at("dec_depth").get<int64_t>()) << "one MLP per decoder block";
}
