// Scenarios: a call script plus a load shape, loaded from YAML (see scenarios/README.md).
// Loading validates the whole file and reports every problem at once, each with file, line,
// column and the field path; audio is resolved at load time (WAV files decoded to 8 kHz μ-law,
// texts spoken through espeak-ng), so a run never stalls on I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/params.hpp"
#include "core/result.hpp"
#include "simulator/impairment.hpp"

namespace mediasim::sim {

using Millis = std::chrono::milliseconds;

// Caller audio, 8 kHz μ-law, ready to send.
struct Speech {
    std::string label;  // the file name or the text, for reports
    std::vector<std::uint8_t> mulaw;
};

struct SpeakStep {  // the caller speaks
    Speech speech;
};
struct SilenceStep {  // the caller says nothing (the line still carries silence frames)
    Millis duration{0};
};
struct DtmfStep {  // the caller presses keys
    std::string digits;
    Millis gap{250};  // between digits
};
// Waits for the bot. `within` is an expectation: counted from the end of the caller's last
// words (or from the start of the wait when nothing was said), as the response latency is.
struct WaitStep {
    enum class For { audio, silence, mark, clear };
    For what = For::audio;
    Millis timeout{10000};         // the call fails if nothing comes by then
    Millis silence{700};           // For::silence: this much without bot audio
    std::string mark;              // For::mark: the name (empty: any mark)
    std::optional<Millis> within;  // expectation
};
// The caller speaks while the bot talks: waits for bot audio, lets it run for `after`, then
// speaks. `clear_within` expects the server to send `clear` within that time of the speech start.
struct BargeInStep {
    Speech speech;
    Millis after{500};
    Millis timeout{10000};  // for the bot audio to start
    std::optional<Millis> clear_within;
};
struct HangupStep {};

using Step = std::variant<SpeakStep, SilenceStep, DtmfStep, WaitStep, BargeInStep, HangupStep>;

struct ScriptStep {
    Step step;
    int line = 0;  // in the scenario file, for messages
};

struct LoadShape {
    enum class Arrival { constant, poisson, ramp };
    int calls = 1;        // total calls
    int concurrency = 1;  // at most this many at once
    Arrival arrival = Arrival::constant;
    double rate = 0;                 // new calls per second (0: as fast as concurrency allows)
    double ramp_from = 0;            // ramp: rate at the start
    Millis ramp_over{0};             // ramp: time to reach `rate`
    std::optional<Millis> duration;  // stop starting calls after this long
};

// Per-call values; strings may hold templates: {{n}} (call number from 1), {{n:04}} (zero
// padded), {{rand:6}} (random digits), {{shard}} (shard index).
struct CallTemplate {
    std::string from = "+1415555{{n:04}}";
    std::string to = "+15005550006";
    core::Parameters webhook_params;  // extra webhook parameters
};

// The stream to open when there is no TwiML (mediasim run --stream URL). With --webhook, the
// server's TwiML decides instead.
struct StreamSettings {
    bool bidirectional = true;            // <Connect><Stream>; false: <Start><Stream>
    std::string track = "inbound_track";  // inbound_track, outbound_track, both_tracks
    core::Parameters custom_parameters;   // as <Parameter> children would give
};

struct Scenario {
    std::filesystem::path path;
    std::string name;
    std::string description;
    CallTemplate call;
    StreamSettings stream;
    std::vector<ScriptStep> steps;
    Millis max_call_duration{120000};  // safety net: hang up after this long
    LoadShape load;
    Impairments network;  // what the network does to the stream (impairment.hpp)
};

struct LoadOptions {
    std::filesystem::path tts_cache;  // where spoken texts are cached; empty: no cache
    std::string voice = "en-us";      // espeak-ng voice
};

struct ScenarioLoad {
    std::optional<Scenario> scenario;      // set when there was no error
    std::vector<core::Diagnostic> errors;  // every problem found
};

ScenarioLoad load_scenario(const std::filesystem::path& path, const LoadOptions& opts = {});
ScenarioLoad parse_scenario(std::string_view yaml_text, const std::filesystem::path& path,
                            const LoadOptions& opts = {});

// "250ms", "2s", "1.5s", "10m", "1h" → milliseconds.
core::Result<Millis> parse_duration(std::string_view text);

// Expands {{n}}, {{n:04}}, {{rand:K}}, {{shard}}; unknown names are an error.
struct TemplateContext {
    std::uint64_t n = 1;
    int shard = 0;
    std::uint64_t seed = 0;  // for {{rand}}
};
core::Result<std::string> expand_template(std::string_view text, const TemplateContext& ctx);

// Speaks text through espeak-ng (the command) → 8 kHz μ-law.
core::Result<Speech> synthesize(std::string_view text, const LoadOptions& opts);

}  // namespace mediasim::sim
