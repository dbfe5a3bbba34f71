// TwiML → typed verbs. The subset a Media Streams call uses: <Say>, <Play>, <Pause>,
// <Connect><Stream>, <Start><Stream>, <Stop><Stream>, <Gather>, <Redirect>, <Dial>, <Hangup>,
// <Reject>. TwiML is case-sensitive XML; unknown verbs and invalid attributes are errors with
// line:column (Twilio ends such calls with 12100/12200), so the call ends with a clear reason.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/params.hpp"
#include "core/result.hpp"

namespace mediasim::sim::twiml {

struct Say {
    std::string text;
    std::string voice;
    std::string language;
    int loop = 1;  // 0: Twilio repeats "until the call ends"; we cap it (see kMaxLoop)
};

struct Play {
    std::string url;  // may be empty when only `digits` is given
    int loop = 1;
    std::string digits;  // DTMF to play; 'w' waits 0.5 s
};

struct Pause {
    std::chrono::seconds length{1};
};

enum class StreamTrack { inbound_track, outbound_track, both_tracks };
const char* to_string(StreamTrack t);

struct Stream {
    std::string url;  // as written (absolute or relative; resolved against the document URL)
    std::string name;
    StreamTrack track = StreamTrack::inbound_track;
    std::string status_callback;
    std::string status_callback_method = "POST";
    core::Parameters parameters;  // <Parameter name value>, in order → customParameters
};

// <Start><Stream>: unidirectional, does not block.
struct StartStream {
    Stream stream;
};

// <Connect><Stream>: bidirectional, blocks until the server closes the socket.
struct ConnectStream {
    Stream stream;
    std::string action;  // empty: continue after </Connect>
    std::string method = "POST";
};

// <Stop><Stream name="…"/>; an empty name stops the unidirectional streams without a name.
struct StopStream {
    std::string name;
};

// Verbs allowed inside <Gather>.
using Prompt = std::variant<Say, Play, Pause>;

struct Gather {
    bool dtmf = true;
    bool speech = false;
    std::string action;  // empty: the current document
    std::string method = "POST";
    std::chrono::seconds timeout{5};
    int num_digits = 0;  // 0: until finishOnKey or timeout
    std::string finish_on_key = "#";
    std::string language = "en-US";
    bool action_on_empty_result = false;
    std::vector<Prompt> prompts;
};

struct Redirect {
    std::string url;
    std::string method = "POST";
};

struct Dial {
    std::string target;  // "+15551234567", or "Client:alice", "Sip:sip:…", "Conference:room", …
    std::string action;
    std::string method = "POST";
    std::chrono::seconds timeout{30};
    std::string caller_id;
};

struct Hangup {};

struct Reject {
    std::string reason = "rejected";  // or "busy"
};

using Verb = std::variant<Say, Play, Pause, StartStream, ConnectStream, StopStream, Gather,
                          Redirect, Dial, Hangup, Reject>;
const char* verb_name(const Verb& v);  // "Say", "Connect", …
// One line for a timeline, e.g. `<Connect><Stream url="wss://h/media"> (2 parameters)`.
std::string describe(const Verb& v);

struct Document {
    std::vector<Verb> verbs;
    std::vector<std::string> warnings;  // e.g. ignored attributes, ws:// stream URLs
};

inline constexpr int kMaxLoop = 1000;

// Parses a TwiML document. `name` (e.g. the URL it came from) goes into error messages.
core::Result<Document> parse(std::string_view text, std::string_view name = "TwiML");

// How long Twilio takes to speak a <Say> (an estimate from the text length: about 14
// characters per second, at least 0.5 s when there is text), loops included.
std::chrono::milliseconds say_duration(const Say& say);

}  // namespace mediasim::sim::twiml
