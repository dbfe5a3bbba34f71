// Text to speech for test audio and the reference server's bot: espeak-ng (the command, from
// Debian's espeak-ng package) speaks the text, and the result comes back as 8 kHz μ-law, the
// audio of a Twilio stream. Results may be cached on disk by text and voice.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::core {

struct SpeakOptions {
    std::string voice = "en-us";      // an espeak-ng voice
    std::filesystem::path cache_dir;  // empty: no cache
};

// Speaks text through espeak-ng → 8 kHz mono μ-law. Errors say what to install or what failed.
Result<std::vector<std::uint8_t>> speak_mulaw(std::string_view text, const SpeakOptions& opts = {});

}  // namespace mediasim::core
