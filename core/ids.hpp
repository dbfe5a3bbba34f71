// Twilio-style identifiers: a two-letter prefix and 32 lowercase hex digits (CA…, AC…, MZ…).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace mediasim::core {

class SidGenerator {
  public:
    explicit SidGenerator(std::uint64_t seed = std::random_device{}());
    std::string next(std::string_view prefix);  // e.g. next("CA")

  private:
    std::mt19937_64 rng_;
};

bool is_valid_sid(std::string_view sid, std::string_view prefix);

}  // namespace mediasim::core
