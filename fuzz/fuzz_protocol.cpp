// libFuzzer target: see check_protocol in fuzz_entries.hpp for the properties checked.
#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto problem = mediasim::fuzz::check_protocol({data, size});
    if (!problem.empty()) {
        std::fprintf(stderr, "fuzz_protocol: %s\n", problem.c_str());
        std::abort();
    }
    return 0;
}
