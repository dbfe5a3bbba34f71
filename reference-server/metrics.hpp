// The server's counters, rendered in the Prometheus text format for GET /metrics.
// Everything is an atomic so network threads update without locks; bad-frame reasons are a
// fixed enum so the set of series is known up front.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace mediasim::server {

// Why a frame from Twilio was rejected (each is logged and counted; the connection is kept).
enum class BadFrame {
    invalid_json,      // not JSON, or not an object
    unknown_event,     // "event" missing or not one Twilio sends
    bad_field,         // a field missing, of the wrong type or out of range
    bad_base64,        // media payload is not standard padded base64
    wrong_stream_sid,  // streamSid differs from the one in start
    sequence_gap,      // sequenceNumber did not rise by exactly 1
    chunk_gap,         // media.chunk did not rise by exactly 1 on its track
    unexpected_track,  // media on a track not listed in start.tracks
    out_of_order,      // start before connected, media before start, anything after stop
    binary_frame,      // Twilio only sends text frames
    unknown_mark,      // a mark echo for a mark this server never sent
    count_
};
inline constexpr std::size_t kBadFrameKinds = static_cast<std::size_t>(BadFrame::count_);
const char* to_string(BadFrame b);

// A limit the server enforced (see Limits in server_config.hpp).
enum class Limit {
    max_streams,       // an upgrade refused with 503: too many open streams
    message_too_big,   // a WebSocket message over max_message_bytes (closed with 1009)
    idle_timeout,      // a stream that sent nothing for idle_timeout_seconds (closed)
    http_timeout,      // a request that did not arrive whole within http_timeout_seconds
    body_too_large,    // a request body over 64 kB (413)
    header_too_large,  // request headers over 16 kB (431)
    send_queue_full,   // frames to a slow reader dropped: send_queue_max_bytes reached
    write_timeout,     // a write to Twilio stuck for write_timeout_seconds (closed)
    count_
};
inline constexpr std::size_t kLimitKinds = static_cast<std::size_t>(Limit::count_);
const char* to_string(Limit l);

class Metrics {
  public:
    std::atomic<std::uint64_t> calls{0};             // POST /voice answered
    std::atomic<std::uint64_t> streams_total{0};     // streams started
    std::atomic<std::int64_t> streams_active{0};     // started and not yet ended
    std::atomic<std::uint64_t> connections_ws{0};    // WebSocket upgrades accepted
    std::atomic<std::uint64_t> frames_in{0};         // text frames received on /media
    std::atomic<std::uint64_t> media_frames_in{0};   // of which media
    std::atomic<std::uint64_t> frames_out{0};        // frames sent (media, mark, clear)
    std::atomic<std::uint64_t> media_frames_out{0};  // of which media
    std::atomic<std::uint64_t> marks_out{0};
    std::atomic<std::uint64_t> clears_out{0};
    std::atomic<std::uint64_t> dtmf_in{0};
    std::atomic<std::uint64_t> signature_rejected{0};  // 403 for a missing or bad signature
    std::atomic<std::uint64_t> http_requests{0};
    std::atomic<std::uint64_t> http_errors{0};  // 4xx/5xx answers

    void bad_frame(BadFrame b) { bad_frames_[static_cast<std::size_t>(b)].fetch_add(1); }
    std::uint64_t bad_frames(BadFrame b) const {
        return bad_frames_[static_cast<std::size_t>(b)].load();
    }
    void limit_hit(Limit l) { limit_hits_[static_cast<std::size_t>(l)].fetch_add(1); }
    std::uint64_t limit_hits(Limit l) const {
        return limit_hits_[static_cast<std::size_t>(l)].load();
    }
    std::atomic<std::uint64_t> frames_dropped_out{0};  // frames to a slow reader dropped
    std::atomic<std::uint64_t> websocket_errors{0};    // streams ended by a socket error

    // Frames received per second, over the last whole second (sample_rates() once a second).
    void sample_rates(double seconds_since_last);
    std::atomic<double> frames_in_per_second{0};
    std::atomic<double> frames_out_per_second{0};

    // A stream's final interarrival jitter (RFC 3550 estimator, milliseconds).
    void observe_jitter_ms(double jitter_ms);

    // How long a media frame was queued before it was handed to storage: the time it reached
    // the recorder minus the time it would have at the stream's best transit so far (its
    // timestamp plus the smallest arrival-minus-timestamp seen on its track). Time in the
    // socket while the server was busy elsewhere counts, and so does the sender's own lateness.
    void observe_frame_queue_us(std::int64_t us);
    std::uint64_t frame_queue_count() const { return queue_count_.load(); }
    std::uint64_t frame_queue_max_us() const { return queue_max_us_.load(); }
    // Frames queued more than `ms` (one of kQueueBucketsMs).
    std::uint64_t frame_queue_over_ms(double ms) const;

    // Prometheus text exposition format (version 0.0.4).
    std::string render() const;

  private:
    std::array<std::atomic<std::uint64_t>, kBadFrameKinds> bad_frames_{};
    std::array<std::atomic<std::uint64_t>, kLimitKinds> limit_hits_{};
    std::uint64_t last_frames_in_ = 0, last_frames_out_ = 0;  // sample_rates() only
    static constexpr std::array<double, 8> kJitterBucketsMs{0.5, 1, 2, 5, 10, 20, 50, 100};
    std::array<std::atomic<std::uint64_t>, kJitterBucketsMs.size()> jitter_buckets_{};
    std::atomic<std::uint64_t> jitter_count_{0};
    std::atomic<std::uint64_t> jitter_sum_us_{0};
    std::atomic<std::uint64_t> jitter_max_us_{0};
    static constexpr std::array<double, 11> kQueueBucketsMs{0.5, 1,   2,   5,   10,  20,
                                                            50,  100, 200, 500, 1000};
    // Not cumulative: frames whose queueing fell in (bucket i-1, bucket i]; the last: above.
    std::array<std::atomic<std::uint64_t>, kQueueBucketsMs.size() + 1> queue_buckets_{};
    std::atomic<std::uint64_t> queue_count_{0};
    std::atomic<std::uint64_t> queue_sum_us_{0};
    std::atomic<std::uint64_t> queue_max_us_{0};
};

// Resident set size of this process in bytes (from /proc/self/statm); 0 when unknown.
std::uint64_t resident_memory_bytes();

}  // namespace mediasim::server
