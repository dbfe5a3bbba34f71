// One Media Streams WebSocket, without the socket: the protocol state machine of the media
// endpoint. The network layer hands it each text frame with its arrival time and sends what it
// writes to its MediaSink; so it is tested frame by frame without a network.
//
// Every frame is validated (core/protocol.hpp only: FastParser for media, parse_twilio_message
// for the rest). A bad frame is logged (the first few per stream), counted by reason and
// dropped; the connection is kept, as Twilio keeps a stream going after its 31950/31951
// warnings. Interarrival jitter (RFC 3550 estimator) and frame counts are kept per track.
//
// Thread model: used from one connection's thread (its io_context) only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/protocol.hpp"
#include "reference-server/bot.hpp"
#include "reference-server/log.hpp"
#include "reference-server/metrics.hpp"
#include "reference-server/server_config.hpp"
#include "reference-server/storage.hpp"

namespace mediasim::server {

// Which calls this server answered with <Connect> (bidirectional) or <Start> (listen only), so
// a stream knows whether it may talk back. Thread-safe; remembers the most recent calls only.
class CallDirectory {
  public:
    explicit CallDirectory(std::size_t capacity = 100'000) : capacity_(capacity) {}
    void remember(const std::string& call_sid, Flow flow);
    std::optional<Flow> flow_of(const std::string& call_sid) const;

  private:
    mutable std::mutex mu_;
    std::size_t capacity_;
    std::map<std::string, Flow> flows_;
    std::vector<std::string> order_;  // insertion order, for eviction
    std::size_t next_evict_ = 0;
};

// Where the session's frames go (the WebSocket, or a test).
class MediaSink {
  public:
    virtual ~MediaSink() = default;
    virtual void send_text(std::string frame) = 0;
    // Runs fn on the session's thread later (transcripts arrive on worker threads); dropped if
    // the connection is gone by then. Thread-safe. The default runs it at once (tests).
    virtual void post(std::function<void()> fn) { fn(); }
    // For --fault only (faults.hpp): a binary frame, closing (abrupt: without a close frame), and
    // running fn on the session's thread after a delay (not at all once the socket is gone).
    virtual void send_binary(std::string) {}
    virtual void close_stream(bool /*abrupt*/) {}
    virtual void after(std::chrono::milliseconds, std::function<void()>) {}
};

struct MediaSessionDeps {
    Storage* storage = nullptr;  // may be null: nothing is recorded
    Metrics& metrics;
    Logger& log;
    const BotOptions& bot;
    const CallDirectory& calls;
    const SpeechServices* speech = nullptr;  // transcription and the assistant; null: none
    Fault fault = Fault::none;               // --fault (a testing aid)
};

// Per-track measurements.
struct TrackStats {
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;       // μ-law bytes decoded
    std::uint64_t last_chunk = 0;  // 0: none yet
    double jitter_ms = 0;          // RFC 3550 running estimate
    bool has_transit = false;
    double last_transit_ms = 0;
    std::int64_t best_transit_us = 0;  // least (handed to storage - timestamp) so far
};

class MediaSession final : private BotOutput {
  public:
    using Clock = std::chrono::steady_clock;
    MediaSession(std::string path, MediaSessionDeps deps, MediaSink& sink);
    ~MediaSession() override;
    MediaSession(const MediaSession&) = delete;
    MediaSession& operator=(const MediaSession&) = delete;

    void on_text(std::string_view frame, Clock::time_point arrival);
    void on_binary(std::size_t bytes);
    // The socket is gone (closed by Twilio, by error, or by the server stopping). Finishes the
    // stream if `stop` never came. Idempotent.
    void on_closed(std::string_view why);

    bool started() const { return started_; }
    bool stopped() const { return stopped_; }
    bool bidirectional() const { return bidirectional_; }
    const std::string& stream_sid() const { return start_.stream_sid; }
    const std::string& call_sid() const { return start_.call_sid; }
    const TrackStats& track(core::Track t) const { return tracks_[static_cast<int>(t)]; }
    std::uint64_t bad_frames() const { return bad_total_; }
    std::uint64_t bad_frames(BadFrame b) const { return bad_[static_cast<std::size_t>(b)]; }

  private:
    void on_media(const core::MediaView& m, std::span<const std::uint8_t> mulaw,
                  Clock::time_point arrival);
    void on_message(core::TwilioMessage& m);
    void on_start(core::StartMsg& m);
    void on_dtmf(const core::DtmfMsg& m);
    void on_mark(const core::MarkMsg& m);
    void on_stop(const core::StopMsg& m);
    // Checks sequenceNumber and streamSid of a message after `start`; false: drop the frame.
    bool check_sequence_and_sid(std::uint64_t seq, std::string_view stream_sid,
                                std::string_view event);
    void bad(BadFrame why, std::string_view detail);
    void finish(std::string_view how);
    void start_transcription(const core::StartMsg& m);
    void on_transcript(const TranscriptEvent& e);

    // BotOutput: what the bot sends goes to Twilio and to the recording.
    void play(std::span<const std::uint8_t> mulaw) override;
    void mark(std::string_view name) override;
    void clear() override;
    std::uint64_t stream_now_ms() const;
    // --fault: what a faulty server sends along with its first media frame (faults.hpp).
    void fault_first_media(std::span<const std::uint8_t> frame);
    // --fault burst-close / burst-deaf: true when this frame ends a burst and the stream closes.
    bool fault_burst(Clock::time_point arrival);

    std::string path_;
    MediaSessionDeps deps_;
    MediaSink& sink_;
    core::FastParser parser_;
    Clock::time_point opened_;

    bool connected_ = false, started_ = false, stopped_ = false, finished_ = false;
    bool bidirectional_ = false;
    core::StartMsg start_;
    std::uint64_t last_seq_ = 0;
    std::array<TrackStats, 2> tracks_{};
    std::uint64_t last_inbound_ts_ms_ = 0;
    std::array<std::uint64_t, kBadFrameKinds> bad_{};
    std::uint64_t bad_total_ = 0;
    std::vector<std::string> marks_sent_;  // not yet echoed
    std::vector<std::uint8_t> decoded_;    // payload buffer, reused
    std::string out_;                      // frame buffer, reused
    std::unique_ptr<StreamRecorder> recorder_;
    std::unique_ptr<Bot> bot_;
    // The stream's one VAD: inside transcription_ when the stream is transcribed, else vad_.
    std::optional<Vad> vad_;
    std::unique_ptr<TranscriptionService::Stream> transcription_;
    std::vector<std::int16_t> pcm_;  // decoded caller frame, reused
    // Where worker threads hand transcripts to this session; cleared when it finishes.
    struct Mailbox {
        std::recursive_mutex mu;  // recursive: a test sink's post() runs at once
        MediaSink* sink = nullptr;
        MediaSession* session = nullptr;
    };
    std::shared_ptr<Mailbox> mailbox_;
    bool fault_media_sent_ = false;
    bool caller_loud_ = false;  // the last inbound frame was speech (--fault midword-crash)
    std::uint64_t last_loud_ts_ms_ = 0;  // the last speech frame's timestamp (--fault drop-crash)
    // --fault burst-close / burst-deaf: the arrival times of the last inbound frames, and
    // whether a burst has made the bot deaf.
    std::array<Clock::time_point, 25> fault_arrivals_{};
    std::uint64_t fault_inbound_ = 0;
    bool fault_deaf_ = false;
};

}  // namespace mediasim::server
