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
#include <map>
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
    std::uint64_t ts = 0;
    for (int u = 0; u < kUtterances; ++u) {
        for (int f = 0; f < kLoudFrames + 20; ++f, ts += 20) {
            for (auto& st : streams) st->push(f < kLoudFrames ? loud : quiet, ts);
            max_depth = std::max(max_depth, (*svc)->queue_depth());
        }
    }
    // Pushing never waited for the engine: chunks piled up behind it (4 streams x 6 s of audio
    // went in while each worker needs 20 ms per 200 ms chunk).
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

// A small OpenAI-compatible endpoint: one request per connection; checks what it is sent.
class TranscriptionEndpoint {
  public:
    struct Request {
        std::string method, target, authorization, content_type, body;
    };
    TranscriptionEndpoint(int status, std::string reply)
        : status_(status), reply_(std::move(reply)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd_, 4), 0);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~TranscriptionEndpoint() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const {
        return fmt::format("http://127.0.0.1:{}/v1/audio/transcriptions", port_);
    }
    std::vector<Request> requests() {
        std::lock_guard lock(mu_);
        return requests_;
    }

  private:
    void serve() {
        for (;;) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            timeval tv{10, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            std::string in;
            char buf[65536];
            std::size_t header_end = std::string::npos, need = 0;
            for (;;) {
                const auto n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                if (header_end == std::string::npos &&
                    (header_end = in.find("\r\n\r\n")) != std::string::npos) {
                    const auto h = header("content-length", in.substr(0, header_end));
                    need = header_end + 4 + (h.empty() ? 0 : std::stoul(h));
                }
                if (header_end != std::string::npos && in.size() >= need) break;
            }
            Request r;
            const auto head = in.substr(0, header_end);
            const auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
            r.method = head.substr(0, sp1);
            r.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
            r.authorization = header("authorization", head);
            r.content_type = header("content-type", head);
            r.body = header_end == std::string::npos ? "" : in.substr(header_end + 4);
            {
                std::lock_guard lock(mu_);
                requests_.push_back(r);
            }
            const auto out = fmt::format(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: "
                "{}\r\nConnection: close\r\n\r\n{}",
                status_, reply_.size(), reply_);
            (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }
    static std::string header(std::string name, const std::string& head) {
        std::string lower = head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto at = lower.find("\r\n" + name + ":");
        if (at == std::string::npos) return {};
        auto v = at + name.size() + 3;
        while (v < head.size() && head[v] == ' ') ++v;
        return head.substr(v, head.find("\r\n", v) - v);
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    int status_;
    std::string reply_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<Request> requests_;
};

TEST(OpenAiEngine, PostsMultipartWavWithBearerKeyAndReadsText) {
    TranscriptionEndpoint endpoint(200, R"({"text":"I would like to check my balance."})");
    auto engine = make_openai_engine({endpoint.url(), "sk-test-123", "whisper-1", 5000});
    ASSERT_TRUE(engine.ok()) << engine.error().to_string();
    EXPECT_EQ((*engine)->name(), "openai");
    Pcm pcm(8000);  // half a second at 16 kHz
    for (std::size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<std::int16_t>(i * 7);
    auto text = (*engine)->recognize(pcm, Hints{{"check my balance", "opening hours"}, ""});
    ASSERT_TRUE(text.ok()) << text.error().to_string();
    EXPECT_EQ(*text, "I would like to check my balance.");

    const auto reqs = endpoint.requests();
    ASSERT_EQ(reqs.size(), 1u);
    const auto& r = reqs[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/v1/audio/transcriptions");
    EXPECT_EQ(r.authorization, "Bearer sk-test-123");
    const std::string prefix = "multipart/form-data; boundary=";
    ASSERT_EQ(r.content_type.substr(0, prefix.size()), prefix);
    const auto boundary = "--" + r.content_type.substr(prefix.size());
    // Split the body into its parts and check each.
    std::map<std::string, std::string> parts;
    std::size_t at = r.body.find(boundary);
    ASSERT_EQ(at, 0u);
    while (true) {
        at += boundary.size();
        if (r.body.compare(at, 2, "--") == 0) break;  // the closing boundary
        const auto next = r.body.find("\r\n" + boundary, at);
        ASSERT_NE(next, std::string::npos);
        const auto part = r.body.substr(at + 2, next - at - 2);
        const auto hend = part.find("\r\n\r\n");
        const auto headers = part.substr(0, hend);
        const auto n0 = headers.find("name=\"") + 6;
        parts[headers.substr(n0, headers.find('"', n0) - n0)] = part.substr(hend + 4);
        at = next + 2;
    }
    EXPECT_EQ(parts["model"], "whisper-1");
    EXPECT_EQ(parts["prompt"], "check my balance, opening hours");
    ASSERT_TRUE(parts.contains("file"));
    const auto& file = parts["file"];
    auto wav = core::parse_wav(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(file.data()), file.size()));
    ASSERT_TRUE(wav.ok()) << wav.error().to_string();
    EXPECT_EQ(wav->format.sample_rate_hz, 16000);
    EXPECT_EQ(wav->format.channels, 1);
    EXPECT_EQ(wav->format.encoding, core::Encoding::pcm16);
    ASSERT_EQ(wav->data.size(), pcm.size() * 2);
    EXPECT_EQ(wav->data[2 * 100], static_cast<std::uint8_t>(700 & 0xff));  // the samples, as sent
}

TEST(OpenAiEngine, ErrorsSayWhatTheEndpointAnswered) {
    TranscriptionEndpoint refuses(401, R"({"error":{"message":"Incorrect API key"}})");
    auto e = make_openai_engine({refuses.url(), "wrong", "whisper-1", 5000});
    ASSERT_TRUE(e.ok());
    auto r = (*e)->recognize(Pcm(1600), {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("HTTP 401"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("Incorrect API key"), std::string::npos);

    TranscriptionEndpoint garbled(200, "<html>not json</html>");
    auto g = make_openai_engine({garbled.url(), "k", "whisper-1", 5000});
    ASSERT_TRUE(g.ok());
    auto gr = (*g)->recognize(Pcm(1600), {});
    ASSERT_FALSE(gr.ok());
    EXPECT_NE(gr.error().message.find("without a JSON"), std::string::npos) << gr.error().message;

    EXPECT_FALSE(make_openai_engine({"ftp://x/v1", "", "whisper-1", 1000}).ok());
    // Nothing listening: a clear connect error, not a hang.
    auto closed = make_openai_engine({"http://127.0.0.1:1/v1/audio/transcriptions", "", "m", 2000});
    ASSERT_TRUE(closed.ok());
    auto cr = (*closed)->recognize(Pcm(1600), {});
    ASSERT_FALSE(cr.ok());
    EXPECT_NE(cr.error().message.find("connect"), std::string::npos) << cr.error().message;
}

}  // namespace
}  // namespace mediasim::server
