#include "simulator/ws_frame.hpp"

#include <cstring>
#include <random>

namespace mediasim::sim {

void mask_payload(std::string& buf, std::uint32_t key) {
    if (buf.size() <= kWsHeaderRoom) return;
    char* p = buf.data() + kWsHeaderRoom;
    std::size_t n = buf.size() - kWsHeaderRoom;
    unsigned char k[4];
    std::memcpy(k, &key, 4);
    // Eight bytes at a time with the key repeated twice, then the tail byte by byte.
    std::uint64_t k8;
    unsigned char kk[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
    std::memcpy(&k8, kk, 8);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        w ^= k8;
        std::memcpy(p + i, &w, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<char>(static_cast<unsigned char>(p[i]) ^ k[i % 4]);
}

std::size_t frame_client_text(std::string& buf, std::uint32_t key) {
    const std::uint64_t len = buf.size() - kWsHeaderRoom;
    unsigned char h[kWsHeaderRoom];
    std::size_t n = 0;
    h[n++] = 0x81;  // FIN, opcode 1 (text)
    if (len < 126) {
        h[n++] = static_cast<unsigned char>(0x80 | len);
    } else if (len <= 0xFFFF) {
        h[n++] = 0x80 | 126;
        h[n++] = static_cast<unsigned char>(len >> 8);
        h[n++] = static_cast<unsigned char>(len);
    } else {
        h[n++] = 0x80 | 127;
        for (int s = 56; s >= 0; s -= 8) h[n++] = static_cast<unsigned char>(len >> s);
    }
    std::memcpy(h + n, &key, 4);
    n += 4;
    const std::size_t start = kWsHeaderRoom - n;
    std::memcpy(buf.data() + start, h, n);
    mask_payload(buf, key);
    return start;
}

MaskKeys::MaskKeys() {
    std::random_device rd;
    state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::uint32_t MaskKeys::next() {
    // splitmix64
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<std::uint32_t>(z ^ (z >> 31));
}

}  // namespace mediasim::sim
