// Speech for the reference server: the voice activity detector, offline transcription on a
// bounded worker pool (PocketSphinx, or an OpenAI-compatible HTTP endpoint) and the assistant's
// rule table. Text to speech is core/tts (espeak-ng); the assistant's answers are spoken once at
// start-up.
//
// The network threads only push audio and read VAD state; recognition runs on the workers and
// never blocks them. Audio is never dropped: utterance chunks wait in a queue whose depth is a
// metric.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::server {

// Frame-energy VAD on 8 kHz PCM16, one 20 ms frame at a time, with a start count and hangover.
// The one VAD of the server: the echo bot, the assistant's barge-in and transcription's
// utterance cutting all use it.
class Vad {
  public:
    struct Options {
        double threshold_dbfs = -40.0;  // frame energy above this is speech
        int start_frames = 3;           // loud frames in a row to start an utterance
        int hangover_frames = 25;       // quiet frames in a row to end one (500 ms)
    };
    Vad();
    explicit Vad(Options opts);
    enum class Edge { none, speech_start, speech_end };
    Edge push(std::span<const std::int16_t> frame);
    bool speaking() const { return speaking_; }
    bool last_loud() const { return last_loud_; }  // the last frame pushed was above threshold
    const Options& options() const { return opts_; }
    // RMS level of a frame in dBFS (-200 for digital silence or an empty frame).
    static double frame_dbfs(std::span<const std::int16_t> frame);

  private:
    Options opts_;
    bool speaking_ = false, last_loud_ = false;
    int run_ = 0;  // loud frames in a row (quiet) or quiet frames in a row (speaking)
};

// What the recogniser should expect: a phrase list (Twilio's <Gather hints>, a flow's phrase
// list) or a JSGF grammar. Empty: the general language model.
struct Hints {
    std::vector<std::string> phrases;
    std::string jsgf;  // grammar text
    bool empty() const { return phrases.empty() && jsgf.empty(); }
};

// Recognises utterances of 16 kHz PCM16, one at a time: begin, feed (any number of times), end.
// An engine is used by one worker thread at a time.
class SpeechEngine {
  public:
    virtual ~SpeechEngine() = default;
    virtual std::string name() const = 0;
    virtual core::Status begin(const Hints& hints) = 0;
    virtual core::Status feed(std::span<const std::int16_t> pcm_16k) = 0;
    // The best hypothesis so far, for engines that decode as audio arrives.
    virtual std::optional<std::string> partial() { return std::nullopt; }
    virtual core::Result<std::string> end() = 0;
    // begin + feed + end.
    core::Result<std::string> recognize(std::span<const std::int16_t> pcm_16k, const Hints& hints);
};

struct PocketSphinxOptions {
    std::string model_dir;  // empty: Debian's pocketsphinx-en-us (/usr/share/pocketsphinx/...)
};
// Loads the acoustic model, dictionary and language model (about 0.7 s). Phrase hints become a
// JSGF grammar of those phrases (words missing from the dictionary drop their phrase).
core::Result<std::unique_ptr<SpeechEngine>> make_pocketsphinx_engine(const PocketSphinxOptions&);

struct OpenAiOptions {
    std::string url;  // http(s)://host[:port]/v1/audio/transcriptions
    std::string api_key;
    std::string model = "whisper-1";
    int timeout_ms = 30'000;
};
// POSTs each utterance as multipart/form-data (file = 16 kHz PCM16 WAV, model, and the hints as
// `prompt`) with "Authorization: Bearer KEY"; reads {"text": ...} back.
core::Result<std::unique_ptr<SpeechEngine>> make_openai_engine(const OpenAiOptions&);

struct TranscriptEvent {
    bool final = true;  // false: a partial result of the utterance still being spoken
    std::string text;
    double start_seconds = 0;  // stream time (the caller's media timestamps)
    double end_seconds = 0;
    std::string error;  // the engine failed on this utterance (text is empty)
};

struct TranscriptionOptions {
    int workers = 1;     // engines, each on its own thread
    int chunk_ms = 200;  // audio handed to a worker at a time while the caller talks
    int max_utterance_ms = 15'000;
    bool partials = true;  // report partial hypotheses (engines that have them)
    Vad::Options vad;
};

