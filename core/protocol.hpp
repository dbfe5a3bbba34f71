// The Twilio Media Streams message model: one typed struct per message, both directions.
// This is the only place where frames become JSON and JSON becomes frames; the simulator, the
// reference server, the checker and the tests all go through it.
//
// General path: nlohmann/json, strict validation, errors name the field path, e.g.
//   start.mediaFormat.sampleRate: expected a number, got the string "8000"
// Media fast path (every 20 ms, both sides): simdjson parse into views + direct appends to build,
// with no allocation per frame once the caller's buffers have grown.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/params.hpp"
#include "core/result.hpp"

namespace mediasim::core {

enum class Track { inbound, outbound };
const char* to_string(Track t);  // "inbound", "outbound"

struct MediaFormat {
    std::string encoding = "audio/x-mulaw";
    int sample_rate = 8000;
    int channels = 1;
    bool operator==(const MediaFormat&) const = default;
};

// ---- Twilio → server -------------------------------------------------------------------------
// sequenceNumber, chunk and timestamp are JSON strings on the wire; they are integers here.

struct ConnectedMsg {
    std::string protocol = "Call";
    std::string version = "1.0.0";
    bool operator==(const ConnectedMsg&) const = default;
};

struct StartMsg {
    std::uint64_t sequence_number = 1;
    std::string stream_sid;
    std::string account_sid;
    std::string call_sid;
    std::vector<Track> tracks{Track::inbound};
    Parameters custom_parameters;
    MediaFormat media_format;
    bool operator==(const StartMsg&) const = default;
};

struct MediaMsg {
    std::uint64_t sequence_number = 0;
    std::string stream_sid;
    Track track = Track::inbound;
    std::uint64_t chunk = 0;         // per track, from 1
    std::uint64_t timestamp_ms = 0;  // since the stream started
    std::string payload;             // base64 μ-law, as on the wire
    bool operator==(const MediaMsg&) const = default;
};

struct DtmfMsg {
    std::uint64_t sequence_number = 0;
    std::string stream_sid;
    std::string track = "inbound_track";
    char digit = '0';  // 0-9, *, #
    bool operator==(const DtmfMsg&) const = default;
};

struct MarkMsg {  // also the server → Twilio mark; sequence_number is 0 (absent) in that direction
    std::uint64_t sequence_number = 0;
    std::string stream_sid;
    std::string name;
    bool operator==(const MarkMsg&) const = default;
};

struct StopMsg {
    std::uint64_t sequence_number = 0;
    std::string stream_sid;
    std::string account_sid;
    std::string call_sid;
    bool operator==(const StopMsg&) const = default;
};

using TwilioMessage = std::variant<ConnectedMsg, StartMsg, MediaMsg, DtmfMsg, MarkMsg, StopMsg>;

// ---- server → Twilio -------------------------------------------------------------------------

struct ServerMediaMsg {
    std::string stream_sid;
    std::string payload;  // base64 μ-law
    bool operator==(const ServerMediaMsg&) const = default;
};
struct ServerMarkMsg {
    std::string stream_sid;
    std::string name;
    bool operator==(const ServerMarkMsg&) const = default;
};
struct ClearMsg {
    std::string stream_sid;
    bool operator==(const ClearMsg&) const = default;
};

using ServerMessage = std::variant<ServerMediaMsg, ServerMarkMsg, ClearMsg>;

// A parsed message plus the fields the spec does not define for it (Twilio warns with 31951
// about extra fields, so a checker reports them; they are not an error here).
template <class M>
struct Parsed {
    M message;
    std::vector<std::string> extra_fields;  // field paths, e.g. "media.track"
};

// Strict parsers. Errors carry the field path ("" for the whole frame) and what was wrong.
Result<Parsed<TwilioMessage>> parse_twilio_message(std::string_view text);
Result<Parsed<ServerMessage>> parse_server_message(std::string_view text);

// Serialisers: compact JSON, field order and types exactly as Twilio's wire format.
std::string to_json(const TwilioMessage& m);
std::string to_json(const ServerMessage& m);
void append_json(const TwilioMessage& m, std::string& out);
void append_json(const ServerMessage& m, std::string& out);

// Name of the event ("connected", "media", ...).
const char* event_name(const TwilioMessage& m);
const char* event_name(const ServerMessage& m);

// ---- the per-frame fast path -----------------------------------------------------------------

// Appends a Twilio → server media message built from raw μ-law bytes (base64 done here).
void append_media_json(std::string& out, std::string_view stream_sid, std::uint64_t sequence_number,
                       Track track, std::uint64_t chunk, std::uint64_t timestamp_ms,
                       std::span<const std::uint8_t> mulaw);
// Appends a server → Twilio media message built from raw μ-law bytes.
void append_server_media_json(std::string& out, std::string_view stream_sid,
                              std::span<const std::uint8_t> mulaw);

// Views into the parser's buffer; valid until the next parse call on the same parser.
struct MediaView {
    std::uint64_t sequence_number = 0;
    std::string_view stream_sid;
    Track track = Track::inbound;
    std::uint64_t chunk = 0;
    std::uint64_t timestamp_ms = 0;
    std::string_view payload;  // base64
};
struct ServerMediaView {
    std::string_view stream_sid;
    std::string_view payload;   // base64
    bool extra_fields = false;  // fields the spec does not define (parse_server_message names them)
};

// The fast parser for media messages (simdjson on demand). It validates as strictly as the
// general parser for the fields it reads. A frame that is valid JSON but not a media message
// gives Kind::other, and the caller falls back to parse_twilio_message / parse_server_message.
// One parser per thread or per session.
class FastParser {
  public:
    enum class Kind { media, other, invalid };

    FastParser();
    ~FastParser();
    FastParser(FastParser&&) noexcept;
    FastParser& operator=(FastParser&&) noexcept;

    // Twilio → server. On Kind::media, media() holds the message; on Kind::invalid, error().
    Kind parse_twilio(std::string_view text);
    // Server → Twilio. On Kind::media, server_media() holds the message.
    Kind parse_server(std::string_view text);

    const MediaView& media() const { return media_; }
    const ServerMediaView& server_media() const { return server_media_; }
    const Diagnostic& error() const { return error_; }

    // Decodes the payload of the last message parsed (either direction) into mulaw_out, which
    // must hold base64_decoded_max_size(payload.size()) bytes. Returns the bytes decoded.
    Result<std::size_t> decode_payload(std::uint8_t* mulaw_out) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    MediaView media_;
    ServerMediaView server_media_;
    Diagnostic error_;
    bool last_was_server_ = false;
};

}  // namespace mediasim::core
