#include "core/histogram.hpp"
