#include "core/signature.hpp"
