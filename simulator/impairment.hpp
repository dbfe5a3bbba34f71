// Network impairments: what makes the simulator's stream look like a real network. Pure logic
// with the clock passed in; the stream client only asks the FrameGate when each frame it would
// send on time is released, so the send path itself stays as it is.
//
//   jitter      each frame is held a random time (uniform 0..2×mean, or exponential with that
//               mean) but frames never overtake each other: a long hold makes the frames behind
//               it leave together, in a burst, as a real network delivers them
//   pause       every `every`, nothing for `for` (e.g. 1 s: 50 frames), then all of it at once
//   slow_read   each read of the server's messages waits this long first: the server's audio
//               backs up in the TCP buffers (backpressure)
//   drop_at     the TCP connection is cut (no stop, no close frame) at the first caller frame
//               with speech at or after this time since the stream started: mid-word
//   webhook_delay  the webhook path is slow: the request leaves this late and the answer
//               arrives this late again
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace mediasim::core {
class ArgParser;
}

namespace mediasim::sim {

struct Impairments {
    using Millis = std::chrono::milliseconds;
    enum class Distribution { uniform, exponential };
    Millis jitter{0};  // mean hold; 0: none
    Distribution distribution = Distribution::exponential;
    Millis pause_for{0}, pause_every{0};  // 0: no pauses
    Millis slow_read{0};
    std::optional<Millis> drop_at;
    Millis webhook_delay{0};
    std::uint64_t seed = 1;

    bool holds_frames() const { return jitter.count() > 0 || pause_for.count() > 0; }
    bool any() const {
        return holds_frames() || slow_read.count() > 0 || drop_at || webhook_delay.count() > 0;
    }
    // "jitter 40ms exponential, pause 1000ms every 10000ms, …" (empty: none).
    std::string describe() const;
    // The fields set in `over` replace those of *this.
    void override_with(const Impairments& over);
};

// Parses the CLI forms: --jitter 40ms[:uniform|:exponential], --pause FOR/EVERY (1s/10s).
core::Status parse_jitter_flag(std::string_view text, Impairments& out);
core::Status parse_pause_flag(std::string_view text, Impairments& out);

// The CLI flags of `call`, `run` and `soak`: --jitter, --pause, --slow-read, --drop-at,
// --webhook-delay.
struct ImpairmentFlags {
    std::string jitter, pause, slow_read, drop_at, webhook_delay;
};
void add_impairment_flags(core::ArgParser& p, ImpairmentFlags& f);
core::Result<Impairments> impairments_from_flags(const ImpairmentFlags& f);

class FrameGate {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;
    // origin: the stream's start (pauses count from it).
    FrameGate(const Impairments& imp, TimePoint origin, std::uint64_t seed);
    // When the frame due at `due` leaves: never before `due`, never before the frame before it.
    TimePoint release(TimePoint due);

  private:
    Impairments imp_;
    TimePoint origin_;
    TimePoint last_{};
    std::mt19937_64 rng_;
};

}  // namespace mediasim::sim
