#include "simulator/script.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/g711.hpp"

namespace mediasim::sim {
namespace {

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::int64_t us(std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}
std::int64_t ms(std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

const char* wait_name(WaitStep::For f) {
    switch (f) {
        case WaitStep::For::audio:
            return "bot audio";
        case WaitStep::For::silence:
            return "bot silence";
        case WaitStep::For::mark:
            return "a mark";
        case WaitStep::For::clear:
            return "a clear";
    }
    return "?";
}

}  // namespace

ScriptPlayer::ScriptPlayer(const std::vector<ScriptStep>& steps, TimePoint origin,
                           std::function<void(Metric, std::int64_t)> record)
    : steps_(steps), origin_(origin), record_(std::move(record)) {}

std::string ScriptPlayer::where() const {
    if (step_ >= steps_.size()) return "end of script";
    const int line = steps_[step_].line;
    return line > 0 ? fmt::format("steps[{}] (line {})", step_, line)
                    : fmt::format("steps[{}]", step_);
}

void ScriptPlayer::fail(std::string why) {
    if (failure_.empty()) failure_ = fmt::format("{}: {}", where(), why);
    done_ = true;
}

void ScriptPlayer::expect(bool ok, std::string what) {
    if (!ok) expectations_.push_back(fmt::format("{}: {}", where(), what));
}

void ScriptPlayer::start_step(std::uint64_t index) {
    step_started_ = true;
    step_start_ = due(index);
    speech_pos_ = 0;
    dtmf_pos_ = 0;
    next_digit_ = step_start_;
    silent_since_.reset();
    barge_bot_start_.reset();
    barge_speech_start_.reset();
    first_audio_in_step_.reset();
    marks_in_step_.clear();
    clear_in_step_.reset();
    wait_uses_turn_ = words_ended_ && !turn_consumed_;
}

void ScriptPlayer::finish_step(std::uint64_t) {
    ++step_;
    step_started_ = false;
}

void ScriptPlayer::bot_audio(TimePoint arrived) {
    if (!first_audio_in_step_) first_audio_in_step_ = arrived;
    if (words_ended_ && !first_audio_after_ && arrived >= *words_ended_) {
        first_audio_after_ = arrived;
        if (record_) record_(Metric::response_latency, us(arrived - *words_ended_));
    }
}

void ScriptPlayer::bot_mark(TimePoint, std::string_view name) {
    marks_in_step_.emplace_back(name);
}

void ScriptPlayer::bot_clear(TimePoint arrived) {
    if (!clear_in_step_) clear_in_step_ = arrived;
    if (clear_reference_ && arrived >= *clear_reference_) {
        const auto latency = arrived - *clear_reference_;
        if (record_) record_(Metric::clear_latency, us(latency));
        if (clear_within_.count() > 0 && latency > clear_within_)
            expectations_.push_back(fmt::format("{}: clear {} ms after the barge-in > {} ms",
                                                clear_where_, ms(latency), clear_within_.count()));
        clear_reference_.reset();
        clear_expected_by_.reset();
    }
}

ScriptPlayer::Frame ScriptPlayer::next_frame(std::uint64_t index, bool bot_playing,
                                             std::span<std::uint8_t, kFrameBytes> out) {
    Frame frame;
    std::memset(out.data(), core::kUlawSilence, out.size());
    const TimePoint t = due(index);
    if (clear_expected_by_ && t > *clear_expected_by_) {
        expectations_.push_back(fmt::format("{}: no clear within {} ms of the barge-in",
                                            clear_where_, clear_within_.count()));
        clear_expected_by_.reset();
        clear_reference_.reset();
    }
    if (done_) {
        frame.hangup = true;
        return frame;
    }
    // Steps that take no time (a satisfied wait, a finished silence) hand over within the tick.
    for (int guard = 0; guard < 1000; ++guard) {
        if (step_ >= steps_.size()) {
            done_ = true;
            frame.hangup = true;
            return frame;
        }
        if (!step_started_) start_step(index);
        bool next = false;  // the step finished without using this frame
        bool used = false;  // the frame is spoken for
        std::visit(
            Overloaded{
                [&](const SpeakStep& s) {
                    const auto& bytes = s.speech.mulaw;
                    if (speech_pos_ == 0) {
                        words_ended_.reset();
                        first_audio_after_.reset();
                    }
                    const std::size_t n = std::min(kFrameBytes, bytes.size() - speech_pos_);
                    std::memcpy(out.data(), bytes.data() + speech_pos_, n);
                    speech_pos_ += n;
                    used = n > 0;
                    if (speech_pos_ >= bytes.size()) {
                        words_ended_ = t + std::chrono::microseconds(n * 125);
                        first_audio_after_.reset();
                        turn_consumed_ = false;
                        finish_step(index);
                        next = !used;
                    }
                },
                [&](const SilenceStep& s) {
                    if (t - step_start_ >= s.duration) {
                        finish_step(index);
                        next = true;
                    } else {
                        used = true;
                    }
                },
                [&](const DtmfStep& s) {
                    if (dtmf_pos_ < s.digits.size() && t >= next_digit_) {
                        frame.dtmf += s.digits[dtmf_pos_++];
                        next_digit_ = t + s.gap;
                    }
                    used = true;
                    if (dtmf_pos_ >= s.digits.size()) {
                        // The last key press is the end of the caller's input.
                        words_ended_ = t;
                        first_audio_after_.reset();
                        turn_consumed_ = false;
                        finish_step(index);
                    }
                },
                [&](const WaitStep& w) {
                    bool satisfied = false;
                    switch (w.what) {
                        case WaitStep::For::audio: {
                            const auto arrival =
                                wait_uses_turn_ ? first_audio_after_ : first_audio_in_step_;
                            if (arrival) {
                                const TimePoint ref = wait_uses_turn_ ? *words_ended_ : step_start_;
                                const auto latency =
                                    *arrival > ref ? *arrival - ref : TimePoint::duration::zero();
                                if (w.within)
                                    expect(
                                        latency <= *w.within,
                                        fmt::format("bot audio {} ms after {} > {} ms", ms(latency),
                                                    wait_uses_turn_ ? "the caller's words"
                                                                    : "the wait began",
                                                    w.within->count()));
                                turn_consumed_ = true;
                                satisfied = true;
                            } else if (!wait_uses_turn_ && bot_playing) {
                                satisfied = true;  // the bot is talking already
                            }
                            break;
                        }
                        case WaitStep::For::silence:
                            if (bot_playing) {
                                silent_since_.reset();
                            } else {
                                if (!silent_since_) silent_since_ = t;
                                satisfied = t - *silent_since_ >= w.silence;
                            }
                            break;
                        case WaitStep::For::mark:
                            satisfied = std::any_of(marks_in_step_.begin(), marks_in_step_.end(),
                                                    [&](const std::string& m) {
                                                        return w.mark.empty() || m == w.mark;
                                                    });
                            break;
                        case WaitStep::For::clear:
                            satisfied = clear_in_step_.has_value();
                            break;
                    }
                    if (satisfied) {
                        finish_step(index);
                        next = true;
                    } else if (t - step_start_ >= w.timeout) {
                        fail(fmt::format("no {}{} within {} ms", wait_name(w.what),
                                         w.what == WaitStep::For::mark && !w.mark.empty()
                                             ? fmt::format(" \"{}\"", w.mark)
                                             : std::string(),
                                         w.timeout.count()));
                    } else {
                        used = true;
                    }
                },
                [&](const BargeInStep& b) {
                    if (!barge_bot_start_) {
                        if (bot_playing || first_audio_in_step_) {
                            barge_bot_start_ = t;
                        } else if (t - step_start_ >= b.timeout) {
                            fail(fmt::format("no bot audio to barge in on within {} ms",
                                             b.timeout.count()));
                            return;
                        } else {
                            used = true;
                            return;
                        }
                    }
                    if (t - *barge_bot_start_ < b.after) {
                        used = true;
                        return;
                    }
                    const auto& bytes = b.speech.mulaw;
                    if (!barge_speech_start_) {
                        barge_speech_start_ = t;
                        words_ended_.reset();
                        first_audio_after_.reset();
                        clear_reference_ = t;
                        clear_where_ = where();
                        clear_within_ = b.clear_within.value_or(std::chrono::milliseconds(0));
                        if (b.clear_within) clear_expected_by_ = t + *b.clear_within;
                    }
                    const std::size_t n = std::min(kFrameBytes, bytes.size() - speech_pos_);
                    std::memcpy(out.data(), bytes.data() + speech_pos_, n);
                    speech_pos_ += n;
                    used = true;
                    if (speech_pos_ >= bytes.size()) {
                        words_ended_ = t + std::chrono::microseconds(n * 125);
                        turn_consumed_ = false;
                        finish_step(index);
                    }
                },
                [&](const HangupStep&) {
                    done_ = true;
                    frame.hangup = true;
                },
            },
            steps_[step_].step);
        if (done_) {
            frame.hangup = true;
            return frame;
        }
        if (used || !next) return frame;
    }
    return frame;
}

}  // namespace mediasim::sim
