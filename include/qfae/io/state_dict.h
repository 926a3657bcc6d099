// Moving a torch::nn::Module's parameters and buffers to and from a name -> tensor map, the form in
// which safetensors files and checkpoints hold them (dotted names, as PyTorch's state_dict()).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace qfae::io {

// Every parameter and buffer of `m` and its submodules, named "<prefix><dotted.name>", detached
// (sharing memory with the module).
std::map<std::string, torch::Tensor> module_state(const torch::nn::Module& m,
                                                  const std::string& prefix = "");

// Names that did not line up: `missing` are the keys ("<prefix><name>") the module needed but
// `state` lacked; `unexpected` are keys of `state` under `prefix` that the module does not have.
struct LoadReport {
  std::vector<std::string> missing, unexpected;
};

// Copies every entry of `state` whose name starts with `prefix` (prefix stripped) into the module's
// parameter or buffer of that name, converting dtype and device to the module's. Entries outside
// `prefix` are ignored. A shape mismatch is always a qfae::UserError; with `strict`, so are missing
// or unexpected names. `source` (a file name, usually) starts every error message. Nothing is
// copied unless every check passes.
LoadReport load_module_state(torch::nn::Module& m,
                             const std::map<std::string, torch::Tensor>& state,
                             const std::string& prefix, bool strict, const std::string& source);

}  // namespace qfae::io
