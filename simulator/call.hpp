// One call as Twilio makes it: the signed webhook, then the TwiML followed verb by verb (time
// passes on <Say>, <Play> and <Pause>; <Gather> posts scripted digits or speech; <Redirect>;
// <Dial> is a hand-off; <Hangup>), streams opened by <Start>/<Connect> (stream_client.hpp) with
// their status callbacks, and the caller hanging up once their audio, digits and tail are over.
// Runs on one io_context with no threads of its own, so the load runner can start thousands.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "simulator/http_client.hpp"
#include "simulator/runner.hpp"
#include "simulator/scenario.hpp"
#include "simulator/stats.hpp"
#include "simulator/stream_client.hpp"

namespace mediasim::sim {

struct CallConfig {
    std::string webhook_url;  // the voice webhook (POST), or
    std::string stream_url;   // --stream: open this stream directly, no webhook
    // With stream_url: as <Connect><Stream> (bidirectional) or <Start><Stream track=…>.
    bool stream_bidirectional = true;
    std::string stream_track = "inbound_track";  // inbound_track, outbound_track, both_tracks
    std::string auth_token;                      // signs every request and upgrade; empty: unsigned
    std::string account_sid;                     // empty: a generated AC…
    std::string from = "+14155550100";
    std::string to = "+15005550006";
    // With a webhook: extra webhook parameters; with --stream: the customParameters.
    core::Parameters params;
    std::shared_ptr<const std::vector<std::uint8_t>> audio;  // the caller's μ-law 8 kHz audio
    std::string dtmf;    // digits: sent on the stream after the audio, or posted by <Gather>
    std::string speech;  // SpeechResult posted by <Gather input="speech">
    std::chrono::milliseconds tail{2000};     // silence after the audio before the caller hangs up
    std::chrono::seconds max_duration{3600};  // the call is cut (timeout) after this
    // How long <Play> takes per loop (mediasim does not fetch the audio).
    std::chrono::milliseconds play_duration{2000};
    bool record = false;  // keep what the bot said and what the caller sent, per stream
    // After `stop`, keep reading this long before closing (StreamPlan::linger_after_stop).
    std::chrono::milliseconds linger_after_stop{0};
    // A scripted caller for the first stream (replaces audio/dtmf/tail there), e.g. a scenario.
    CallerFactory caller;
    // Network impairments of the stream and the webhook path (impairment.hpp); null: none.
    std::shared_ptr<const Impairments> impair;
    std::shared_ptr<const NetConfig> net = std::make_shared<NetConfig>();
    // The timeline: time since the call started and a line. Null: quiet (load runs).
    std::function<void(std::chrono::milliseconds, const std::string&)> timeline;
};

struct StreamRecording {
    std::string stream_sid;
    std::string name;
    std::vector<std::uint8_t> bot_audio;     // μ-law 8 kHz as played, silence where none
    std::vector<std::uint8_t> caller_audio;  // μ-law 8 kHz inbound track as sent
};

struct StatusCallbackResult {
    std::string event;  // stream-started, stream-stopped, stream-error
    std::string url;
    int status = 0;     // the HTTP status; 0 when no response came
    std::string error;  // when no response came
};

// One stream of the call as it ended (audio recordings are in `recordings`).
struct StreamReport {
    std::string url;
    bool bidirectional = true;
    bool inbound = true, outbound = false;
    StreamResult result;
};

struct CallReport {
    CallOutcome outcome;
    std::string account_sid;
    int webhook_status = 0;  // of the first document (0: no answer)
    std::string webhook_content_type;
    std::string twiml;  // the first document's body as received
    std::chrono::microseconds webhook_latency{0};
    std::vector<StatusCallbackResult> status_callbacks;
    std::vector<StreamReport> stream_reports;
    int streams = 0;
    std::uint64_t marks_echoed = 0;
    std::uint64_t clears = 0;
    std::uint64_t violations = 0;
    std::uint64_t media_sent = 0;
    std::uint64_t bot_bytes_received = 0;
    std::vector<std::string> verbs;  // the verbs run, described
    std::vector<StreamRecording> recordings;
};

// Starts a call on io and calls done once, on io, when it has ended (streams closed and status
// callbacks answered). stats may be null. `due`: when the call was scheduled (latencies count
// from it); default: now.
void start_call(boost::asio::io_context& io, std::shared_ptr<const CallConfig> config,
                std::uint64_t n, std::uint64_t seed, WorkerStats* stats,
                std::function<void(CallReport)> done,
                std::chrono::steady_clock::time_point due = {});

// A scenario's steps as the scripted caller of a call (ScriptPlayer behind CallerSource); its
// measurements go to the worker's statistics, its failure and expectations to the outcome.
CallerFactory make_script_caller(std::shared_ptr<const std::vector<ScriptStep>> steps);

// The call as the load runner starts it.
CallStarter make_call_starter(std::shared_ptr<const CallConfig> config);

}  // namespace mediasim::sim
