#pragma once
// The autograd layer: tape, parameter, all ops, backward, gradcheck.
#include "mixq/autograd/backward.hpp"
#include "mixq/autograd/gradcheck.hpp"
#include "mixq/autograd/parameter.hpp"
#include "mixq/autograd/tape.hpp"
