// Inside src/io only: a tensor shape as io's error messages print it, "[2, 3, 4]".
#pragma once
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace qfae::io {

inline std::string shape_text(c10::ArrayRef<int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace qfae::io
