// The prebuilt client text frame: header per RFC 6455 §5.2 for each length form, the payload
// masked with the key in the header, and unmasked back.
#include "simulator/ws_frame.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace mediasim::sim;

namespace {

struct Parsed {
    bool fin = false;
    int opcode = -1;
    bool masked = false;
    std::uint64_t len = 0;
    unsigned char key[4] = {};
    std::string payload;  // unmasked
};

Parsed parse(std::string_view f) {
    Parsed p;
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(f.at(i)); };
    p.fin = b(0) & 0x80;
    p.opcode = b(0) & 0x0F;
    p.masked = b(1) & 0x80;
    std::size_t i = 2;
    p.len = b(1) & 0x7F;
    if (p.len == 126) {
        p.len = (std::uint64_t{b(2)} << 8) | b(3);
        i = 4;
    } else if (p.len == 127) {
        p.len = 0;
        for (int k = 0; k < 8; ++k) p.len = (p.len << 8) | b(2 + k);
        i = 10;
    }
    for (int k = 0; k < 4; ++k) p.key[k] = b(i + k);
    i += 4;
    EXPECT_EQ(f.size() - i, p.len);
    for (std::size_t k = 0; i + k < f.size(); ++k)
        p.payload += static_cast<char>(b(i + k) ^ p.key[k % 4]);
    return p;
}

}  // namespace

TEST(WsFrame, BuildsAMaskedFinalTextFrameForEveryLengthForm) {
    for (std::size_t n : {0u, 1u, 7u, 125u, 126u, 300u, 65535u, 65536u, 70001u}) {
        std::string text;
        for (std::size_t i = 0; i < n; ++i) text += static_cast<char>('a' + i % 26);
        std::string buf(kWsHeaderRoom, '\0');
        buf += text;
        const std::uint32_t key = 0xA1B2C3D4u + static_cast<std::uint32_t>(n);
        const std::size_t start = frame_client_text(buf, key);
        const std::size_t header = n < 126 ? 6 : n <= 0xFFFF ? 8 : 14;
        EXPECT_EQ(start, kWsHeaderRoom - header) << n;
        const auto p = parse(std::string_view(buf).substr(start));
        EXPECT_TRUE(p.fin);
        EXPECT_EQ(p.opcode, 1);
        EXPECT_TRUE(p.masked);
        EXPECT_EQ(p.len, n);
        EXPECT_EQ(p.payload, text) << n;
        if (n >= 8) {
            EXPECT_NE(buf.substr(kWsHeaderRoom), text) << "payload not masked";
        }
        // Masking again restores the text (what the fast path does to hand a frame to Beast).
        mask_payload(buf, key);
        EXPECT_EQ(buf.substr(kWsHeaderRoom), text) << n;
    }
}

TEST(WsFrame, MaskKeysVary) {
    MaskKeys a, b;
    std::set<std::uint32_t> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(a.next());
    EXPECT_GT(seen.size(), 990u);
    EXPECT_NE(a.next(), b.next());  // seeded separately
}
