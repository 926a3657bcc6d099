// Reading and writing the safetensors format (8-byte little-endian header length, a JSON header,
// raw little-endian tensor data), with our own small parser: no third-party safetensors library.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace qfae::io {

// What a safetensors file holds: named tensors (CPU, contiguous, owning their memory) and the
// free-form string metadata of its "__metadata__" header entry.
struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads a whole file. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
// Throws qfae::UserError naming the file and the problem for an unreadable or malformed file.
SafetensorsFile load_safetensors(const std::string& path);

// Writes tensors (moved to CPU, made contiguous) in sorted name order, the header padded with
// spaces to a multiple of 8 bytes. The file is written to "<path>.tmp" and then renamed, so a crash
// never leaves half a file at `path`. Throws qfae::UserError when the file cannot be written and
// std::invalid_argument for a tensor that cannot be stored (undefined, unsupported dtype).
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace qfae::io
