// The properties the libFuzzer targets check, one function per target. The fuzz targets
// (fuzz_*.cpp, built with clang and -fsanitize=fuzzer) and the regression test
// (tests/core/regress_test.cpp, built with the normal toolchain) both call these, so a crash
// input kept in tests/regress/<target>/ replays exactly the code that found it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace mediasim::fuzz {

// Each returns "" when every property held for the input, else which one failed and how.
// Memory errors and undefined behaviour are left to the sanitizers.

// The message parsers: parse_twilio_message and parse_server_message on the bytes; a frame
// they accept is serialised, parsed again and must come back equal and byte-stable. The
// FastParser must agree with the general parser (same verdict, same fields, same error text).
std::string check_protocol(std::span<const std::uint8_t> data);

// base64: decoding the bytes as text must not overflow the output; when it decodes, encoding
// and decoding again gives the same bytes. Encoding the bytes as data and decoding gives them
// back.
std::string check_base64(std::span<const std::uint8_t> data);

// WAV: parse_wav on the bytes; when it parses, make_wav of the result parses back to the same
// format and data, and make_wav is stable.
std::string check_wav(std::span<const std::uint8_t> data);

}  // namespace mediasim::fuzz
