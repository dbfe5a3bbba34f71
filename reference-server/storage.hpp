// Storage of every call under --data: one WAV per stream (μ-law 8 kHz; mono for inbound-only
// streams, stereo for bidirectional and both_tracks streams: caller left, other side right,
// aligned in time) and SQLite in WAL mode (calls, streams, events, transcripts).
//
// Nothing received is lost: audio reaches the OS at least every second and WAV headers are
// rewritten at least every second; SQLite writes are batched by one writer thread. After a
// crash, Storage::open() repairs the WAVs and marks unfinished streams.
//
// Thread model: Storage is shared by all sessions and is thread-safe. A StreamRecorder belongs
// to one media session and is used from that session's thread only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/protocol.hpp"
#include "core/result.hpp"

namespace mediasim::server {

struct CallInfo {
    std::string call_sid;
    std::string account_sid;
    std::string from;
    std::string to;
    std::string direction;     // "inbound", ...
    std::string flow;          // the TwiML flow that answered
    core::Parameters webhook;  // every parameter of the voice webhook
};

struct StreamInfo {
    std::string stream_sid;
    std::string call_sid;
    std::string account_sid;
    std::vector<core::Track> tracks;
    bool bidirectional = false;  // <Connect><Stream>: the server may send audio
    core::Parameters custom_parameters;
    std::string path;  // the WebSocket request path, e.g. "/media/CA…"
};

struct TranscriptSegment {
    std::string call_sid;
    std::string stream_sid;
    std::string track;  // "inbound" or "outbound"
    bool final = true;  // false: a partial result
    std::string text;
    double start_seconds = 0;  // since the stream started
    double end_seconds = 0;
};

// Counters for /metrics, read at any time.
struct StorageStats {
    std::uint64_t open_recordings = 0;     // streams being recorded now
    std::uint64_t db_queue_depth = 0;      // rows waiting for the writer thread
    std::uint64_t db_rows_written = 0;     // since open
    std::uint64_t db_errors = 0;           // rows or transactions SQLite refused
    std::uint64_t recording_errors = 0;    // recordings whose WAV could not be written
    std::uint64_t gaps_filled = 0;         // timestamp gaps (> 10 ms) filled with silence
    std::uint64_t frames_overlapping = 0;  // frames whose timestamp overlapped the previous
                                           // frame: appended after it, never overwritten
    std::uint64_t timestamps_clamped = 0;  // timestamps more than 10 s ahead of the wall clock
                                           // since the stream began, placed at that limit
    std::uint64_t repaired_on_open = 0;    // streams found unfinished (crash) and repaired
};

// Records one stream. Audio goes to the WAV; events go to SQLite.
class StreamRecorder {
  public:
    virtual ~StreamRecorder() = default;
    // Caller audio (inbound track), at the frame's media timestamp.
    virtual void inbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t timestamp_ms) = 0;
    // Audio on the other side. For both_tracks streams: Twilio's outbound track at its
    // timestamp. For bidirectional streams: audio the server sent back, played out in time from
    // `at_ms` (ms since the stream started) after whatever is still queued, as Twilio plays it.
    virtual void outbound_audio(std::span<const std::uint8_t> mulaw, std::uint64_t at_ms) = 0;
    // The server sent `clear` at at_ms: queued outbound audio not yet played is dropped.
    virtual void outbound_clear(std::uint64_t at_ms) = 0;
    // An event row: kind is "start", "dtmf", "mark_sent", "mark_echoed", "clear", "stop",
    // "error", ...; detail is a short JSON object or text.
    virtual void event(std::string_view kind, std::string_view detail) = 0;
    // Finishes the WAV and marks the stream ended ("stop", "closed", "error").
    virtual void finish(std::string_view how) = 0;
};

class Storage {
  public:
    virtual ~Storage() = default;

    // Opens or creates the store under data_dir, repairing what a crash left behind.
    static core::Result<std::unique_ptr<Storage>> open(const std::filesystem::path& data_dir);

    virtual void record_call(const CallInfo& call) = 0;
    virtual void call_event(std::string_view call_sid, std::string_view kind,
                            std::string_view detail) = 0;
    virtual std::unique_ptr<StreamRecorder> begin_stream(const StreamInfo& stream) = 0;
    virtual void add_transcript(const TranscriptSegment& segment) = 0;

    // Reading back (the API). JSON text, ready to serve.
    virtual std::string calls_json(std::size_t limit = 100) = 0;
    // nullopt when the call is unknown.
    virtual std::optional<std::string> call_json(std::string_view call_sid) = 0;
    virtual std::optional<std::string> transcript_text(std::string_view call_sid) = 0;
    // The recording of the call's first stream (WAV), if any.
    virtual std::optional<std::filesystem::path> recording_path(std::string_view call_sid) = 0;

    // Pushes everything buffered to disk (SIGTERM path); safe to call more than once.
    virtual void flush() = 0;

    // Counters; implementations that keep none return zeros.
    virtual StorageStats stats() { return {}; }
};

}  // namespace mediasim::server
