// Ordered name/value pairs: form bodies, query strings, TwiML <Parameter>s, customParameters.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mediasim::core {
using Parameters = std::vector<std::pair<std::string, std::string>>;
}  // namespace mediasim::core
