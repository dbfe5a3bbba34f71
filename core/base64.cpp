#include "core/base64.hpp"

#include <array>
#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace mediasim::core {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Encoding: one lookup per 12 bits gives two characters (8 KiB table), stored as the 16-bit
// value whose in-memory bytes are those characters in order, so a group is one 4-byte store.
constexpr auto kEncodePairs = [] {
    std::array<std::uint16_t, 4096> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
        const auto first = static_cast<std::uint16_t>(kAlphabet[i >> 6]);
        const auto second = static_cast<std::uint16_t>(kAlphabet[i & 63]);
        t[i] = std::endian::native == std::endian::little
                   ? static_cast<std::uint16_t>(first | (second << 8))
                   : static_cast<std::uint16_t>((first << 8) | second);
    }
    return t;
}();

// Decoding: four tables, one per place in a group of four characters, hold each character's 6
// bits already moved to where they land in the 3 decoded bytes, so a group is four lookups ORed
// together. The bytes sit in a 32-bit word in memory order (byte k of the output is byte k of the
// word as stored), so the word can be stored with one memcpy. Anything outside the alphabet
// (including '=') maps to kInvalid, whose bits in the unused fourth byte survive the OR and flag
// the group.
constexpr bool kLittle = std::endian::native == std::endian::little;
constexpr std::uint32_t kInvalid = kLittle ? 0xFF000000u : 0x000000FFu;

// The 24 bits of a group, as big-endian bits 31..8, moved to memory order.
constexpr std::uint32_t to_memory_order(std::uint32_t bits24) {
    if constexpr (kLittle) {
        return ((bits24 >> 16) & 0xFF) | (bits24 & 0xFF00) | ((bits24 & 0xFF) << 16);
    } else {
        return bits24 << 8;
    }
}

constexpr std::array<std::uint32_t, 256> decode_table(int shift) {
    std::array<std::uint32_t, 256> t{};
    for (auto& v : t) v = kInvalid;
    for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
        t[static_cast<unsigned char>(kAlphabet[i])] =
            to_memory_order(static_cast<std::uint32_t>(i) << shift);
    }
    return t;
}
constexpr auto kDec0 = decode_table(18);
constexpr auto kDec1 = decode_table(12);
constexpr auto kDec2 = decode_table(6);
constexpr auto kDec3 = decode_table(0);

// Byte k (0..2) of a decoded group.
constexpr std::uint8_t group_byte(std::uint32_t word, int k) {
    return static_cast<std::uint8_t>(kLittle ? word >> (8 * k) : word >> (24 - 8 * k));
}

bool in_alphabet(char c) {
    return kDec3[static_cast<unsigned char>(c)] != kInvalid;
}

std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return fmt::format("'{}'", c);
    return fmt::format("0x{:02X}", u);
}

// The first problem in the group of four characters at `start`, which is known to hold one.
// `last` says whether this is the final group, where '=' may fill the last one or two places.
Diagnostic group_error(std::string_view in, std::size_t start, bool last) {
    for (std::size_t k = 0; k < 4; ++k) {
        const std::size_t pos = start + k;
        const char c = in[pos];
        if (in_alphabet(c)) {
            if (k == 3 && in[pos - 1] == '=') {
                return make_error(fmt::format("base64 data after padding at position {}", pos));
            }
            continue;
        }
        if (c != '=') {
            return make_error(
                fmt::format("invalid base64 character {} at position {}", describe(c), pos));
        }
        if (!last) {
            return make_error(fmt::format(
                "base64 padding '=' at position {} is not at the end of the data", pos));
        }
        if (k < 2) {
            return make_error(fmt::format(
                "base64 padding '=' at position {}: padding may only fill the last 2 characters",
                pos));
        }
    }
    // Not reached for a group that holds a problem; kept so that every path returns.
    return make_error(fmt::format("invalid base64 group at position {}", start));
}

}  // namespace

std::size_t base64_encode(std::span<const std::uint8_t> in, char* out) {
    const std::uint8_t* p = in.data();
    const std::size_t n = in.size();
    char* o = out;
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t v =
            (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
        const std::uint16_t pairs[2] = {kEncodePairs[v >> 12], kEncodePairs[v & 0xFFF]};
        std::memcpy(o, pairs, 4);
        o += 4;
    }
    if (n - i == 1) {
        const std::uint32_t v = std::uint32_t{p[i]} << 16;
        o[0] = kAlphabet[v >> 18];
        o[1] = kAlphabet[(v >> 12) & 63];
        o[2] = '=';
        o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
        o[0] = kAlphabet[v >> 18];
        o[1] = kAlphabet[(v >> 12) & 63];
        o[2] = kAlphabet[(v >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    return static_cast<std::size_t>(o - out);
}

void base64_encode_append(std::span<const std::uint8_t> in, std::string& out) {
    const std::size_t old = out.size();
    out.resize(old + base64_encoded_size(in.size()));
    base64_encode(in, out.data() + old);
}

std::string base64_encode(std::span<const std::uint8_t> in) {
    std::string out(base64_encoded_size(in.size()), '\0');
    base64_encode(in, out.data());
    return out;
}

Result<std::size_t> base64_decode(std::string_view in, std::uint8_t* out) {
    const std::size_t n = in.size();
    if (n == 0) return std::size_t{0};
    if (n % 4 != 0) {
        // A bad character is the more useful report when there is one.
        for (std::size_t pos = 0; pos < n; ++pos) {
            if (!in_alphabet(in[pos]) && in[pos] != '=') {
                return make_error(fmt::format("invalid base64 character {} at position {}",
                                              describe(in[pos]), pos));
            }
        }
        return make_error(fmt::format("base64 length {} is not a multiple of 4", n));
    }
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    std::uint8_t* o = out;
    const std::size_t body = n - 4;  // every group but the last, which may hold padding
    for (std::size_t i = 0; i < body; i += 4) {
        const std::uint32_t v = kDec0[s[i]] | kDec1[s[i + 1]] | kDec2[s[i + 2]] | kDec3[s[i + 3]];
        if ((v & kInvalid) != 0) return group_error(in, i, false);
        // Four bytes stored, three kept: the fourth is overwritten by the next group, and there
        // always is one (the last group is decoded below), so this stays inside the buffer.
        std::memcpy(o, &v, 4);
        o += 3;
    }
    // Last group: "xxxx", "xxx=" or "xx==". Non-zero bits left over in the last character before
    // the padding are ignored, as Python's base64.b64decode(..., validate=True) does ("QR==" gives
    // b"A", like "QQ==").
    const unsigned char* g = s + body;
    std::size_t data_chars = 4;
    if (g[3] == '=') data_chars = g[2] == '=' ? 2 : 3;
    std::uint32_t v = kDec0[g[0]] | kDec1[g[1]];
    if (data_chars >= 3) v |= kDec2[g[2]];
    if (data_chars == 4) v |= kDec3[g[3]];
    if ((v & kInvalid) != 0) return group_error(in, body, true);
    o[0] = group_byte(v, 0);
    if (data_chars >= 3) o[1] = group_byte(v, 1);
    if (data_chars == 4) o[2] = group_byte(v, 2);
    o += data_chars - 1;
    return static_cast<std::size_t>(o - out);
}

}  // namespace mediasim::core
