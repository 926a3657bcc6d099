// The few lines that differ between LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (CUDA builds).
#pragma once
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
// Caching-allocator statistics through the device-generic API (LibTorch >= 2.9: declared in
// ATen/DeviceAccelerator.h, later in ATen/accelerator/Allocator.h); define
// QFAE_NO_ACCELERATOR_STATS to build without it (peak memory then reads "not available").
#if !defined(QFAE_NO_ACCELERATOR_STATS) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#if __has_include(<ATen/accelerator/Allocator.h>)
#include <ATen/accelerator/Allocator.h>
#else
#include <ATen/DeviceAccelerator.h>
#endif
#define QFAE_HAS_ACCELERATOR_STATS 1
#endif

#include <cstdint>
#include <optional>

namespace qfae::compat {

// softmax(q k^T * scale + mask) v for (B, H, Lq, d) inputs; the fused kernel where LibTorch has it.
// attn_mask: additive float mask or boolean (true = keep), broadcastable to (B, H, Lq, Lk).
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const std::optional<torch::Tensor>& attn_mask,
                                                  bool is_causal, double scale) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0, is_causal, scale);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, Lq, Lk)
  if (is_causal) {
    const auto lq = q.size(-2), lk = k.size(-2);
    auto keep = torch::ones({lq, lk}, q.options().dtype(torch::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (attn_mask) {
    if (attn_mask->scalar_type() == torch::kBool) {
      scores =
          scores.masked_fill(attn_mask->logical_not(), -std::numeric_limits<float>::infinity());
    } else {
      scores = scores + *attn_mask;
    }
  }
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

// bf16 autocast on `device` (CUDA or CPU) for the scope of the guard (forward and loss; backward
// runs outside). A no-op when disabled or on another device type. Nests: the state before the
// guard (enabled or not, and its dtype) comes back at its end.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define QFAE_AUTOCAST_BY_DEVICE 1
#endif

// Whether autocast is on for `device` in this thread (a recomputation in backward must match).
inline bool autocast_enabled(torch::DeviceType device) {
#ifdef QFAE_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == torch::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

// Completes LibTorch's CPU autocast where this version lacks a rule qfae's models need (1.13:
// layer_norm on mixed dtypes); a no-op elsewhere. Bf16Autocast calls it.
void prepare_cpu_autocast();

class Bf16Autocast {
 public:
  Bf16Autocast(torch::DeviceType device, bool enable)
      : device_(device), enabled_(enable && (device == torch::kCUDA || device == torch::kCPU)) {
    if (!enabled_) return;
    if (device_ == torch::kCPU) prepare_cpu_autocast();
    was_enabled_ = autocast_enabled(device_);
    was_dtype_ = dtype();
    set(true, at::kBFloat16);
  }
  ~Bf16Autocast() {
    if (!enabled_) return;
    set(was_enabled_, was_dtype_);
    if (!was_enabled_) at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  at::ScalarType dtype() const {
#ifdef QFAE_AUTOCAST_BY_DEVICE
    return at::autocast::get_autocast_dtype(device_);
#else
    return device_ == torch::kCPU ? at::autocast::get_autocast_cpu_dtype()
                                  : at::autocast::get_autocast_gpu_dtype();
#endif
  }
  void set(bool enabled, at::ScalarType dtype) const {
#ifdef QFAE_AUTOCAST_BY_DEVICE
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::set_autocast_enabled(device_, enabled);
#else
    if (device_ == torch::kCPU) {
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(enabled);
    } else {
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(enabled);
    }
#endif
  }

  torch::DeviceType device_;
  bool enabled_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kHalf;
};

// TF32 for float32 matrix products and convolutions on CUDA: the state PrecisionScope saves, sets
// and restores. No effect on CPU computation. LibTorch >= 2.10 has the fp32_precision API; its
// legacy allow_tf32 setters are deprecated (a warning each call) and may not be mixed with it.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 10)
#define QFAE_FP32_PRECISION_API 1
struct CudaTf32State {
  at::Float32Precision matmul = at::Float32Precision::NONE;
  at::Float32Precision conv = at::Float32Precision::NONE;
};
inline CudaTf32State cuda_tf32_state() {
  const auto& c = at::globalContext();
  return {c.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL),
          c.float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV)};
}
inline void set_cuda_tf32_state(const CudaTf32State& s) {
  auto& c = at::globalContext();
  c.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, s.matmul);
  c.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV, s.conv);
}
inline void set_cuda_tf32(bool enable) {
  const auto p = enable ? at::Float32Precision::TF32 : at::Float32Precision::IEEE;
  set_cuda_tf32_state({p, p});
}
// Whether float32 matrix products on CUDA may use TF32 now.
inline bool cuda_matmul_tf32() { return cuda_tf32_state().matmul == at::Float32Precision::TF32; }
#else
struct CudaTf32State {
  bool matmul = false;
  bool conv = true;
};
inline CudaTf32State cuda_tf32_state() {
  const auto& c = at::globalContext();
  return {c.allowTF32CuBLAS(), c.allowTF32CuDNN()};
}
inline void set_cuda_tf32_state(const CudaTf32State& s) {
  auto& c = at::globalContext();
  c.setAllowTF32CuBLAS(s.matmul);
  c.setAllowTF32CuDNN(s.conv);
}
inline void set_cuda_tf32(bool enable) { set_cuda_tf32_state({enable, enable}); }
inline bool cuda_matmul_tf32() { return at::globalContext().allowTF32CuBLAS(); }
#endif

// Waits for the device's queued work (CUDA); nothing to wait for on the CPU.
inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

// Peaks of the CUDA caching allocator since the last reset_peak_memory, in bytes.
struct DeviceMemoryPeak {
  int64_t allocated = 0;  // live tensors (torch.cuda.max_memory_allocated)
  int64_t reserved = 0;   // held by the caching allocator (torch.cuda.max_memory_reserved)
};

inline void reset_peak_memory(const torch::Device& device) {
#ifdef QFAE_HAS_ACCELERATOR_STATS
  if (device.is_cuda()) {
    at::accelerator::resetPeakStats(device.has_index() ? device.index() : 0);
  }
#endif
}

// nullopt on the CPU, or where this LibTorch lacks the statistics API.
inline std::optional<DeviceMemoryPeak> peak_memory(const torch::Device& device) {
#ifdef QFAE_HAS_ACCELERATOR_STATS
  if (device.is_cuda()) {
    const auto stats = at::accelerator::getDeviceStats(device.has_index() ? device.index() : 0);
    // Index 0 is StatType::AGGREGATE (all pools); the enum's namespace moved between versions.
    return DeviceMemoryPeak{static_cast<int64_t>(stats.allocated_bytes[0].peak),
                            static_cast<int64_t>(stats.reserved_bytes[0].peak)};
  }
#endif
  return std::nullopt;
}

}  // namespace qfae::compat
