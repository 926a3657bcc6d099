// Loading, checking and running the frozen TorchScript ViT backbones (contract in
// scripts/lib/qfae_vit.py): description checks, tap resolution, frozen forward (qfae.json itself is
// read by description.cpp).
#include "qfae/backbone/torchscript_backbone.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::backbone {
namespace {

std::string join(const std::vector<int64_t>& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  return out.str();
}

// The line of a TorchScript interpreter error that says what failed ("RuntimeError: ..."; the
// first line only says that something did).
std::string interpreter_message(const std::string& what) {
  std::istringstream lines(what);
  std::string line, last;
  while (std::getline(lines, line)) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (line.rfind("RuntimeError: ", 0) == 0) return line.substr(14);
    last = line;
  }
  return last.empty() ? first_line(what) : last;
}

}  // namespace

TorchScriptBackbone::TorchScriptBackbone(const std::string& path, torch::Device device)
    : path_(path), description_(read_description(path)), device_(device) {
  try {
    module_ = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    throw UserError(path + ": not a TorchScript file (" + first_line(e.what_without_backtrace()) +
                    ")");
  } catch (const std::exception& e) {
    throw UserError(path + ": not a TorchScript file (" + first_line(e.what()) + ")");
  }
  if (!module_.find_method("forward")) throw UserError(path + ": the module has no forward()");
  freeze();
  const auto& d = description_;
  log("backbone")
      ->info("{}: {} at {} px, patch sizes [{}], {} of {} blocks, width {}", path, d.model,
             d.image_size, join(d.patch_sizes), d.blocks, d.depth, d.width);
}

void TorchScriptBackbone::freeze() {
  module_.eval();
  for (auto parameter : module_.parameters()) parameter.requires_grad_(false);
}

void TorchScriptBackbone::require_model(const std::string& model) const {
  if (model.empty() || model == description_.model) return;
  throw UserError(path_ + " holds model '" + description_.model + "', not '" + model + "'");
}

void TorchScriptBackbone::require_image_size(int64_t image_size) const {
  if (image_size == 0 || image_size == description_.image_size) return;
  throw UserError(path_ + " was exported for image size " +
                  std::to_string(description_.image_size) + ", not " + std::to_string(image_size));
}

void TorchScriptBackbone::require_width(int64_t width) const {
  if (width == 0 || width == description_.width) return;
  throw UserError(path_ + " has width " + std::to_string(description_.width) + ", not " +
                  std::to_string(width));
}

void TorchScriptBackbone::require_patch_sizes(const std::vector<int64_t>& patch_sizes) const {
  const auto& offered = description_.patch_sizes;
  for (const auto p : patch_sizes) {
    if (std::find(offered.begin(), offered.end(), p) == offered.end()) {
      throw UserError(path_ + " offers patch sizes [" + join(offered) + "], not " +
                      std::to_string(p) + " (re-export with --patch-size)");
    }
  }
}

std::string TorchScriptBackbone::resolve_tap(int tap, int64_t* resolved) const {
  const auto& d = description_;
  const int64_t index = tap < 0 ? d.depth + tap : tap;
  if (index < 0 || index >= d.depth) {
    return "tap " + std::to_string(tap) + " is outside the model's " + std::to_string(d.depth) +
           " blocks (expected " + std::to_string(-d.depth) + " to " + std::to_string(d.depth - 1) +
           ")";
  }
  if (index >= d.blocks) {
    return "tap " + std::to_string(tap) + " needs block " + std::to_string(index) +
           " but the file holds only the first " + std::to_string(d.blocks) + " of " +
           std::to_string(d.depth) + " blocks (re-export with --blocks " +
           std::to_string(index + 1) + " or more)";
  }
  *resolved = index;
  return "";
}

std::vector<int64_t> TorchScriptBackbone::resolve_taps(const std::vector<int>& taps) const {
  if (taps.empty()) throw UserError(path_ + ": no taps given");
  std::vector<int64_t> resolved(taps.size());
  for (size_t i = 0; i < taps.size(); ++i) {
    const auto why = resolve_tap(taps[i], &resolved[i]);
    if (!why.empty()) throw UserError(path_ + ": " + why);
  }
  return resolved;
}

int64_t TorchScriptBackbone::grid(int64_t patch_size) const {
  const auto& d = description_;
  if (patch_size == 0) return d.grids.front();
  const auto it = std::find(d.patch_sizes.begin(), d.patch_sizes.end(), patch_size);
  if (it == d.patch_sizes.end()) {
    throw UserError(path_ + ": no patch size " + std::to_string(patch_size) +
                    " (exported: " + join(d.patch_sizes) + ")");
  }
  return d.grids[it - d.patch_sizes.begin()];
}

