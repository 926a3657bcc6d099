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
// meeting float32 weights fails with "expected scalar type BFloat16 but found Float". Its bf16
// kernel is also slow: 46 ms of a frozen ViT-L's 347 ms bf16 forward here, against 4 ms in
// float32 (2.11's bf16 kernel: 3 ms). This rule runs every layer_norm that has a bf16 tensor in
// float32, as CUDA autocast does. The result is float32 for a mixed call (as on CUDA) and bf16
// when everything was bf16 (bf16 frozen networks), so a module keeps its dtype. Calls without
// bf16 go through unchanged. LibTorch 2.x has fast, mixed-dtype CPU kernels and needs none of this.
at::Tensor layer_norm_rule(const at::Tensor& input, at::IntArrayRef normalized_shape,
                           const c10::optional<at::Tensor>& weight,
                           const c10::optional<at::Tensor>& bias, double eps, bool cudnn_enable) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto defined = [](const c10::optional<at::Tensor>& t) {
    return t.has_value() && t->defined();
  };
  const auto is_bf16 = [&](const c10::optional<at::Tensor>& t) {
    return defined(t) && t->scalar_type() == at::kBFloat16;
  };
  const bool input_bf16 = input.scalar_type() == at::kBFloat16;
  if (!input_bf16 && !is_bf16(weight) && !is_bf16(bias)) {
    return at::layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable);
  }
  const bool all_bf16 =
      input_bf16 && (!defined(weight) || is_bf16(weight)) && (!defined(bias) || is_bf16(bias));
  const auto fp32 = [&](const c10::optional<at::Tensor>& t) -> c10::optional<at::Tensor> {
    if (!defined(t)) return t;
    return t->to(at::kFloat);
  };
  auto out = at::layer_norm(input.to(at::kFloat), normalized_shape, fp32(weight), fp32(bias), eps,
                            cudnn_enable);
  return all_bf16 ? out.to(at::kBFloat16) : out;
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
