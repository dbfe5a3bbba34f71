// What talks back on a bidirectional (<Connect>) stream. The media session feeds the bot the
// caller's audio and the marks Twilio echoes; the bot answers through BotOutput. A speaking bot
// (speech → transcript → answer → TTS) replaces the echo bot behind the same interface.
//
// Used from one media session's thread only; no locking.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reference-server/server_config.hpp"
#include "reference-server/speech.hpp"

namespace mediasim::server {

class BotOutput {
  public:
    virtual ~BotOutput() = default;
    virtual void play(std::span<const std::uint8_t> mulaw) = 0;  // queued by Twilio, in order
    virtual void mark(std::string_view name) = 0;
    virtual void clear() = 0;  // drops queued audio; Twilio echoes pending marks at once
};

// One frame of caller audio, with what the stream's VAD made of it (the session runs one VAD
// per stream: transcription's when the stream is transcribed, else its own).
struct CallerFrame {
    std::span<const std::uint8_t> mulaw;  // usually 160 bytes = 20 ms
    std::span<const std::int16_t> pcm;    // the same, decoded (8 kHz)
    std::uint64_t timestamp_ms = 0;       // media timestamp
    Vad::Edge edge = Vad::Edge::none;
    bool speaking = false;  // after this frame
};

// The stream's VAD settings from the bot options.
Vad::Options vad_options(const BotOptions& o);

class Bot {
  public:
    virtual ~Bot() = default;
    virtual void on_caller_audio(const CallerFrame& frame, BotOutput& out) = 0;
    virtual void on_dtmf(char digit, BotOutput& out) = 0;
    virtual void on_mark(std::string_view name, BotOutput& out) = 0;
    // The stream has started (after `start`): a bot may speak first, as most voice bots do.
    virtual void on_start(BotOutput&) {}
    // A transcript of the caller (on the session's thread, after the utterance it belongs to).
    virtual void on_transcript(const TranscriptEvent&, BotOutput&) {}
};

// Echo: greets the caller when the stream starts (BotOptions::greeting_audio, then the mark
// "greeting"); when the caller stops talking, sends their last utterance back as media followed by
// a mark ("echo-N"); a DTMF digit is answered with a short tone and a mark ("tone-N"). When the
// caller starts talking while the bot's audio is still playing (a mark not yet echoed), it
// sends `clear` (barge-in).
std::unique_ptr<Bot> make_echo_bot(const BotOptions& opts);

// Assistant: greets (BotOptions::greeting_audio, mark "greeting"); answers each final transcript
// with the rule table's answer, spoken (SpeechServices::voice) as media and a mark ("reply-N");
// when the caller starts talking while a mark is pending (the bot is talking), sends `clear` and
// stops talking (barge-in). A DTMF digit gets a tone, as with the echo bot.
std::unique_ptr<Bot> make_assistant_bot(const BotOptions& opts, const SpeechServices& speech);

// 8 kHz μ-law sine tone (used for DTMF answers and tests).
std::vector<std::uint8_t> make_tone(double frequency_hz, int duration_ms, double amplitude = 0.3);

}  // namespace mediasim::server
