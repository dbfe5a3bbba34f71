#include "simulator/commands.hpp"

#include <cstdio>

namespace mediasim::sim {
int cmd_convert(Args) {
    std::fprintf(stderr, "mediasim convert: not built yet\n");
    return 2;
}
}  // namespace mediasim::sim
