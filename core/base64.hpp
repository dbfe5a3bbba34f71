// Standard padded base64 (RFC 4648 §4), as Twilio uses for media payloads.
// Decoding is strict: an invalid character or bad padding is an error naming the position
// (0-based, counted in characters from the start of the input). It accepts what Python's
// base64.b64decode(s, validate=True) accepts: no whitespace, length a multiple of 4, '=' only
// as the last one or two characters; like Python it ignores non-zero bits left over in the last
// character before the padding ("QR==" decodes to "A", as "QQ==" does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace mediasim::core {

constexpr std::size_t base64_encoded_size(std::size_t bytes) {
    return (bytes + 2) / 3 * 4;
}
constexpr std::size_t base64_decoded_max_size(std::size_t chars) {
    return chars / 4 * 3;
}

// Writes base64_encoded_size(in.size()) characters to out; returns that count.
std::size_t base64_encode(std::span<const std::uint8_t> in, char* out);
// Appends to out (grows it once).
void base64_encode_append(std::span<const std::uint8_t> in, std::string& out);
std::string base64_encode(std::span<const std::uint8_t> in);

// Decodes into out, which must hold base64_decoded_max_size(in.size()) bytes; returns the number
// of bytes written, or a Diagnostic such as "invalid base64 character '!' at position 41".
Result<std::size_t> base64_decode(std::string_view in, std::uint8_t* out);

}  // namespace mediasim::core
