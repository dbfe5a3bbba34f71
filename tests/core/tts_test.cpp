#include "core/tts.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/g711.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::core::speak_mulaw;
using ::testing::HasSubstr;

TEST(Tts, SpeaksTextAsMulawAndCachesIt) {
    const fs::path cache =
        fs::temp_directory_path() / ("mediasim_tts_" + std::to_string(::getpid()));
    fs::remove_all(cache);
    auto a = speak_mulaw("Hello, this is a test.", {"en-us", cache});
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    // About a second and a half of speech at 8000 bytes per second.
    EXPECT_GT(a->size(), 8000u / 2);
    EXPECT_LT(a->size(), 8000u * 5);
    // Not silence: a good share of samples is loud.
    const auto loud = std::count_if(a->begin(), a->end(), [](std::uint8_t c) {
        return std::abs(mediasim::core::ulaw_to_linear(c)) > 1000;
    });
    EXPECT_GT(loud, static_cast<long>(a->size() / 20));
    ASSERT_EQ(std::distance(fs::directory_iterator(cache), fs::directory_iterator()), 1);
    auto b = speak_mulaw("Hello, this is a test.", {"en-us", cache});
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*a, *b);
    fs::remove_all(cache);
}

TEST(Tts, MissingEspeakIsAClearError) {
    const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", "/nonexistent", 1);
    auto r = speak_mulaw("hello", {"en-us", {}});
    ::setenv("PATH", path.c_str(), 1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "cannot run espeak-ng (install it: scripts/setup.sh)");
}

}  // namespace
