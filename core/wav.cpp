#include "core/wav.hpp"
