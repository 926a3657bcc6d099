// module_state / load_module_state: a module's parameters and buffers as a name -> tensor map.
#include "qfae/io/state_dict.h"

#include <utility>

#include "qfae/util/error.h"
#include "shape_text.h"

namespace qfae::io {
namespace {

constexpr size_t kMaxListed = 10;

// "a, b, c" for the first kMaxListed names, then "... and N more".
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListed; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kMaxListed) {
    out += ", ... and " + std::to_string(names.size() - kMaxListed) + " more";
  }
  return out;
}

// The module's own tensors by dotted name; parameters and buffers share one namespace.
std::map<std::string, torch::Tensor> module_tensors(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : m.named_parameters(/*recurse=*/true)) out[item.key()] = item.value();
  for (const auto& item : m.named_buffers(/*recurse=*/true)) out[item.key()] = item.value();
  return out;
}

}  // namespace

std::map<std::string, torch::Tensor> module_state(const torch::nn::Module& m,
                                                  const std::string& prefix) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& [name, tensor] : module_tensors(m)) state[prefix + name] = tensor.detach();
  return state;
}

LoadReport load_module_state(torch::nn::Module& m,
                             const std::map<std::string, torch::Tensor>& state,
                             const std::string& prefix, bool strict, const std::string& source) {
  const auto targets = module_tensors(m);
  LoadReport report;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (module tensor, source tensor)
  std::map<std::string, bool> found;

  for (const auto& [key, value] : state) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = key.substr(prefix.size());
    const auto target = targets.find(name);
    if (target == targets.end()) {
      report.unexpected.push_back(key);
      continue;
    }
    if (!value.defined()) throw UserError(source + ": '" + key + "' holds no tensor");
    if (value.sizes() != target->second.sizes()) {
      throw UserError(source + ": '" + key + "' has shape " + shape_text(value.sizes()) +
                      ", the model expects " + shape_text(target->second.sizes()));
    }
    found[name] = true;
    copies.emplace_back(target->second, value);
  }
  for (const auto& [name, tensor] : targets) {
    if (!found.count(name)) report.missing.push_back(prefix + name);
  }

  if (strict && (!report.missing.empty() || !report.unexpected.empty())) {
    std::string message = source + ": weights do not match the model";
    if (!report.missing.empty()) {
      message += "; missing " + std::to_string(report.missing.size()) + " (" +
                 name_list(report.missing) + ")";
    }
    if (!report.unexpected.empty()) {
      message += "; unexpected " + std::to_string(report.unexpected.size()) + " (" +
                 name_list(report.unexpected) + ")";
    }
    throw UserError(message);
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, value] : copies) target.copy_(value);  // converts dtype and device
  return report;
}

}  // namespace qfae::io
