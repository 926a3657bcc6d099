// The out-of-line part of torch_compat.h: what CPU autocast in LibTorch 1.13 lacks.
#include "qfae/util/torch_compat.h"

#include <mutex>

#if TORCH_VERSION_MAJOR < 2
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#endif

namespace qfae::compat {

#if TORCH_VERSION_MAJOR < 2
namespace {

// LibTorch 1.13's CPU autocast has no rule for layer_norm, and its CPU kernel wants the input and
// the affine weights in one dtype: a bf16 activation (a linear layer's output under autocast)
// meeting float32 weights fails with "expected scalar type BFloat16 but found Float". This rule
// runs such a mixed call in float32, as CUDA autocast runs every layer_norm; a call whose tensors
// agree (bf16 weights on bf16 activations) goes through unchanged. LibTorch 2.x has mixed-dtype
// CPU kernels and needs none of this.
at::Tensor layer_norm_rule(const at::Tensor& input, at::IntArrayRef normalized_shape,
                           const c10::optional<at::Tensor>& weight,
                           const c10::optional<at::Tensor>& bias, double eps, bool cudnn_enable) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto dtype = input.scalar_type();
  const auto differs = [&](const c10::optional<at::Tensor>& t) {
    return t.has_value() && t->defined() && t->scalar_type() != dtype;
  };
  if (!differs(weight) && !differs(bias)) {
    return at::layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable);
  }
  const auto fp32 = [](const c10::optional<at::Tensor>& t) -> c10::optional<at::Tensor> {
    if (!t.has_value() || !t->defined()) return t;
    return t->to(at::kFloat);
  };
  return at::layer_norm(input.to(at::kFloat), normalized_shape, fp32(weight), fp32(bias), eps,
                        cudnn_enable);
}

}  // namespace
#endif

void prepare_cpu_autocast() {
#if TORCH_VERSION_MAJOR < 2
  static std::once_flag once;
  std::call_once(once, [] {
    // Registered on first use rather than by a static initialiser, which the linker would drop
    // from the static library. Lives for the whole process, as the dispatcher expects.
    static auto* library = new torch::Library(torch::Library::IMPL, "aten",
                                              c10::DispatchKey::AutocastCPU, __FILE__, __LINE__);
    library->impl("layer_norm", TORCH_FN(layer_norm_rule));
  });
#endif
}

}  // namespace qfae::compat
