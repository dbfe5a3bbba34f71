#include "core/resample.hpp"
