// What talks back on a bidirectional (<Connect>) stream. The media session feeds the bot the
// caller's audio and the marks Twilio echoes; the bot answers through BotOutput. A speaking bot
// (speech → transcript → answer → TTS) replaces the echo bot behind the same interface.
//
// Used from one media session's strand only; no locking.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reference-server/server_config.hpp"

namespace mediasim::server {

class BotOutput {
  public:
    virtual ~BotOutput() = default;
    virtual void play(std::span<const std::uint8_t> mulaw) = 0;  // queued by Twilio, in order
    virtual void mark(std::string_view name) = 0;
    virtual void clear() = 0;  // drops queued audio; Twilio echoes pending marks at once
};

class Bot {
  public:
    virtual ~Bot() = default;
    // One frame of caller audio (μ-law, usually 160 bytes = 20 ms) at its media timestamp.
    virtual void on_caller_audio(std::span<const std::uint8_t> mulaw, std::uint64_t timestamp_ms,
                                 BotOutput& out) = 0;
    virtual void on_dtmf(char digit, BotOutput& out) = 0;
    virtual void on_mark(std::string_view name, BotOutput& out) = 0;
    // The stream has started (after `start`): a bot may speak first, as most voice bots do.
    virtual void on_start(BotOutput&) {}
};

// Frame-energy voice activity detector over μ-law (decoded with core/g711) with start and
// hangover counts.
class EnergyVad {
  public:
    enum class Edge { none, speech_start, speech_end };
    EnergyVad(double threshold_dbfs, int start_frames, int hangover_frames);
    Edge push(std::span<const std::uint8_t> mulaw);
    bool speaking() const { return speaking_; }
    static double frame_dbfs(std::span<const std::uint8_t> mulaw);

  private:
    double threshold_dbfs_;
    int start_frames_, hangover_frames_;
    bool speaking_ = false;
    int run_ = 0;  // loud frames in a row (silent) or silent frames in a row (speaking)
};

// Echo: greets the caller when the stream starts (BotOptions::greeting_audio, then the mark
// "greeting"); when the caller stops talking, sends their last utterance back as media followed by
// a mark ("echo-N"); a DTMF digit is answered with a short tone and a mark ("tone-N"). When the
// caller starts talking while the bot's audio is still playing (a mark not yet echoed), it
// sends `clear` (barge-in).
std::unique_ptr<Bot> make_echo_bot(const BotOptions& opts);

// 8 kHz μ-law sine tone (used for DTMF answers and tests).
std::vector<std::uint8_t> make_tone(double frequency_hz, int duration_ms, double amplitude = 0.3);

}  // namespace mediasim::server
