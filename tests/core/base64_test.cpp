#include "core/base64.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mediasim::core {
namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
    return {s.begin(), s.end()};
}

// Decodes into a buffer of exactly base64_decoded_max_size() bytes followed by guard bytes, and
// checks that nothing past the returned count was written.
Result<std::string> decode(std::string_view text) {
    const std::size_t max = base64_decoded_max_size(text.size());
    std::vector<std::uint8_t> buf(max + 8, 0xA5);
    auto r = base64_decode(text, buf.data());
    if (!r) return r.error();
    EXPECT_LE(*r, max);
    for (std::size_t i = *r; i < buf.size(); ++i) {
        EXPECT_EQ(buf[i], 0xA5) << "byte " << i << " written past the decoded data of \"" << text
                                << "\"";
    }
    return std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*r));
}

std::string decode_error(std::string_view text) {
    auto r = decode(text);
    if (r) return "decoded without error";
    return r.error().to_string();
}

// A deliberately plain bit-at-a-time encoder, independent of the table-driven one.
std::string reference_encode(const std::vector<std::uint8_t>& in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (std::uint8_t b : in) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
    while (out.size() % 4 != 0) out += '=';
    return out;
}

TEST(Base64, Rfc4648Section10Vectors) {
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(bytes(plain)), encoded);
        auto d = decode(encoded);
        ASSERT_TRUE(d) << encoded << ": " << d.error().to_string();
        EXPECT_EQ(*d, plain);
    }
}

TEST(Base64, EncodeFormsAgree) {
    const auto in = bytes("any carnal pleasure.");
    std::string out = "prefix:";
    base64_encode_append(in, out);
    EXPECT_EQ(out, "prefix:YW55IGNhcm5hbCBwbGVhc3VyZS4=");
    std::string raw(base64_encoded_size(in.size()), '?');
    EXPECT_EQ(base64_encode(in, raw.data()), raw.size());
    EXPECT_EQ(raw, "YW55IGNhcm5hbCBwbGVhc3VyZS4=");
}

TEST(Base64, AllByteValuesAndAllSixBitValues) {
    std::vector<std::uint8_t> all(256);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
    const std::string text = base64_encode(all);
    EXPECT_EQ(text, reference_encode(all));
    auto d = decode(text);
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(bytes(*d), all);
}

TEST(Base64, RoundTripRandomBuffersOfEveryLength0To1000) {
    std::mt19937 rng(20240501);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t n = 0; n <= 1000; ++n) {
        std::vector<std::uint8_t> in(n);
        for (auto& b : in) b = static_cast<std::uint8_t>(byte(rng));
        const std::string text = base64_encode(in);
        ASSERT_EQ(text.size(), base64_encoded_size(n));
        ASSERT_EQ(text, reference_encode(in)) << "length " << n;
        std::vector<std::uint8_t> out(base64_decoded_max_size(text.size()));
        auto r = base64_decode(text, out.data());
        ASSERT_TRUE(r) << "length " << n << ": " << r.error().to_string();
        ASSERT_EQ(*r, n);
        out.resize(*r);
        ASSERT_EQ(out, in) << "length " << n;
    }
}

// Like Python's base64.b64decode(s, validate=True), which returns b"A" for "QR==" and b"AB" for
// "QUJ=": non-zero bits left over before the padding are ignored.
TEST(Base64, NonZeroTrailingBitsAreIgnoredAsPythonDoes) {
    EXPECT_EQ(*decode("QR=="), "A");
    EXPECT_EQ(*decode("QQ=="), "A");
    EXPECT_EQ(*decode("QUJ="), "AB");
    EXPECT_EQ(*decode("QUI="), "AB");
}