c10::List<torch::Tensor> TorchScriptBackbone::run_module(std::vector<torch::jit::IValue>& inputs,
                                                         bool with_grad) {
  try {
    std::optional<torch::NoGradGuard> no_grad;
    if (!with_grad) no_grad.emplace();
    return module_.forward(inputs).toTensorList();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // Running out of memory is not the file's fault; anything else the interpreter raises
    // (c10::Error, or the runtime_error it wraps them in) on inputs that follow qfae.json means
    // the file's weights or code do not match its qfae.json.
    const std::string what = e.what();
    if (what.find("out of memory") != std::string::npos ||
        what.find("can't allocate memory") != std::string::npos) {
      throw;
    }
    throw UserError(path_ + ": the TorchScript module fails on the input its qfae.json describes ("
                    + interpreter_message(what) + "); re-export it with "
                    "scripts/export_backbone.py");
  }
}

std::vector<torch::Tensor> TorchScriptBackbone::forward(const torch::Tensor& images,
                                                        const std::vector<int>& taps,
                                                        int64_t patch_size) {
  const auto& d = description_;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == d.image_size &&
                  images.size(3) == d.image_size,
              "TorchScriptBackbone::forward: expected images (B, 3, ", d.image_size, ", ",
              d.image_size, ") for ", path_, ", got ", images.sizes());
  const int64_t g = grid(patch_size);
  const int64_t size = patch_size == 0 ? d.patch_sizes.front() : patch_size;
  c10::List<int64_t> resolved;
  for (const auto index : resolve_taps(taps)) resolved.push_back(index);

  std::vector<torch::jit::IValue> inputs{images.to(device_, dtype_), resolved, size};
  const auto list = run_module(inputs, images.requires_grad());
  if (list.size() != taps.size()) {
    throw UserError(path_ + ": forward returned " + std::to_string(list.size()) + " tensors for " +
                    std::to_string(taps.size()) + " taps: the module does not match its qfae.json");
  }
  std::vector<torch::Tensor> outputs;
  outputs.reserve(list.size());
  const std::vector<int64_t> expected{images.size(0), d.num_prefix + g * g, d.width};
  for (size_t i = 0; i < list.size(); ++i) {
    torch::Tensor out = list.get(i);
    if (out.scalar_type() == torch::kBFloat16 || out.scalar_type() == torch::kFloat16) {
      out = out.to(torch::kFloat32);  // reduced-precision weights: float32 from here on
    }
    if (out.sizes() != torch::IntArrayRef(expected)) {
      std::ostringstream msg;
      msg << path_ << ": block output " << i << " has shape " << out.sizes()
          << ", its qfae.json promises " << torch::IntArrayRef(expected)
          << ": the module does not match its qfae.json";
      throw UserError(msg.str());
    }
    outputs.push_back(std::move(out));  // (B, P + g*g, D)
  }
  return outputs;
}

void TorchScriptBackbone::to(torch::Device device, torch::Dtype dtype) {
  // Leaving float32 the first time: keep the weights as loaded on the host, so that coming back to
  // float32 (validation or eval after bf16 training) restores them exactly instead of widening the
  // bf16-rounded values.
  const auto weights = [this] {
    std::vector<torch::Tensor> out;
    for (const auto& t : module_.parameters()) out.push_back(t);
    for (const auto& t : module_.buffers()) out.push_back(t);
    return out;
  };
  if (dtype_ == torch::kFloat32 && dtype != torch::kFloat32 && as_loaded_.empty()) {
    for (const auto& t : weights()) as_loaded_.push_back(t.detach().to(torch::kCPU).clone());
  }
  module_.to(device, dtype);
  if (dtype == torch::kFloat32 && !as_loaded_.empty()) {
    torch::NoGradGuard no_grad;
    const auto now = weights();
    for (size_t i = 0; i < now.size(); ++i) now[i].copy_(as_loaded_[i]);
  }
  device_ = device;
  dtype_ = dtype;
  freeze();
}

int64_t TorchScriptBackbone::num_parameters() const {
  int64_t total = 0;
  for (const auto& parameter : module_.parameters()) total += parameter.numel();
  return total;
}

std::vector<torch::Tensor> TorchScriptBackbone::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& parameter : module_.parameters()) out.push_back(parameter);
  return out;
}

}  // namespace qfae::backbone
