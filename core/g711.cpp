#include "core/g711.hpp"

#include <array>
#include <bit>

namespace mediasim::core {
namespace {

// The scalar algorithms below follow CPython's audioop (Modules/audioop.c, itself from the Sun
// G.711 code): μ-law works on the sample shifted right by 2 (14 bits), A-law on the sample
// shifted right by 3 (13 bits). They run only at compile time, to fill the tables.
constexpr int kUlawBias = 0x84;
constexpr int kUlawClip = 8159;

// The segment (exponent) of a magnitude: the smallest i with value < ((first_end + 1) << i), or
// 8 when out of range. audioop searches a table of segment ends; this is the same result in a few
// operations, which keeps the compile-time table builds within Clang's constexpr step limit.
constexpr int segment(int value, int first_end) {
    return std::bit_width(static_cast<unsigned>(value) / static_cast<unsigned>(first_end + 1));
}

constexpr std::uint8_t ulaw_from_14bit(int pcm) {
    int mask = 0xFF;
    if (pcm < 0) {
        // audioop negates without subtracting 1: this is why it never emits 0x7F (-0) and why
        // it differs from ITU G.191 on some negative inputs.
        pcm = -pcm;
        mask = 0x7F;
    }
    if (pcm > kUlawClip) pcm = kUlawClip;
    pcm += kUlawBias >> 2;
    const int seg = segment(pcm, 0x3F);  // segment ends 0x3F, 0x7F, ... 0x1FFF
    if (seg >= 8) return static_cast<std::uint8_t>(0x7F ^ mask);
    const int code = (seg << 4) | ((pcm >> (seg + 1)) & 0xF);
    return static_cast<std::uint8_t>(code ^ mask);
}

constexpr std::uint8_t alaw_from_13bit(int pcm) {
    int mask = 0xD5;
    if (pcm < 0) {
        mask = 0x55;
        pcm = -pcm - 1;
    }
    const int seg = segment(pcm, 0x1F);  // segment ends 0x1F, 0x3F, ... 0xFFF
    if (seg >= 8) return static_cast<std::uint8_t>(0x7F ^ mask);
    int code = seg << 4;
    code |= (seg < 2 ? (pcm >> 1) : (pcm >> seg)) & 0xF;
    return static_cast<std::uint8_t>(code ^ mask);
}

constexpr std::int16_t ulaw_decode_scalar(std::uint8_t code) {
    const int u = ~code & 0xFF;
    int t = ((u & 0x0F) << 3) + kUlawBias;
    t <<= (u & 0x70) >> 4;
    return static_cast<std::int16_t>((u & 0x80) != 0 ? (kUlawBias - t) : (t - kUlawBias));
}

constexpr std::int16_t alaw_decode_scalar(std::uint8_t code) {
    const int a = code ^ 0x55;
    int t = (a & 0x0F) << 4;
    const int seg = (a & 0x70) >> 4;
    if (seg == 0) {
        t += 8;
    } else {
        t += 0x108;
        if (seg > 1) t <<= seg - 1;
    }
    return static_cast<std::int16_t>((a & 0x80) != 0 ? t : -t);
}

// Encode tables indexed by the shifted sample plus an offset (16 KiB and 8 KiB: they stay in L1);
// decode tables have one entry per code.
constexpr std::size_t kUlawEncodeSize = 1u << 14;
constexpr std::size_t kAlawEncodeSize = 1u << 13;

constexpr auto kUlawEncode = [] {
    std::array<std::uint8_t, kUlawEncodeSize> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
        t[i] = ulaw_from_14bit(static_cast<int>(i) - static_cast<int>(kUlawEncodeSize / 2));
    }
    return t;
}();

constexpr auto kAlawEncode = [] {
    std::array<std::uint8_t, kAlawEncodeSize> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
        t[i] = alaw_from_13bit(static_cast<int>(i) - static_cast<int>(kAlawEncodeSize / 2));
    }
    return t;
}();

constexpr auto kUlawDecode = [] {
    std::array<std::int16_t, 256> t{};
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = ulaw_decode_scalar(static_cast<std::uint8_t>(i));
    return t;
}();

constexpr auto kAlawDecode = [] {
    std::array<std::int16_t, 256> t{};
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = alaw_decode_scalar(static_cast<std::uint8_t>(i));
    return t;
}();

// (sample >> 2) + 8192 without relying on signed shifts: the unsigned offset sample + 32768
// shifted right gives the same index.
inline std::size_t ulaw_index(std::int16_t s) {
    return static_cast<std::size_t>(static_cast<std::uint16_t>(s ^ 0x8000)) >> 2;
}
inline std::size_t alaw_index(std::int16_t s) {
    return static_cast<std::size_t>(static_cast<std::uint16_t>(s ^ 0x8000)) >> 3;
}

static_assert(kUlawEncode[kUlawEncodeSize / 2] == kUlawSilence);

}  // namespace

std::uint8_t linear_to_ulaw(std::int16_t sample) {
    return kUlawEncode[ulaw_index(sample)];
}
std::int16_t ulaw_to_linear(std::uint8_t code) {
    return kUlawDecode[code];
}
std::uint8_t linear_to_alaw(std::int16_t sample) {
    return kAlawEncode[alaw_index(sample)];
}
std::int16_t alaw_to_linear(std::uint8_t code) {
    return kAlawDecode[code];
}

void ulaw_decode(std::span<const std::uint8_t> in, std::int16_t* out) {
    const std::uint8_t* p = in.data();
    const std::size_t n = in.size();
    const std::int16_t* table = kUlawDecode.data();
    std::size_t i = 0;
    // Unrolled by 8: independent loads let the core issue two table lookups per cycle.
    for (; i + 8 <= n; i += 8) {
        out[i + 0] = table[p[i + 0]];
        out[i + 1] = table[p[i + 1]];
        out[i + 2] = table[p[i + 2]];
        out[i + 3] = table[p[i + 3]];
        out[i + 4] = table[p[i + 4]];
        out[i + 5] = table[p[i + 5]];
        out[i + 6] = table[p[i + 6]];
        out[i + 7] = table[p[i + 7]];
    }
    for (; i < n; ++i) out[i] = table[p[i]];
}

void ulaw_encode(std::span<const std::int16_t> in, std::uint8_t* out) {
    const std::int16_t* p = in.data();
    const std::size_t n = in.size();
    const std::uint8_t* table = kUlawEncode.data();
    for (std::size_t i = 0; i < n; ++i) out[i] = table[ulaw_index(p[i])];
}

void alaw_decode(std::span<const std::uint8_t> in, std::int16_t* out) {
    const std::uint8_t* p = in.data();
    const std::size_t n = in.size();
    const std::int16_t* table = kAlawDecode.data();
    for (std::size_t i = 0; i < n; ++i) out[i] = table[p[i]];
}

void alaw_encode(std::span<const std::int16_t> in, std::uint8_t* out) {
    const std::int16_t* p = in.data();
    const std::size_t n = in.size();
    const std::uint8_t* table = kAlawEncode.data();
    for (std::size_t i = 0; i < n; ++i) out[i] = table[alaw_index(p[i])];
}

}  // namespace mediasim::core
