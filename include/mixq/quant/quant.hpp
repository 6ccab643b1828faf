#pragma once
// The quantization layer: fake quantizers as tape ops installed on nn's
// hooks, their integer grids and export lowering, the quantized ResNet, and
// AdaQAT's learned bit-widths. Sits on nn and autograd; neither knows of bits.
// Design and every formula: docs/quantization.md.
#include "mixq/quant/adaqat.hpp"
#include "mixq/quant/bits.hpp"
#include "mixq/quant/config.hpp"
#include "mixq/quant/dorefa.hpp"
#include "mixq/quant/input_quant.hpp"
#include "mixq/quant/int_conv.hpp"
#include "mixq/quant/lower.hpp"
#include "mixq/quant/lsq.hpp"
#include "mixq/quant/pact.hpp"
#include "mixq/quant/qnet.hpp"
#include "mixq/quant/quantizer.hpp"
#include "mixq/quant/report.hpp"
#include "mixq/quant/resnet.hpp"
#include "mixq/quant/train_step.hpp"