// A bounded pool of workers, each with its own engine. A stream pushes 8 kHz frames; its VAD cuts
// utterances; each utterance is resampled to 16 kHz (core::Resampler) and fed, in chunks as it is
// spoken, to one worker (the one with the least queued audio when it began). Queues are
// unbounded: a slow engine makes results late, never drops audio.
class TranscriptionService {
  public:
    using EngineFactory = std::function<core::Result<std::unique_ptr<SpeechEngine>>()>;
    using Callback = std::function<void(const TranscriptEvent&)>;  // called on a worker thread

    // Makes the engines (in parallel, one per worker); the first failure is the error.
    static core::Result<std::unique_ptr<TranscriptionService>> create(EngineFactory factory,
                                                                      TranscriptionOptions opts);
    ~TranscriptionService();  // finishes queued work, then joins

    class Stream {
      public:
        virtual ~Stream() = default;  // finish()es
        // One 20 ms frame of caller audio (8 kHz PCM16) at its media timestamp. Returns the VAD
        // edge (speech_start is what the assistant uses for barge-in).
        virtual Vad::Edge push(std::span<const std::int16_t> frame_8k,
                               std::uint64_t timestamp_ms) = 0;
        virtual bool speaking() const = 0;
        virtual void set_hints(Hints hints) = 0;  // from the next utterance on
        virtual void finish() = 0;                // ends the current utterance (it is recognised)
    };
    // Events of the stream arrive in order on on_event, also after the Stream is gone (for the
    // utterance finish() ended).
    std::unique_ptr<Stream> open_stream(Hints hints, Callback on_event);
    // Waits until every utterance ended so far is recognised and its events delivered.
    void wait_idle();

    // Metrics.
    std::size_t queue_depth() const;  // chunks waiting for a worker
    double queued_seconds() const;    // audio in those chunks
    double real_time_factor() const;  // processing time / audio time, over all work so far
    double audio_seconds() const;     // audio recognised so far
    std::uint64_t utterances() const;
    std::uint64_t errors() const;
    int workers() const;
    std::string engine_name() const;

    struct Impl;

  private:
    explicit TranscriptionService(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The assistant's rule table: the first rule whose keyword (a word or phrase) occurs in the
// transcript, case-insensitive and on word boundaries, answers; otherwise the fallback.
struct Rule {
    std::string keyword;
    std::string answer;
};
class Assistant {
  public:
    Assistant(std::vector<Rule> rules, std::string fallback, std::string greeting);
    const std::string& greeting() const { return greeting_; }
    const std::string& fallback() const { return fallback_; }
    const std::vector<Rule>& rules() const { return rules_; }
    std::string reply_to(std::string_view transcript) const;

  private:
    std::vector<Rule> rules_;
    std::string fallback_;
    std::string greeting_;
};

// Lower case, punctuation removed, single spaces: how transcripts, keywords and WER references
// are compared.
std::string normalize_words(std::string_view text);
std::vector<std::string> split_words(std::string_view text);  // of normalize_words(text)
// Word error rate counts: (substitutions + deletions + insertions) over reference words.
struct WerCount {
    std::size_t errors = 0;
    std::size_t words = 0;
};
WerCount word_errors(std::string_view reference, std::string_view hypothesis);

// What the server's sessions share for speech: the transcription pool (null: off), hints per
// flow name, and the assistant with its answers already spoken (μ-law).
struct SpeechServices {
    TranscriptionService* transcription = nullptr;
    std::map<std::string, Hints> hints_by_flow;  // "stream", "greet", "fork", "gather"
    // The flow whose hints a stream gets when this server did not answer its call (a stream
    // opened directly, as `mediasim call --stream` does): the server's configured flow.
    std::string default_flow = "stream";
    std::shared_ptr<const Assistant> assistant;
    std::map<std::string, std::vector<std::uint8_t>> voice;  // text → μ-law (greeting, answers)
};

}  // namespace mediasim::server
