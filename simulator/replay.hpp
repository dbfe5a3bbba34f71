// mediasim replay: what a server did on a stream, as a sequence of events to compare
// (replay_cmd.cpp), public for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simulator/session.hpp"

namespace mediasim::sim {

struct ServerEvent {
    std::string kind;         // "audio" (a run of media), "mark", "clear", or another event name
    std::string name;         // the mark's name
    std::int64_t t_us = 0;    // since the stream opened (first media of an audio run)
    std::int64_t frames = 0;  // audio: media messages in the run
    std::int64_t latency_us = -1;  // audio: since the end of the caller's last speech frame
};

// What the server sent on a stream, as events: media messages closer than 400 ms to each other
// (and not split by a mark or clear) are one "audio" run. `caller` (the Twilio side, with times
// since the stream opened) gives each run its response latency.
std::vector<ServerEvent> server_events(const std::vector<session::WsMessage>& server,
                                       const std::vector<session::WsMessage>& caller);

// True when a μ-law media payload holds speech (mean level above about -40 dBFS).
bool payload_has_speech(const std::string& media_json);

}  // namespace mediasim::sim
