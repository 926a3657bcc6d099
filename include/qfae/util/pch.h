// Precompiled header: the heavy third-party headers most translation units need.
#pragma once
#include <torch/torch.h>
#include <torch/script.h>
