// Twilio's play-out of a bidirectional stream, as pure logic with the clock passed in: the
// server's `media` is queued and played in real time (8 μ-law bytes per ms, any payload size),
// a `mark` joins the same queue and is echoed once the audio queued before it has played (at
// once when nothing is queued), `clear` drops the queue and echoes every pending mark at once.
// What was played is kept on request (with μ-law silence where nothing played) so that a call
// can save what the bot said.
//
// Time is counted in samples (125 µs) from the origin given at construction, so that
// segments join without rounding drift.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mediasim::sim {

class Playout {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;
    static constexpr std::int64_t kBytesPerSecond = 8000;

    struct Echo {
        std::string name;
        TimePoint received;    // when the server's mark arrived
        TimePoint due;         // when its audio had played (or the clear, when flushed)
        bool flushed = false;  // echoed by a clear rather than by play-out
    };

    struct Pushed {
        bool started_speaking = false;  // the queue was empty: this audio starts at once
        // When the queue had run dry shortly before (within underrun_window), how long the gap
        // was: an underrun while the bot was speaking.
        std::optional<std::chrono::microseconds> underrun;
    };

    explicit Playout(TimePoint origin, bool record = false,
                     std::chrono::milliseconds underrun_window = std::chrono::milliseconds(300));

    // The server's media (decoded μ-law) arrived at `now`.
    Pushed push_audio(TimePoint now, std::span<const std::uint8_t> mulaw);
    // The server's mark arrived at `now`. With nothing queued it is echoed at once (see
    // take_echoes).
    void push_mark(TimePoint now, std::string name);
    // The server's clear arrived at `now`: drops the queue, echoes pending marks (flushed).
    // Returns the bytes of audio dropped.
    std::size_t clear(TimePoint now);

    // Plays everything due by `now`: marks whose audio has played become echoes; played audio
    // (and silence) goes to the recording.
    void advance(TimePoint now);

    // Echoes that are due, in order (after advance, push_mark or clear).
    std::vector<Echo> take_echoes();
    // When the next pending mark falls due (for a timer); nullopt when no mark is pending.
    std::optional<TimePoint> next_mark_due() const;
    // When everything queued so far will have played (`now` or earlier when idle).
    TimePoint busy_until() const { return time_of(busy_until_); }
    bool playing(TimePoint now) const { return busy_until_ > sample_of(now); }
    // Audio queued and not yet played, in bytes.
    std::size_t buffered_bytes(TimePoint now) const;

    // The recording so far (from the origin up to the last advance), when recording.
    const std::vector<std::uint8_t>& recorded() const { return recorded_; }
    std::vector<std::uint8_t> take_recorded();

    std::uint64_t bytes_received() const { return bytes_received_; }
    std::uint64_t bytes_played() const { return bytes_played_; }
    std::uint64_t bytes_dropped() const { return bytes_dropped_; }

  private:
    struct Segment {
        std::int64_t start = 0;  // sample index where it starts playing
        std::vector<std::uint8_t> bytes;
        std::size_t played = 0;  // bytes already handed to the recording / counted
        std::int64_t end() const { return start + static_cast<std::int64_t>(bytes.size()); }
    };
    struct PendingMark {
        std::string name;
        TimePoint received;
        std::int64_t due = 0;  // sample index
    };

    std::int64_t sample_of(TimePoint t) const;
    TimePoint time_of(std::int64_t sample) const;
    void record_until(std::int64_t sample);

    TimePoint origin_;
    bool record_;
    std::int64_t underrun_window_samples_;
    std::int64_t busy_until_ = 0;      // sample index where the queue runs out
    std::int64_t recorded_until_ = 0;  // sample index up to which play-out has been accounted
    std::int64_t last_audio_end_ = -1;
    std::deque<Segment> segments_;
    std::deque<PendingMark> marks_;
    std::vector<Echo> echoes_;
    std::vector<std::uint8_t> recorded_;
    std::uint64_t bytes_received_ = 0;
    std::uint64_t bytes_played_ = 0;
    std::uint64_t bytes_dropped_ = 0;
};

}  // namespace mediasim::sim
