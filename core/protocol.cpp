#include "core/protocol.hpp"
