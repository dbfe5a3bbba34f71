// Speech for the reference server: a voice activity detector, offline transcription on a
// bounded worker pool (PocketSphinx, or an OpenAI-compatible HTTP endpoint), text-to-speech
// through espeak-ng, and the assistant's rule table.
//
// The network threads only push audio and read VAD state; recognition runs on the workers and
// never blocks them. Audio is never dropped: utterances wait in a queue whose depth is a metric.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mediasim::server {

// Energy-based VAD on 8 kHz PCM16, 20 ms frames, with hangover.
class Vad {
  public:
    struct Options {
        double threshold_dbfs = -40.0;  // frame energy above this is speech
        int start_frames = 3;           // speech frames in a row to start an utterance
        int hangover_frames = 25;       // silent frames to end one (500 ms)
    };
    Vad();
    explicit Vad(Options opts);
    enum class Edge { none, speech_start, speech_end };
    Edge push(std::span<const std::int16_t> frame_8k);  // one 20 ms frame
    bool speaking() const { return speaking_; }

  private:
    Options opts_;
    bool speaking_ = false;
    int run_ = 0;
};

struct Hints {
    std::vector<std::string> phrases;  // phrases to expect (Gather hints, flow phrase list)
    std::string jsgf;                  // or a JSGF grammar (text)
};

// Recognises one utterance of 16 kHz PCM16.
class SpeechEngine {
  public:
    virtual ~SpeechEngine() = default;
    virtual std::string name() const = 0;
    virtual core::Result<std::string> recognize(std::span<const std::int16_t> pcm_16k,
                                                const Hints& hints) = 0;
};

struct PocketSphinxOptions {
    std::string model_dir;  // empty: Debian's pocketsphinx-en-us
};
core::Result<std::unique_ptr<SpeechEngine>> make_pocketsphinx_engine(const PocketSphinxOptions&);

struct OpenAiOptions {
    std::string url;  // e.g. http://127.0.0.1:9000/v1/audio/transcriptions
    std::string api_key;
    std::string model = "whisper-1";
};
core::Result<std::unique_ptr<SpeechEngine>> make_openai_engine(const OpenAiOptions&);

struct TranscriptEvent {
    std::string stream_key;  // the stream it belongs to (streamSid)
    bool final = true;
    std::string text;
    double start_seconds = 0;
    double end_seconds = 0;
};

// A bounded pool of workers, each with its own engine. Streams push 8 kHz audio frames; the VAD
// cuts utterances; utterances are resampled to 16 kHz (core::Resampler) and recognised.
class TranscriptionService {
  public:
    using EngineFactory = std::function<core::Result<std::unique_ptr<SpeechEngine>>()>;
    using Callback = std::function<void(const TranscriptEvent&)>;  // called on a worker thread

    TranscriptionService(EngineFactory factory, int workers, Callback on_event);
    ~TranscriptionService();  // finishes queued work, then joins

    class Stream {
      public:
        virtual ~Stream() = default;
        // One 20 ms frame of caller audio (8 kHz PCM16) at timestamp_ms. Returns the VAD edge
        // (speech_start is what the assistant uses for barge-in).
        virtual Vad::Edge push(std::span<const std::int16_t> frame_8k,
                               std::uint64_t timestamp_ms) = 0;
        virtual bool speaking() const = 0;
        virtual void set_hints(Hints hints) = 0;
        virtual void finish() = 0;  // flushes the current utterance
    };
    std::unique_ptr<Stream> open_stream(std::string stream_key, Hints hints = {});

    // Metrics.
    std::size_t queue_depth() const;
    double real_time_factor() const;  // processing time / audio time, over all work so far
    std::uint64_t utterances() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// espeak-ng → 8 kHz μ-law. Thread-safe (serialised internally: espeak-ng is not re-entrant).
class Tts {
  public:
    static core::Result<std::unique_ptr<Tts>> create(std::string voice = "en-us");
    virtual ~Tts() = default;
    virtual core::Result<std::vector<std::uint8_t>> synthesize_mulaw(std::string_view text) = 0;
};

// The assistant's rule table: keyword → answer; the first rule whose keyword occurs in the
// transcript (case-insensitive, whole words) answers; otherwise the fallback.
struct Rule {
    std::string keyword;
    std::string answer;
};
class Assistant {
  public:
    Assistant(std::vector<Rule> rules, std::string fallback, std::string greeting);
    const std::string& greeting() const { return greeting_; }
    std::string reply_to(std::string_view transcript) const;

  private:
    std::vector<Rule> rules_;
    std::string fallback_;
    std::string greeting_;
};

}  // namespace mediasim::server
