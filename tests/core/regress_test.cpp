// Replays the fuzz seed corpora (fuzz/corpus/<target>/) and the kept crash inputs
// (tests/regress/<target>/) through the fuzz targets' own check functions.
#include "fuzz/fuzz_entries.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace mediasim::fuzz {
namespace {

using Check = std::string (*)(std::span<const std::uint8_t>);

std::vector<fs::path> inputs(const std::string& target) {
    std::vector<fs::path> out;
    for (const auto* dir : {"fuzz/corpus/", "tests/regress/"}) {
        const fs::path d = fs::path(MEDIASIM_SOURCE_DIR) / dir / target;
        if (!fs::is_directory(d)) continue;
        for (const auto& e : fs::directory_iterator(d)) {
            if (e.is_regular_file() && e.path().filename().string()[0] != '.' &&
                e.path().filename() != "README.md")
                out.push_back(e.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void replay(const std::string& target, Check check, std::size_t min_inputs) {
    const auto files = inputs(target);
    EXPECT_GE(files.size(), min_inputs) << "seed corpus of " << target << " is missing";
    for (const auto& f : files) {
        const auto bytes = read_bytes(f);
        EXPECT_EQ(check(bytes), "") << f;
    }
}

TEST(Regress, Protocol) {
    replay("fuzz_protocol", check_protocol, 10);
}
TEST(Regress, Base64) {
    replay("fuzz_base64", check_base64, 5);
}
TEST(Regress, Wav) {
    replay("fuzz_wav", check_wav, 5);
}

// Input that is merely invalid passes: rejecting bad input with a diagnostic is correct.
TEST(Regress, InvalidInputsAreNotFailures) {
    const std::string junk = "{\"event\":\"media\",\x01";
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(junk.data()),
                                              junk.size());
    EXPECT_EQ(check_protocol(bytes), "");
    EXPECT_EQ(check_base64(bytes), "");
    EXPECT_EQ(check_wav(bytes), "");
}

}  // namespace
}  // namespace mediasim::fuzz
