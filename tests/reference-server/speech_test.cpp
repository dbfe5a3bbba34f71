// Speech: the VAD, word error counting, the assistant's rule table, the transcription pool (with
// a deliberately slow engine), PocketSphinx on espeak-ng audio, and the OpenAI-compatible engine
// against a small endpoint in this file that speaks that protocol and checks each request.
#include "reference-server/speech.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numbers>
#include <thread>

#include "core/g711.hpp"
#include "core/resample.hpp"
#include "core/tts.hpp"
#include "core/wav.hpp"

namespace mediasim::server {
namespace {

using namespace std::chrono_literals;
using Pcm = std::vector<std::int16_t>;

Pcm tone_frame(double amplitude, int n = 160) {
    Pcm f(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        f[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(
            std::lround(amplitude * std::sin(2 * std::numbers::pi * 440.0 * i / 8000.0)));
    return f;
}

TEST(Vad, StartsAfterLoudFramesAndEndsAfterHangover) {
    Vad vad({-40.0, 3, 5});
    const Pcm quiet(160, 0), loud = tone_frame(10000);
    EXPECT_EQ(vad.push(quiet), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::speech_start);
    EXPECT_TRUE(vad.speaking());
    EXPECT_TRUE(vad.last_loud());
    EXPECT_EQ(vad.push(quiet), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);  // a short pause does not end it
    for (int i = 0; i < 4; ++i) EXPECT_EQ(vad.push(quiet), Vad::Edge::none);
    EXPECT_EQ(vad.push(quiet), Vad::Edge::speech_end);
    EXPECT_FALSE(vad.speaking());
    // A loud frame between quiet ones does not start one.
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);
    EXPECT_EQ(vad.push(quiet), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);
    EXPECT_EQ(vad.push(loud), Vad::Edge::none);
    EXPECT_LT(Vad::frame_dbfs(quiet), -100.0);
    EXPECT_NEAR(Vad::frame_dbfs(loud), -13.3, 0.5);      // 10000/32768 peak sine
    EXPECT_LT(Vad::frame_dbfs(tone_frame(200)), -40.0);  // quiet line noise stays silence
}

TEST(Words, NormalizeAndWordErrors) {
    EXPECT_EQ(normalize_words("  Hello, World!  It's  9 o'clock."), "hello world it's 9 o'clock");
    EXPECT_EQ(split_words("a  b,c").size(), 3u);
    auto w = word_errors("the cat sat on the mat", "the cat sat on the mat");
    EXPECT_EQ(w.errors, 0u);
    EXPECT_EQ(w.words, 6u);
    w = word_errors("the cat sat on the mat", "a cat sat the mat mat");  // 1 sub, 1 del, 1 ins
    EXPECT_EQ(w.errors, 3u);
    EXPECT_EQ(word_errors("one two", "").errors, 2u);
    EXPECT_EQ(word_errors("", "noise").errors, 1u);
}

TEST(Assistant, FirstMatchingRuleOnWordBoundariesElseFallback) {
    Assistant a({{"balance", "Forty two dollars."},
                 {"opening hours", "Nine to five."},
                 {"bye", "Goodbye."}},
                "Sorry?", "Hello.");
    EXPECT_EQ(a.greeting(), "Hello.");
    EXPECT_EQ(a.reply_to("I would like to check my BALANCE please"), "Forty two dollars.");
    EXPECT_EQ(a.reply_to("what are your opening hours"), "Nine to five.");
    EXPECT_EQ(a.reply_to("opening the hours"), "Sorry?");  // a phrase must occur as a whole
    EXPECT_EQ(a.reply_to("goodbye"), "Sorry?");            // "bye" is not a word of it
    EXPECT_EQ(a.reply_to("ok, bye!"), "Goodbye.");
    EXPECT_EQ(a.reply_to("balance and bye"), "Forty two dollars.");  // the first rule wins
    EXPECT_EQ(a.reply_to(""), "Sorry?");
}

// An engine that takes its time and remembers every sample it was fed.
class SlowEngine final : public SpeechEngine {
  public:
    struct Shared {
        std::atomic<std::uint64_t> samples{0};
        std::atomic<int> utterances{0};
        std::chrono::milliseconds per_chunk{0};
    };
    explicit SlowEngine(Shared& s) : s_(s) {}
    std::string name() const override { return "slow"; }
    core::Status begin(const Hints& h) override {
        n_ = 0;
        hint_ = h.phrases.empty() ? "" : h.phrases.front();
        return core::Ok{};
    }
    core::Status feed(std::span<const std::int16_t> pcm) override {
        std::this_thread::sleep_for(s_.per_chunk);
        n_ += pcm.size();
        s_.samples.fetch_add(pcm.size());
        return core::Ok{};
    }
    core::Result<std::string> end() override {
        s_.utterances.fetch_add(1);
        return fmt::format("{} {}", hint_, n_);
    }

  private:
    Shared& s_;
    std::size_t n_ = 0;
    std::string hint_;
};

TEST(TranscriptionService, SlowEngineQueuesAndDropsNothing) {
    SlowEngine::Shared shared;
    shared.per_chunk = 20ms;  // 200 ms chunks at 10x real time would need 2 ms
    TranscriptionOptions opts;
    opts.workers = 2;
    opts.chunk_ms = 200;
    opts.partials = false;
    opts.vad = {-40.0, 1, 5};
    auto svc = TranscriptionService::create(
        [&] {
            return core::Result<std::unique_ptr<SpeechEngine>>(
                std::make_unique<SlowEngine>(shared));
        },
        opts);
    ASSERT_TRUE(svc.ok()) << svc.error().to_string();
    EXPECT_EQ((*svc)->workers(), 2);

    std::mutex mu;
    std::vector<TranscriptEvent> events;
    const int kStreams = 4, kUtterances = 3, kLoudFrames = 100;  // 2 s of speech each
    std::vector<std::unique_ptr<TranscriptionService::Stream>> streams;
    for (int s = 0; s < kStreams; ++s)
        streams.push_back(
            (*svc)->open_stream(Hints{{fmt::format("s{}", s)}, ""}, [&](const TranscriptEvent& e) {
                std::lock_guard lock(mu);
                events.push_back(e);
            }));
    const Pcm quiet(160, 0), loud = tone_frame(8000);
    std::size_t max_depth = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::uint64_t ts = 0;
    for (int u = 0; u < kUtterances; ++u) {
        for (int f = 0; f < kLoudFrames + 20; ++f, ts += 20) {
            for (auto& st : streams) st->push(f < kLoudFrames ? loud : quiet, ts);
            max_depth = std::max(max_depth, (*svc)->queue_depth());
        }
    }
    // Pushing never waited for the engine: 4 streams x 6 s of audio went in far faster than
    // the engine could take it (60 chunks x 20 ms per worker).
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_GT(max_depth, 10u);
    EXPECT_GT((*svc)->queued_seconds(), 0.0);
    streams.clear();
    svc->reset();  // finishes queued work
    // Every utterance of every stream came back, with every sample: 8 kHz → 16 kHz doubles the
    // count; an utterance is the loud frames, the 200 ms lead-in before the VAD fired (quiet
    // frames; the first utterance has none) and the trailing quiet up to 200 ms (the VAD
    // hangover is 5 frames, so all 5 are kept).
    ASSERT_EQ(events.size(), static_cast<std::size_t>(kStreams * kUtterances));
    const std::size_t first = (kLoudFrames + 5) * 320, later = (10 + kLoudFrames + 5) * 320;
    EXPECT_EQ(shared.samples.load(), (first + later * (kUtterances - 1)) * kStreams);
    for (const auto& e : events) {
        EXPECT_TRUE(e.final);
        EXPECT_TRUE(e.error.empty());
        const auto n = std::stoul(e.text.substr(e.text.find(' ') + 1));
        EXPECT_TRUE(n == first || n == later) << e.text;
        // Times: from the lead-in to the end of the last loud frame.
        EXPECT_NEAR(e.end_seconds - e.start_seconds, static_cast<double>(n) / 16000.0 - 0.1, 0.001);
    }
}

// Caller audio as Twilio sends it: espeak-ng → 8 kHz μ-law → PCM.
Pcm phone_audio(const std::string& text) {
    auto mulaw = core::speak_mulaw(text);
    EXPECT_TRUE(mulaw.ok()) << mulaw.error().to_string();
    if (!mulaw.ok()) return {};
    Pcm pcm(mulaw->size());
    core::ulaw_decode(*mulaw, pcm.data());
    return pcm;
}

// One PocketSphinx engine for the tests below (the model takes most of a second to load).
SpeechEngine& sphinx() {
    static auto engine = make_pocketsphinx_engine({});
    EXPECT_TRUE(engine.ok()) << engine.error().to_string();
    return **engine;
}

Pcm to_16k(const Pcm& pcm8) {
    core::Resampler r(8000, 16000);
    Pcm out(r.max_output(pcm8.size()));
    out.resize(r.process(pcm8, out.data()));
    return out;
}

TEST(PocketSphinx, RecognisesPhoneAudioWithHints) {
    const Hints hints{{"I would like to check my balance", "what are your opening hours",
                       "thank you goodbye", "please transfer me to an agent"},
                      ""};
    for (const std::string said : {"What are your opening hours?", "Thank you, goodbye.",
                                   "I would like to check my balance."}) {
        auto r = sphinx().recognize(to_16k(phone_audio(said)), hints);
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        EXPECT_EQ(*r, normalize_words(said));
    }
}

TEST(PocketSphinx, GrammarHintsAndUnknownWords) {
    // A JSGF grammar of digits.
    Hints g;
    g.jsgf = "#JSGF V1.0;\ngrammar digits;\npublic <n> = (one | two | three | four | five)+ ;\n";
    auto r = sphinx().recognize(to_16k(phone_audio("three one four")), g);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, "three one four");
    // A bad grammar is an error, and the engine goes on working.
    Hints bad;
    bad.jsgf = "#JSGF V1.0; this is not a grammar";
    EXPECT_FALSE(sphinx().begin(bad).ok());
    // Phrases whose words the dictionary lacks are left out; with none left the language model
    // is used (and something is recognised).
    Hints unknown{{"zqxj vvkq"}, ""};
    auto lm = sphinx().recognize(to_16k(phone_audio("hello")), unknown);
    ASSERT_TRUE(lm.ok()) << lm.error().to_string();
}

TEST(TranscriptionService, PocketSphinxStreamGivesPartialAndFinalWithTimes) {
    TranscriptionOptions opts;
    opts.vad = {-40.0, 3, 25};
    auto svc = TranscriptionService::create([] { return make_pocketsphinx_engine({}); }, opts);
    ASSERT_TRUE(svc.ok()) << svc.error().to_string();
    std::mutex mu;
    std::condition_variable cv;
    std::vector<TranscriptEvent> events;
    auto stream = (*svc)->open_stream(
        Hints{{"I would like to check my balance", "what are your opening hours"}, ""},
        [&](const TranscriptEvent& e) {
            std::lock_guard lock(mu);
            events.push_back(e);
            cv.notify_all();
        });
    Pcm audio(8000, 0);  // 1 s of silence, then the words, then 1 s of silence
    const auto words = phone_audio("What are your opening hours?");
    audio.insert(audio.end(), words.begin(), words.end());
    audio.resize(audio.size() + 8000, 0);
    std::uint64_t ts = 0;
    for (std::size_t off = 0; off + 160 <= audio.size(); off += 160, ts += 20)
        stream->push(std::span<const std::int16_t>(audio).subspan(off, 160), ts);
    {
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return !events.empty() && events.back().final; }));
    }
    const auto& fin = events.back();
    EXPECT_EQ(fin.text, "what are your opening hours");
    EXPECT_TRUE(fin.error.empty()) << fin.error;
    // The times are stream times: the words start after the first second.
    EXPECT_NEAR(fin.start_seconds, 1.0, 0.35);
    EXPECT_NEAR(fin.end_seconds, 1.0 + static_cast<double>(words.size()) / 8000.0, 0.4);
    EXPECT_GE((*svc)->utterances(), 1u);
    EXPECT_GT((*svc)->real_time_factor(), 0.0);
    for (int i = 0; i < 100 && (*svc)->queue_depth() != 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ((*svc)->queue_depth(), 0u);
}

}  // namespace
}  // namespace mediasim::server
