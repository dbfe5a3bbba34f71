// G.711 μ-law and A-law, bit-exact with CPython's audioop (lin2ulaw/ulaw2lin, lin2alaw/alaw2lin
// on 16-bit samples). audioop is the oracle because most Python Twilio servers use it; its μ-law
// encoder never emits 0x7F and differs from ITU G.191 on some negative inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mediasim::core {

std::uint8_t linear_to_ulaw(std::int16_t sample);
std::int16_t ulaw_to_linear(std::uint8_t code);
std::uint8_t linear_to_alaw(std::int16_t sample);
std::int16_t alaw_to_linear(std::uint8_t code);

// Block forms: out must hold at least in.size() elements. Table driven; no allocation.
void ulaw_decode(std::span<const std::uint8_t> in, std::int16_t* out);
void ulaw_encode(std::span<const std::int16_t> in, std::uint8_t* out);
void alaw_decode(std::span<const std::uint8_t> in, std::int16_t* out);
void alaw_encode(std::span<const std::int16_t> in, std::uint8_t* out);

// The μ-law code for digital silence (what a quiet phone line carries).
inline constexpr std::uint8_t kUlawSilence = 0xFF;

}  // namespace mediasim::core
