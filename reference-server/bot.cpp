#include "reference-server/bot.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <deque>
#include <numbers>

#include "core/g711.hpp"

namespace mediasim::server {

Vad::Options vad_options(const BotOptions& o) {
    Vad::Options v;
    v.threshold_dbfs = o.vad_threshold_dbfs;
    v.start_frames = std::max(1, o.vad_start_ms / 20);
    v.hangover_frames = std::max(1, o.silence_ms / 20);
    return v;
}

std::vector<std::uint8_t> make_tone(double frequency_hz, int duration_ms, double amplitude) {
    const std::size_t n = static_cast<std::size_t>(duration_ms) * 8;
    std::vector<std::int16_t> pcm(n);
    for (std::size_t i = 0; i < n; ++i)
        pcm[i] = static_cast<std::int16_t>(std::lround(
            amplitude * 32767.0 *
            std::sin(2.0 * std::numbers::pi * frequency_hz * static_cast<double>(i) / 8000.0)));
    std::vector<std::uint8_t> out(n);
    core::ulaw_encode(pcm, out.data());
    return out;
}

namespace {

constexpr int kFrameMs = 20;

class EchoBot final : public Bot {
  public:
    explicit EchoBot(const BotOptions& o)
        : start_frames_(std::max(1, o.vad_start_ms / kFrameMs)),
          hangover_frames_(std::max(1, o.silence_ms / kFrameMs)),
          max_bytes_(static_cast<std::size_t>(o.max_utterance_ms) * 8),
          greeting_(o.greeting_audio) {}

    void on_start(BotOutput& out) override {
        if (!greeting_ || greeting_->empty()) return;
        out.play(*greeting_);
        send_mark(out, "greeting");
    }

    void on_caller_audio(const CallerFrame& frame, BotOutput& out) override {
        const auto mulaw = frame.mulaw;
        const auto edge = frame.edge;
        const bool was_speaking =
            edge == Vad::Edge::none ? frame.speaking : edge == Vad::Edge::speech_end;
        if (!was_speaking) {
            // Keep the frames that led up to speech_start, so the echo starts with the word.
            // (The oldest frame's buffer is reused: no allocation per frame of silence.)
            if (preroll_.size() >= static_cast<std::size_t>(start_frames_)) {
                auto oldest = std::move(preroll_.front());
                preroll_.pop_front();
                oldest.assign(mulaw.begin(), mulaw.end());
                preroll_.push_back(std::move(oldest));
            } else {
                preroll_.emplace_back(mulaw.begin(), mulaw.end());
            }
            while (preroll_.size() > static_cast<std::size_t>(start_frames_)) preroll_.pop_front();
        } else if (utterance_.size() + mulaw.size() <= max_bytes_) {
            utterance_.insert(utterance_.end(), mulaw.begin(), mulaw.end());
            frame_sizes_.push_back(mulaw.size());
        }
        if (edge == Vad::Edge::speech_start) {
            utterance_.clear();
            frame_sizes_.clear();
            for (const auto& f : preroll_) {
                utterance_.insert(utterance_.end(), f.begin(), f.end());
                frame_sizes_.push_back(f.size());
            }
            preroll_.clear();
            if (!pending_marks_.empty()) {
                out.clear();  // barge-in: the caller talks over the bot
                // Twilio echoes every pending mark after a clear; they stay pending until then.
            }
        } else if (edge == Vad::Edge::speech_end) {
            // Drop the trailing silence that ended the utterance.
            for (int i = 0; i < hangover_frames_ && !frame_sizes_.empty(); ++i) {
                utterance_.resize(utterance_.size() - frame_sizes_.back());
                frame_sizes_.pop_back();
            }
            if (!utterance_.empty()) {
                out.play(utterance_);
                send_mark(out, fmt::format("echo-{}", ++utterances_));
            }
            utterance_.clear();
            frame_sizes_.clear();
        }
    }

    void on_dtmf(char, BotOutput& out) override {
        out.play(make_tone(880.0, 200));
        send_mark(out, fmt::format("tone-{}", ++tones_));
    }

    void on_mark(std::string_view name, BotOutput&) override {
        for (auto it = pending_marks_.begin(); it != pending_marks_.end(); ++it)
            if (*it == name) {
                pending_marks_.erase(it);
                break;
            }
    }

  private:
    void send_mark(BotOutput& out, std::string name) {
        out.mark(name);
        pending_marks_.push_back(std::move(name));
    }

    int start_frames_, hangover_frames_;
    std::size_t max_bytes_;
    std::deque<std::vector<std::uint8_t>> preroll_;
    std::vector<std::uint8_t> utterance_;
    std::vector<std::size_t> frame_sizes_;
    std::deque<std::string> pending_marks_;  // sent, not yet echoed: the bot is "playing"
    std::uint64_t utterances_ = 0, tones_ = 0;
    std::shared_ptr<const std::vector<std::uint8_t>> greeting_;
};

class AssistantBot final : public Bot {
  public:
    AssistantBot(const BotOptions& o, const SpeechServices& speech)
        : greeting_(o.greeting_audio), speech_(speech) {}

    void on_start(BotOutput& out) override {
        if (!greeting_ || greeting_->empty()) return;
        out.play(*greeting_);
        send_mark(out, "greeting");
    }

    void on_caller_audio(const CallerFrame& frame, BotOutput& out) override {
        if (frame.edge == Vad::Edge::speech_start && !pending_marks_.empty()) {
            out.clear();  // barge-in: stop talking; Twilio echoes the pending marks
            pending_marks_.clear();
        }
    }

    void on_transcript(const TranscriptEvent& e, BotOutput& out) override {
        if (!e.final || !speech_.assistant || normalize_words(e.text).empty()) return;
        const auto answer = speech_.assistant->reply_to(e.text);
        const auto it = speech_.voice.find(answer);
        if (it == speech_.voice.end() || it->second.empty()) return;
        out.play(it->second);
        send_mark(out, fmt::format("reply-{}", ++replies_));
    }

    void on_dtmf(char, BotOutput& out) override {
        out.play(make_tone(880.0, 200));
        send_mark(out, fmt::format("tone-{}", ++tones_));
    }

    void on_mark(std::string_view name, BotOutput&) override {
        std::erase(pending_marks_, std::string(name));
    }

  private:
    void send_mark(BotOutput& out, std::string name) {
        out.mark(name);
        pending_marks_.push_back(std::move(name));
    }

    std::shared_ptr<const std::vector<std::uint8_t>> greeting_;
    const SpeechServices& speech_;
    std::vector<std::string> pending_marks_;
    std::uint64_t replies_ = 0, tones_ = 0;
};

}  // namespace

std::unique_ptr<Bot> make_echo_bot(const BotOptions& opts) {
    return std::make_unique<EchoBot>(opts);
}

std::unique_ptr<Bot> make_assistant_bot(const BotOptions& opts, const SpeechServices& speech) {
    return std::make_unique<AssistantBot>(opts, speech);
}

}  // namespace mediasim::server
