#include "core/base64.hpp"
