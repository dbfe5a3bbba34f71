// Plays a scenario's steps as the caller, as pure logic with the clock passed in: the stream
// client asks for the caller's next 20 ms frame on every tick and tells the player what the bot
// did (audio arriving, its play-out, marks, clears). The player decides what the caller says,
// when keys are pressed and when the caller hangs up, checks the scenario's expectations and
// measures the turn-taking metrics (response latency, barge-in → clear).
//
// Times are steady_clock time points; frame k of the stream is due at origin + 20 ms * k, and
// latencies count from when things were due, never from when a late tick ran.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "simulator/scenario.hpp"
#include "simulator/stats.hpp"

namespace mediasim::sim {

class ScriptPlayer {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;
    static constexpr std::size_t kFrameBytes = 160;  // 20 ms of 8 kHz μ-law
    static constexpr std::chrono::milliseconds kFrame{20};

    // Measurements go to `record` (metric, microseconds); it may be empty.
    ScriptPlayer(const std::vector<ScriptStep>& steps, TimePoint origin,
                 std::function<void(Metric, std::int64_t)> record = {});

    struct Frame {
        std::string dtmf;     // digits to send as dtmf messages before this frame's media
        bool hangup = false;  // the caller hangs up now (the frame's audio is not sent)
    };
    // The caller's frame number `index` (due at origin + 20 ms * index), written to `out`.
    // `bot_playing` tells whether the bot's audio is being played out at that moment.
    Frame next_frame(std::uint64_t index, bool bot_playing,
                     std::span<std::uint8_t, kFrameBytes> out);

    // What the bot did, with the time it happened.
    void bot_audio(TimePoint arrived);
    void bot_mark(TimePoint arrived, std::string_view name);
    void bot_clear(TimePoint arrived);

    bool done() const { return done_; }
    // The call failed (a wait timed out): the reason, with the step. Empty while fine.
    const std::string& failure() const { return failure_; }
    // Expectations that did not hold, e.g. "steps[3] (line 14): response 2140 ms > 1500 ms".
    const std::vector<std::string>& expectation_failures() const { return expectations_; }
    std::size_t step_index() const { return step_; }

  private:
    TimePoint due(std::uint64_t index) const { return origin_ + kFrame * index; }
    void start_step(std::uint64_t index);
    void finish_step(std::uint64_t index);
    std::string where() const;
    void fail(std::string why);
    void expect(bool ok, std::string what);

    const std::vector<ScriptStep>& steps_;
    TimePoint origin_;
    std::function<void(Metric, std::int64_t)> record_;

    std::size_t step_ = 0;
    bool step_started_ = false;
    TimePoint step_start_{};
    std::size_t speech_pos_ = 0;                // speak / barge_in: bytes of speech sent
    std::size_t dtmf_pos_ = 0;                  // dtmf: digits sent
    TimePoint next_digit_{};                    // dtmf: when the next digit goes
    std::optional<TimePoint> silent_since_;     // wait for silence: bot silent since
    std::optional<TimePoint> barge_bot_start_;  // barge_in: when the bot's audio started
    std::optional<TimePoint> barge_speech_start_;

    // Turn taking.
    std::optional<TimePoint> words_ended_;        // end of the caller's last words (scheduled)
    std::optional<TimePoint> first_audio_after_;  // first bot audio after those words
    bool turn_consumed_ = false;                  // a wait for audio has used that turn
    bool wait_uses_turn_ = false;                 // the current wait counts from words_ended_
    std::optional<TimePoint> first_audio_in_step_;
    std::vector<std::string> marks_in_step_;
    std::optional<TimePoint> clear_in_step_;
    // A barge-in's clear expectation, checked when the clear comes or its time is up.
    std::optional<TimePoint> clear_expected_by_;
    std::optional<TimePoint> clear_reference_;
    std::chrono::milliseconds clear_within_{0};
    std::string clear_where_;

    bool done_ = false;
    std::string failure_;
    std::vector<std::string> expectations_;
};

}  // namespace mediasim::sim
