// The reference server's configuration: one value built from defaults, an optional YAML file
// (--config) and command-line flags, in that order of precedence (flags win). The auth token may
// also come from the environment (TWILIO_AUTH_TOKEN), between the file and the flags.
//
// Every error names where it came from: "server.yaml:7:10: bot.silence_ms: ..." or
// "--listen: ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/params.hpp"
#include "core/result.hpp"
#include "reference-server/faults.hpp"
#include "reference-server/speech.hpp"

namespace mediasim::server {

// Which TwiML POST /voice answers with.
enum class Flow {
    stream,  // <Connect><Stream> (bidirectional; the default)
    greet,   // <Say> then <Connect><Stream>
    fork,    // <Start><Stream track="both_tracks"> then <Say>/<Pause> (listening only)
    gather,  // <Gather input="speech dtmf"> → /gather answers with <Say> (and <Dial>)
};
const char* to_string(Flow f);
std::optional<Flow> parse_flow(std::string_view name);

struct ListenAddress {
    std::string host = "127.0.0.1";  // without brackets for IPv6
    std::uint16_t port = 8080;       // 0: any free port (the bound one is printed)
    // "127.0.0.1:8080", "[::1]:8080"
    std::string to_string() const;
};
// Accepts "HOST:PORT", "[V6]:PORT" and ":PORT" (all interfaces).
core::Result<ListenAddress> parse_listen_address(std::string_view text);

// What the TwiML says, beyond the flow.
struct TwimlOptions {
    std::string greeting = "Hello from the Mediasim reference server.";  // greet, fork
    std::string gather_prompt = "Please say something, or press a key.";
    std::string gather_reply = "Thank you.";  // /gather, before the hand-off
    std::string handoff_number;               // /gather dials this when set (E.164)
    int fork_pause_seconds = 60;              // fork: how long the call stays up listening
    core::Parameters stream_parameters;       // extra <Parameter>s on every <Stream>
    // <Gather hints="...">: the gather flow's phrase list (transcription.hints.gather), joined.
    std::string gather_hints;
};

// The built-in bot on bidirectional streams.
struct BotOptions {
    // "echo" (says the caller's words back), "assistant" (answers transcripts from the rule
    // table; needs transcription) or "none".
    std::string kind = "echo";
    double vad_threshold_dbfs = -40.0;  // 20 ms frame energy above this is speech
    int vad_start_ms = 60;              // speech this long starts an utterance
    int silence_ms = 500;               // silence this long ends it
    int max_utterance_ms = 10'000;      // longer utterances are cut (bounds memory)
    // Spoken (espeak-ng) when a bidirectional stream starts, followed by the mark "greeting".
    // Empty: the bot says nothing until the caller has spoken.
    std::string greeting =
        "Hello, this is the Mediasim echo bot. Say something and I will say it back.";
    // The greeting as 8 kHz μ-law, made once at start-up (main.cpp); empty: no greeting.
    std::shared_ptr<const std::vector<std::uint8_t>> greeting_audio;
    // assistant: keyword → answer, first match wins; else the fallback.
    std::vector<Rule> rules;
    std::string fallback = "Sorry, I did not catch that. Could you say it again?";
};
inline constexpr const char* kAssistantGreeting =
    "Hello, this is the Mediasim assistant. How can I help you?";

// Offline transcription of the caller's audio (every stream's inbound track).
struct TranscriptionConfig {
    std::string engine = "none";  // none | pocketsphinx | openai
    int workers = 1;              // engines on their own threads (a bounded pool)
    bool partials = true;         // store partial results too
    std::string model_dir;        // pocketsphinx: empty = Debian's pocketsphinx-en-us
    OpenAiOptions openai;         // openai: url, api_key, model
    // What to expect, by flow name (stream, greet, fork, gather): a phrase list or a JSGF
    // grammar (read from a file at load time). The gather flow's phrases also become
    // <Gather hints="...">.
    std::map<std::string, Hints> hints;
    bool enabled() const { return engine != "none"; }
};

// What one connection may do; each limit is enforced with a `limit_reached` log line and a
// count in mediasim_server_limit_hits_total{limit="..."}, never a crash or a hang.
struct Limits {
    int max_streams = 5000;                      // open media WebSockets; more get 503
    std::size_t max_message_bytes = 256 * 1024;  // a bigger WebSocket message closes with 1009
    int idle_timeout_seconds = 60;  // no frame from Twilio this long: the stream is closed
    int http_timeout_seconds = 30;  // a request must arrive whole within this (slow clients)
    std::size_t send_queue_max_bytes = 8 * 1024 * 1024;  // frames to Twilio not yet written
    int write_timeout_seconds = 30;  // a write to Twilio stuck this long: the stream is closed
    // SO_SNDBUF of each media socket; 0 leaves it to the kernel (which may buffer megabytes
    // per socket). A bound caps kernel memory per stream and makes a slow reader show sooner.
    std::size_t socket_send_buffer_bytes = 0;
};

struct TlsFiles {
    std::filesystem::path cert_file;  // PEM chain
    std::filesystem::path key_file;   // PEM private key
    bool enabled() const { return !cert_file.empty(); }
};

struct ServerConfig {
    ListenAddress listen;
    std::filesystem::path data_dir = "mediasim-data";
    std::string auth_token;  // empty: requests are not signature-checked
    // Scheme and host (and port) the outside world reaches us at, e.g. "https://abc.ngrok.app";
    // it goes into the TwiML and is what Twilio signs. Empty: built from the request's Host.
    std::string public_url;
    Flow flow = Flow::stream;
    TlsFiles tls;
    int threads = 2;        // network threads (no thread per call)
    std::string api_token;  // when set, /api and /calls need "Authorization: Bearer <token>"
    TwimlOptions twiml;
    BotOptions bot;
    TranscriptionConfig transcription;
    Fault fault = Fault::none;  // --fault: a testing aid that breaks the protocol (faults.hpp)
    Limits limits;
};

// Reads a YAML config file on top of `base`. Unknown keys and bad values are errors with
// file:line:column; every problem found is reported, one per line, in the message.
core::Result<ServerConfig> load_config_file(const std::filesystem::path& file,
                                            ServerConfig base = {});
core::Result<ServerConfig> parse_config_yaml(std::string_view text, std::string_view file_name,
                                             ServerConfig base = {});

// Checks the combination (TLS cert without key, public URL not http(s), ...).
core::Status validate(const ServerConfig& config);

struct CommandLine {
    ServerConfig config;
    bool help = false;  // --help was given: print help_text and exit 0
    std::string help_text;
};
// Parses mediasim-server's flags (without the program name). env_auth_token is the value of
// TWILIO_AUTH_TOKEN, if set.
core::Result<CommandLine> parse_command_line(std::span<char* const> args,
                                             std::optional<std::string> env_auth_token);

}  // namespace mediasim::server
