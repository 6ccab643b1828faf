#pragma once
// Umbrella header: everything a user needs to train and run mixq models.
#include "mixq/version.hpp"
#include "mixq/error.hpp"
// Tensors, RNG, autograd tape and ops (FP32 core).
#include "mixq/core/rng.hpp"
#include "mixq/core/tensor.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"
// Data and file I/O (no dependency on tensors).
#include "mixq/io/archive.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/io/data_dir.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/io/fashion_mnist.hpp"
#include "mixq/io/file.hpp"
#include "mixq/io/image.hpp"
#include "mixq/io/rng.hpp"
