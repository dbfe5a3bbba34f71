// One Media Stream as Twilio runs it: the signed WebSocket upgrade (no subprotocol offered),
// `connected`, `start`, then `media` every 20 ms per track on absolute deadlines (the caller's
// audio, then μ-law silence as a live line carries), `dtmf`, and `stop` at hang-up. On a
// bidirectional stream the server's media is played out in real time (Playout), marks are
// echoed when their audio has played, `clear` flushes. Anything the server does wrong is
// counted as a violation and ignored, as Twilio does (warnings 31950/31951); the stream goes on.
//
// Beast stays in the .cpp: this header is light so that the call and the runner can include it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/form.hpp"
#include "core/params.hpp"
#include "simulator/http_client.hpp"
#include "simulator/impairment.hpp"
#include "simulator/stats.hpp"

namespace mediasim::sim {

// A scripted caller (a scenario's ScriptPlayer, say): when a stream has one, it decides each
// frame's audio, the digits and the hang-up, instead of StreamPlan::audio/dtmf/tail, and hears
// what the bot does. Frame `index` (from 1) is due at origin + 20 ms * index.
class CallerSource {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;
    struct Frame {
        std::string dtmf;     // digits to send before this frame's media
        bool hangup = false;  // the caller hangs up now (this frame is not sent)
    };
    virtual ~CallerSource() = default;
    virtual Frame next_frame(std::uint64_t index, bool bot_playing,
                             std::span<std::uint8_t, 160> out) = 0;
    virtual void bot_audio(TimePoint) {}
    virtual void bot_mark(TimePoint, std::string_view) {}
    virtual void bot_clear(TimePoint) {}
    // The call failed in the script (a wait timed out); empty while fine.
    virtual std::string failure() const { return {}; }
    virtual std::vector<std::string> expectation_failures() const { return {}; }
};
// Makes the caller for a stream once it has started (origin: the stream's start).
using CallerFactory = std::function<std::shared_ptr<CallerSource>(CallerSource::TimePoint origin,
                                                                  WorkerStats* stats)>;

struct StreamPlan {
    core::Url url;           // where to connect (wss:// or ws://)
    std::string auth_token;  // signs the upgrade over url.to_string(); empty: unsigned
    std::string account_sid, call_sid, stream_sid;
    std::string name;           // <Stream name>, may be empty
    bool bidirectional = true;  // <Connect>: plays the server's audio, echoes marks
    bool inbound = true;        // tracks sent: inbound (the caller), outbound (what Twilio plays)
    bool outbound = false;
    core::Parameters custom_parameters;
    // The caller's μ-law audio, sent from the first frame on; silence follows.
    std::shared_ptr<const std::vector<std::uint8_t>> audio;
    std::string dtmf;  // digits sent after the audio (bidirectional only); 'w' waits 500 ms
    std::chrono::milliseconds dtmf_gap{250};
    std::chrono::milliseconds tail{2000};  // after the audio (and digits), the caller hangs up
    bool record = false;                   // keep the server's played audio and the caller's audio
    int send_buffer = 0;   // SO_SNDBUF of the socket when > 0 (default: the kernel's autotuning)
    CallerFactory caller;  // when set, a scripted caller replaces audio/dtmf/tail
    // After sending `stop`, keep reading this long before closing (mediasim check watches for
    // frames the server sends after `stop`); 0: close at once.
    std::chrono::milliseconds linger_after_stop{0};
    std::shared_ptr<const Impairments> impair;  // the network's doing (impairment.hpp); null: none
};

// What the server did wrong, by kind: the evidence of `mediasim check`. Each kind is a way
// Twilio drops or ignores a server frame (warnings 31950/31951) or misplays its audio.
enum class ServerFault : int {
    binary_frame,      // a binary WebSocket frame (31950)
    not_json,          // not a JSON object (31951)
    unknown_event,     // event missing or not media/mark/clear (31951)
    bad_field,         // a required field missing or of the wrong type (31951)
    extra_field,       // a field the spec does not define (31951 lists "extra field")
    wrong_stream_sid,  // streamSid missing or not this stream's (31951)
    bad_base64,        // media.payload is not standard base64
    audio_header,      // the payload starts with a WAV (RIFF) or MP3 (ID3) header: noise
    unidirectional,    // media, mark or clear on a <Start> stream: Twilio plays and echoes nothing
};
inline constexpr int kServerFaultCount = 9;
const char* server_fault_name(ServerFault f);  // "binary_frame", ...

struct ServerEvidence {
    std::array<std::uint64_t, kServerFaultCount> faults{};
    std::array<std::string, kServerFaultCount> first_fault;  // the first example of each kind
    std::uint64_t media = 0, marks = 0, clears = 0;          // valid frames by event
    std::size_t min_payload = 0, max_payload = 0;            // μ-law bytes per media message
    std::uint64_t bad_mark_names = 0;  // empty, or the name of a mark still pending
    std::string first_bad_mark;
    // Frames received more than kAfterStopGrace after `stop` was sent (in flight before it
    // arrived are forgiven).
    std::uint64_t after_stop = 0;
    std::string first_after_stop;
    std::int64_t max_ahead_ms = 0;  // the most audio ever queued ahead of real time
    // Audio (ms) arriving within 1 s after a clear, clear by clear: stale audio keeps playing.
    std::int64_t audio_after_clear_ms = 0;
    static constexpr std::chrono::milliseconds kAfterStopGrace{250};
};

enum class StreamEnd {
    hung_up,        // we sent `stop` (hang-up or <Stop>)
    server_closed,  // the server closed the socket
    failed,         // connect/TLS/handshake/read/write error
};
const char* to_string(StreamEnd e);

struct StreamResult {
    StreamEnd end = StreamEnd::failed;
    FailureClass failure = FailureClass::none;
    std::string error;       // on failure: "connect to 127.0.0.1:9: Connection refused"
    bool connected = false;  // the upgrade succeeded (connected/start sent)
    int close_code = 0;      // the server's close code when it closed
    std::uint64_t frames_sent = 0;
    std::uint64_t frames_received = 0;
    std::uint64_t media_sent = 0;
    std::uint64_t marks_echoed = 0;
    std::uint64_t clears = 0;
    std::uint64_t violations = 0;
    std::string first_violation;
    std::uint64_t writes_waited = 0;  // frames the socket took only in part at once (ws://)
    std::uint64_t bot_bytes_received = 0;
    std::uint64_t bot_bytes_played = 0;
    std::vector<std::uint8_t> bot_audio;            // when recording: what played, silence between
    std::vector<std::uint8_t> caller_audio;         // when recording: the inbound track as sent
    ServerEvidence evidence;                        // what the server sent, checked
    std::chrono::milliseconds duration{0};          // from the upgrade to the end
    std::string caller_failure;                     // from a scripted caller
    std::vector<std::string> expectation_failures;  // from a scripted caller
};

struct StreamEvents {
    // A line for the call's timeline ("mark \"utt-1\" echoed after 1320 ms").
    std::function<void(std::string)> log;
    // The upgrade succeeded and connected + start went out.
    std::function<void()> on_started;
    // The caller's audio, digits and tail are over: the caller would hang up now.
    std::function<void()> on_caller_done;
    // Exactly once, last.
    std::function<void(StreamResult)> on_ended;
};

class StreamClient {
  public:
    virtual ~StreamClient() = default;
    virtual void start() = 0;
    // Sends `stop` and closes (hang-up, <Stop><Stream>); no-op once ended or stopping.
    virtual void hang_up() = 0;
    virtual const StreamPlan& plan() const = 0;
};

// Creates a stream client on io. stats may be null. events must outlive the client's work;
// the client keeps itself alive while it runs.
std::shared_ptr<StreamClient> make_stream_client(boost::asio::io_context& io,
                                                 std::shared_ptr<const NetConfig> net,
                                                 StreamPlan plan, StreamEvents events,
                                                 WorkerStats* stats);

}  // namespace mediasim::sim
