// G.711 against its oracle, CPython's audioop (lin2ulaw/ulaw2lin, lin2alaw/alaw2lin on 16-bit
// samples). Not ITU G.191: audioop's μ-law encoder never emits 0x7F and differs from G.191 on
// some negative inputs, and Python Twilio servers use audioop, so audioop is what we must match.
// The oracle files are made by tests/core/data/make_g711_oracle.py (python3 <= 3.12).
#include "core/g711.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace mediasim::core {
namespace {

std::vector<std::uint8_t> read_oracle(const std::string& name, std::size_t expected_size) {
    const std::string path = std::string(MEDIASIM_SOURCE_DIR) + "/tests/core/data/" + name;
    std::ifstream f(path, std::ios::binary);
    EXPECT_TRUE(f) << "cannot open " << path;
    std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
    EXPECT_EQ(data.size(), expected_size) << path;
    return data;
}

// Every int16 from -32768 to 32767, in order (the order of the *_encode.bin files).
std::vector<std::int16_t> all_samples() {
    std::vector<std::int16_t> v(65536);
    for (int i = 0; i < 65536; ++i)
        v[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(i - 32768);
    return v;
}

std::vector<std::int16_t> decode_oracle(const std::string& name) {
    const auto bytes = read_oracle(name, 512);
    std::vector<std::int16_t> v(256);
    for (std::size_t i = 0; i < v.size() && 2 * i + 1 < bytes.size(); ++i) {
        v[i] = static_cast<std::int16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));  // little-endian
    }
    return v;
}

TEST(G711Ulaw, EncodeMatchesAudioopForAllInt16) {
    const auto oracle = read_oracle("ulaw_encode.bin", 65536);
    ASSERT_EQ(oracle.size(), 65536u);
    const auto pcm = all_samples();
    std::vector<std::uint8_t> block(pcm.size());
    ulaw_encode(pcm, block.data());
    int mismatches = 0;
    for (std::size_t i = 0; i < pcm.size(); ++i) {
        if (linear_to_ulaw(pcm[i]) != oracle[i] || block[i] != oracle[i]) {
            if (++mismatches <= 10) {
                ADD_FAILURE() << "sample " << pcm[i] << ": audioop " << int(oracle[i])
                              << ", scalar " << int(linear_to_ulaw(pcm[i])) << ", block "
                              << int(block[i]);
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(G711Ulaw, DecodeMatchesAudioopForAllCodes) {
    const auto oracle = decode_oracle("ulaw_decode.bin");
    std::array<std::uint8_t, 256> codes{};
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>(i);
    std::array<std::int16_t, 256> block{};
    ulaw_decode(codes, block.data());
    for (std::size_t i = 0; i < 256; ++i) {
        EXPECT_EQ(ulaw_to_linear(static_cast<std::uint8_t>(i)), oracle[i]) << "code " << i;
        EXPECT_EQ(block[i], oracle[i]) << "code " << i;
    }
}

TEST(G711Alaw, EncodeMatchesAudioopForAllInt16) {
    const auto oracle = read_oracle("alaw_encode.bin", 65536);
    ASSERT_EQ(oracle.size(), 65536u);
    const auto pcm = all_samples();
    std::vector<std::uint8_t> block(pcm.size());
    alaw_encode(pcm, block.data());
    int mismatches = 0;
    for (std::size_t i = 0; i < pcm.size(); ++i) {
        if (linear_to_alaw(pcm[i]) != oracle[i] || block[i] != oracle[i]) {
            if (++mismatches <= 10) {
                ADD_FAILURE() << "sample " << pcm[i] << ": audioop " << int(oracle[i])
                              << ", scalar " << int(linear_to_alaw(pcm[i])) << ", block "
                              << int(block[i]);
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(G711Alaw, DecodeMatchesAudioopForAllCodes) {
    const auto oracle = decode_oracle("alaw_decode.bin");
    std::array<std::uint8_t, 256> codes{};
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>(i);
    std::array<std::int16_t, 256> block{};
    alaw_decode(codes, block.data());
    for (std::size_t i = 0; i < 256; ++i) {
        EXPECT_EQ(alaw_to_linear(static_cast<std::uint8_t>(i)), oracle[i]) << "code " << i;
        EXPECT_EQ(block[i], oracle[i]) << "code " << i;
    }
}

// Values checked by hand against audioop (python3 -c "import audioop; ...").
TEST(G711Ulaw, HandCheckedValues) {
    EXPECT_EQ(linear_to_ulaw(0), 0xFF);
    EXPECT_EQ(linear_to_ulaw(0), kUlawSilence);
    EXPECT_EQ(linear_to_ulaw(1), 0xFF);
    EXPECT_EQ(linear_to_ulaw(4), 0xFE);
    // audioop negates the 14-bit value instead of taking its one's complement as G.191 does, so
    // -1 gives 0x7E (G.191: 0x7F).
    EXPECT_EQ(linear_to_ulaw(-1), 0x7E);
    EXPECT_EQ(linear_to_ulaw(-4), 0x7E);
    EXPECT_EQ(linear_to_ulaw(32767), 0x80);
    EXPECT_EQ(linear_to_ulaw(-32767), 0x00);
    EXPECT_EQ(linear_to_ulaw(-32768), 0x00);
    EXPECT_EQ(ulaw_to_linear(0xFF), 0);
    EXPECT_EQ(ulaw_to_linear(0x7F), 0);  // "-0" decodes to 0 too
    EXPECT_EQ(ulaw_to_linear(0x7E), -8);
    EXPECT_EQ(ulaw_to_linear(0x00), -32124);
    EXPECT_EQ(ulaw_to_linear(0x80), 32124);
}

TEST(G711Ulaw, NeverEmits0x7F) {
    for (int s = -32768; s <= 32767; ++s) {
        ASSERT_NE(linear_to_ulaw(static_cast<std::int16_t>(s)), 0x7F) << "sample " << s;
    }
}

TEST(G711Alaw, HandCheckedValues) {
    EXPECT_EQ(linear_to_alaw(0), 0xD5);
    EXPECT_EQ(linear_to_alaw(-1), 0x55);
    EXPECT_EQ(linear_to_alaw(-8), 0x55);
    EXPECT_EQ(linear_to_alaw(32767), 0xAA);
    EXPECT_EQ(linear_to_alaw(-32768), 0x2A);
    EXPECT_EQ(alaw_to_linear(0xD5), 8);
    EXPECT_EQ(alaw_to_linear(0x55), -8);
    EXPECT_EQ(alaw_to_linear(0xAA), 32256);
    EXPECT_EQ(alaw_to_linear(0x2A), -32256);
}

// Decoding then encoding again gives the same code, except μ-law 0x7F which becomes 0xFF.
TEST(G711, DecodeEncodeRoundTrip) {
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        EXPECT_EQ(linear_to_ulaw(ulaw_to_linear(code)), c == 0x7F ? 0xFF : c) << "ulaw code " << c;
        EXPECT_EQ(linear_to_alaw(alaw_to_linear(code)), c) << "alaw code " << c;
    }
}

// Block forms handle lengths that are not a multiple of the unroll factor, and write no further.
TEST(G711, BlockFormsHandleEveryShortLength) {
    std::vector<std::uint8_t> codes(37);
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>(i * 7 + 3);
    for (std::size_t n = 0; n <= codes.size(); ++n) {
        std::vector<std::int16_t> out(n + 1, 12345);
        ulaw_decode({codes.data(), n}, out.data());
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], ulaw_to_linear(codes[i]));
        EXPECT_EQ(out[n], 12345) << "wrote past " << n;
    }
}

}  // namespace
}  // namespace mediasim::core
