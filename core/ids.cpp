#include "core/ids.hpp"

#include <array>
#include <cstddef>

namespace mediasim::core {

namespace {

constexpr std::size_t kSidHexDigits = 32;  // 128 bits, as in Twilio's SIDs
constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                       '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

void append_hex64(std::uint64_t v, std::string& out) {
    for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xF];
}

bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

}  // namespace

SidGenerator::SidGenerator(std::uint64_t seed) : rng_(seed) {}

std::string SidGenerator::next(std::string_view prefix) {
    std::string sid;
    sid.reserve(prefix.size() + kSidHexDigits);
    sid.append(prefix);
    // Two full 64-bit draws give the 128 bits; each draw fills 16 hex digits.
    append_hex64(rng_(), sid);
    append_hex64(rng_(), sid);
    return sid;
}

bool is_valid_sid(std::string_view sid, std::string_view prefix) {
    if (prefix.empty() || sid.size() != prefix.size() + kSidHexDigits) return false;
    if (sid.substr(0, prefix.size()) != prefix) return false;
    for (char c : sid.substr(prefix.size())) {
        if (!is_lower_hex(c)) return false;
    }
    return true;
}

}  // namespace mediasim::core
