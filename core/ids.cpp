#include "core/ids.hpp"