// Every byte outside the alphabet and '=' is rejected wherever it stands: in a full group, in the
// last group, before the padding. Printable characters are quoted; others are shown in hex.
TEST(Base64, EveryInvalidCharacterIsReportedWithItsPosition) {
    const std::string valid = "Zm9vYmFyYmF6Zg==";  // "foobarbazf"
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rejected = 0;
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        if (alphabet.find(ch) != std::string::npos || ch == '=') continue;
        const std::string shown =
            (c >= 0x20 && c < 0x7F) ? std::string("'") + ch + "'" : fmt::format("0x{:02X}", c);
        for (std::size_t pos : {0u, 3u, 5u, 11u, 12u, 13u, 14u, 15u}) {
            std::string text = valid;
            text[pos] = ch;
            EXPECT_EQ(decode_error(text),
                      fmt::format("invalid base64 character {} at position {}", shown, pos));
        }
        ++rejected;
    }
    EXPECT_EQ(rejected, 256 - 65);
}

TEST(Base64, InvalidCharacterClassesExactMessages) {
    // Whitespace and line breaks (MIME style) are not accepted.
    EXPECT_EQ(decode_error("Zm9v\nYmFy"), "invalid base64 character 0x0A at position 4");
    EXPECT_EQ(decode_error("Zm9v YmF"), "invalid base64 character ' ' at position 4");
    EXPECT_EQ(decode_error("Zm9v\tYmF"), "invalid base64 character 0x09 at position 4");
    // The URL-safe alphabet (RFC 4648 §5) is a different encoding.
    EXPECT_EQ(decode_error("Zm9v-mFy"), "invalid base64 character '-' at position 4");
    EXPECT_EQ(decode_error("Zm9vYm_y"), "invalid base64 character '_' at position 6");
    // Punctuation, NUL and bytes outside ASCII (e.g. UTF-8).
    EXPECT_EQ(decode_error("Zm9vYmFy!m9v"), "invalid base64 character '!' at position 8");
    EXPECT_EQ(decode_error(std::string_view("Zm\0v", 4)),
              "invalid base64 character 0x00 at position 2");
    EXPECT_EQ(decode_error("Zm9v\xC3\xA9mF"), "invalid base64 character 0xC3 at position 4");
    // An example with a position past the first few groups.
    std::string long_text = base64_encode(std::vector<std::uint8_t>(60, 7));
    long_text[41] = '!';
    EXPECT_EQ(decode_error(long_text), "invalid base64 character '!' at position 41");
}

TEST(Base64, LengthNotAMultipleOf4) {
    EXPECT_EQ(decode_error("Z"), "base64 length 1 is not a multiple of 4");
    EXPECT_EQ(decode_error("Zm"), "base64 length 2 is not a multiple of 4");
    EXPECT_EQ(decode_error("Zm8"), "base64 length 3 is not a multiple of 4");
    EXPECT_EQ(decode_error("Zm8="), "decoded without error");  // the helper itself
}

TEST(Base64, PaddingErrorsExactMessages) {
    // Padding missing or incomplete gives a length that is not a multiple of 4.
    EXPECT_EQ(decode_error("Zm9vYg="), "base64 length 7 is not a multiple of 4");
    EXPECT_EQ(decode_error("Zm9vYg"), "base64 length 6 is not a multiple of 4");
    // Too much padding.
    EXPECT_EQ(decode_error("Zm9vY==="),
              "base64 padding '=' at position 5: padding may only fill the last 2 characters");
    EXPECT_EQ(decode_error("===="),
              "base64 padding '=' at position 0: padding may only fill the last 2 characters");
    // Padding in the middle (two encodings concatenated, or a stray '=').
    EXPECT_EQ(decode_error("Zg==Zg=="),
              "base64 padding '=' at position 2 is not at the end of the data");
    EXPECT_EQ(decode_error("Zm9=YmFy"),
              "base64 padding '=' at position 3 is not at the end of the data");
    // Data after padding in the last group.
    EXPECT_EQ(decode_error("Zm9vZg=a"), "base64 data after padding at position 7");
    // Even a length error reports a bad character first, when there is one.
    EXPECT_EQ(decode_error("Zm9v!"), "invalid base64 character '!' at position 4");
}

}  // namespace
}  // namespace mediasim::core
