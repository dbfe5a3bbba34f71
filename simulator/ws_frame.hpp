// A client WebSocket text frame built in place (RFC 6455 §5.2): the message is appended after
// kWsHeaderRoom reserved bytes, then the header and masking key are written just in front of
// it and the payload is masked where it lies, so the frame leaves in one write with no copy.
// The stream client's fast send path uses it for every message it sends on ws://.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mediasim::sim {

// Room for the longest client header: 2 + 8 (64-bit length) + 4 (masking key).
inline constexpr std::size_t kWsHeaderRoom = 14;

// buf holds kWsHeaderRoom bytes (any value) followed by the UTF-8 text payload. Writes a final
// (FIN) text frame header masked with `key` right before the payload, masks the payload in
// place, and returns the offset at which the frame starts in buf.
std::size_t frame_client_text(std::string& buf, std::uint32_t key);

// Masks (or, applied again, unmasks) buf's payload, after kWsHeaderRoom, with `key`.
void mask_payload(std::string& buf, std::uint32_t key);

// A fast generator of masking keys (RFC 6455 §5.3: unpredictable per frame), seeded from the
// system's entropy; as Beast's default, not a cryptographic generator.
class MaskKeys {
  public:
    MaskKeys();
    std::uint32_t next();

  private:
    std::uint64_t state_;
};

}  // namespace mediasim::sim
