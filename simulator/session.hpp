// Session files: what `mediasim record` saw pass between Twilio (or the simulator) and a server,
// and what `mediasim replay` plays back. JSON lines, format "mediasim.session/1" (documented in
// simulator/README.md): a header line, then one line per HTTP request, HTTP response, WebSocket
// open, WebSocket message (either direction, the text unchanged) and close, each with its
// arrival time in µs since the recorder started.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::sim::session {

inline constexpr const char* kFormat = "mediasim.session/1";
// What --redact leaves where a phone number was.
inline constexpr const char* kRedacted = "[redacted]";

struct HttpExchange {
    std::uint64_t id = 0;
    std::int64_t t_request_us = 0, t_response_us = -1;  // -1: no response
    std::string method, target, content_type, body;
    int status = 0;  // 0: the upstream did not answer (error says why)
    std::string response_content_type, response_body;  // as the server sent it (not rewritten)
    std::vector<int> streams;  // the Stream urls its TwiML declared, as stream indices
    std::string error;
};

struct WsMessage {
    std::int64_t t_us = 0;
    bool from_twilio = true;  // false: the server sent it
    bool binary = false;
    std::string text;
};

struct StreamRecord {
    int index = 0;                 // from 1, in the order the TwiML declared the urls
    std::string url;               // the server's stream URL (from its TwiML)
    std::int64_t t_open_us = -1;   // both legs connected
    std::int64_t t_close_us = -1;  // -1: never closed (the recorder stopped)
    std::string closed_by;         // "twilio", "server" or "error"
    int close_code = 0;
    std::vector<WsMessage> messages;
};

struct Session {
    std::string started_at, upstream;
    bool redacted = false;
    std::vector<HttpExchange> http;       // by request time
    std::map<int, StreamRecord> streams;  // by index
};

// Reads a session file; errors name the file and line.
core::Result<Session> read_session(const std::filesystem::path& path);

// --redact: phone numbers (form values of From/To/Caller/Called/ForwardedFrom and anything that
// looks like +E.164) become kRedacted; <Parameter> elements of TwiML and the customParameters of
// `start` are dropped.
std::string redact_form(std::string_view body);
std::string redact_twiml(std::string_view body);
std::string redact_ws(std::string_view text);
std::string redact_text(std::string_view text);

// Writes a session as it happens: every line is flushed, so a killed recorder leaves a
// readable file. Not thread-safe (the recorder writes from one thread).
class Writer {
  public:
    core::Status open(const std::filesystem::path& path, std::string upstream, bool redact);
    void http_request(std::uint64_t id, std::int64_t t_us, std::string_view method,
                      std::string_view target, std::string_view content_type,
                      std::string_view body);
    void http_response(std::uint64_t id, std::int64_t t_us, int status,
                       std::string_view content_type, std::string_view body,
                       const std::vector<int>& streams, std::string_view error);
    void ws_open(int stream, std::int64_t t_us, std::string_view url);
    void ws_message(int stream, std::int64_t t_us, bool from_twilio, bool binary,
                    std::string_view text);
    // Also writes the stream's audio next to the session: PATH-streamN-caller.wav (the inbound
    // track as Twilio sent it) and PATH-streamN-server.wav (the server's media, in arrival order).
    void ws_close(int stream, std::int64_t t_us, std::string_view by, int code);
    // The recorder stops: every stream still open is closed by "recorder" (its audio written).
    void finish(std::int64_t t_us);

  private:
    void line(const std::string& json);
    std::filesystem::path path_;
    std::ofstream out_;
    bool redact_ = false;
    std::map<int, std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>> audio_;
};

}  // namespace mediasim::sim::session
