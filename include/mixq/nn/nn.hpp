#pragma once
// The nn layer: modules with named parameters/buffers, state dicts, and the
// model file.
#include "mixq/nn/batch_norm2d.hpp"
#include "mixq/nn/conv2d.hpp"
#include "mixq/nn/linear.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/nn/transform.hpp"
