#pragma once
// Umbrella header: everything a user needs to train and run mixq models.
//
// Layers, lowest first (each includes only layers listed before it):
//   core      tensors, RNG, threading
//   io        files, archives, data sets, batch loader (core only)
//   autograd  tape, parameters, ops (core)
//   nn        modules, state dicts, the model file (autograd; io/archive.hpp only)
//   optim     SGD, learning-rate schedules (autograd)
//   train     checkpoints, the training loop and its method hooks (all above)
// Not included: io/image.hpp (stb_image, for loaders still to come) and the
// integer kernels (<mixq/kernels/...>).
#include "mixq/version.hpp"
#include "mixq/error.hpp"
// Tensors, RNG, autograd tape and ops (FP32 core).
#include "mixq/core/init.hpp"
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
// Optimization and training.
#include "mixq/optim/schedule.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/train/checkpoint.hpp"
#include "mixq/train/method.hpp"
#include "mixq/train/progress.hpp"
#include "mixq/train/trainer.hpp"
