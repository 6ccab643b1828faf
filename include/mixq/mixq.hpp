#pragma once
// Umbrella header: everything a user needs to train and run mixq models.
#include "mixq/version.hpp"
#include "mixq/core/error.hpp"
