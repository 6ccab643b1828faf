#pragma once
// MultiQuant (Xu et al., IJCAI 2022) on mixq's quantization layer: a
// multi-bit weight-sharing supernet, its Lowest-Random-Highest co-training
// with online adaptive labels, slice evaluation with batch-norm
// recalibration, and the Monte Carlo + evolutionary mixed-precision search.
// Design, every formula and default: docs/multiquant.md.
#include "mixq/quant/multiquant/bit_config.hpp"
#include "mixq/quant/multiquant/evolution.hpp"
#include "mixq/quant/multiquant/lrh.hpp"
#include "mixq/quant/multiquant/pareto.hpp"
#include "mixq/quant/multiquant/sampler.hpp"
#include "mixq/quant/multiquant/slice_eval.hpp"
#include "mixq/quant/multiquant/soft_target.hpp"
#include "mixq/quant/multiquant/supernet.hpp"
#include "mixq/quant/multiquant/switchable.hpp"
