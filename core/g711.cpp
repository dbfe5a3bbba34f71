#include "core/g711.hpp"
