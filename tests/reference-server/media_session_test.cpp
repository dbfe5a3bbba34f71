#include "reference-server/media_session.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/base64.hpp"
#include "core/g711.hpp"
#include "core/protocol.hpp"

namespace mediasim::server {
namespace {

using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

const std::string kStream = "MZ0123456789abcdef0123456789abcdef";
const std::string kCall = "CA89abcdef0123456789abcdef01234567";
const std::string kAccount = "AC0123456789abcdef0123456789abcdef";

// What the session told storage, in order (an in-memory stand-in that records the calls).
struct Recorded {
    StreamInfo info;
    Bytes inbound, outbound;
    std::vector<std::string> events;
    std::string finished;
    int clears = 0;
};

class FakeRecorder : public StreamRecorder {
  public:
    explicit FakeRecorder(Recorded& r) : r_(r) {}
    void inbound_audio(std::span<const std::uint8_t> m, std::uint64_t) override {
        r_.inbound.insert(r_.inbound.end(), m.begin(), m.end());
    }
    void outbound_audio(std::span<const std::uint8_t> m, std::uint64_t) override {
        r_.outbound.insert(r_.outbound.end(), m.begin(), m.end());
    }
    void outbound_clear(std::uint64_t) override { ++r_.clears; }
    void event(std::string_view kind, std::string_view detail) override {
        r_.events.push_back(std::string(kind) + (detail.empty() ? "" : " " + std::string(detail)));
    }
    void finish(std::string_view how) override { r_.finished = how; }

  private:
    Recorded& r_;
};

class FakeStorage : public Storage {
  public:
    Recorded rec;
    void record_call(const CallInfo&) override {}
    void call_event(std::string_view, std::string_view, std::string_view) override {}
    std::unique_ptr<StreamRecorder> begin_stream(const StreamInfo& s) override {
        rec.info = s;
        return std::make_unique<FakeRecorder>(rec);
    }
    void add_transcript(const TranscriptSegment&) override {}
    std::string calls_json(std::size_t) override { return "[]"; }
    std::optional<std::string> call_json(std::string_view) override { return std::nullopt; }
    std::optional<std::string> transcript_text(std::string_view) override { return std::nullopt; }
    std::optional<std::filesystem::path> recording_path(std::string_view) override {
        return std::nullopt;
    }
    void flush() override {}
};

struct Sink : MediaSink {
    std::vector<core::ServerMessage> sent;
    void send_text(std::string frame) override {
        auto p = core::parse_server_message(frame);
        ASSERT_TRUE(p.ok()) << p.error().to_string() << " in " << frame;
        EXPECT_TRUE(p->extra_fields.empty()) << frame;
        sent.push_back(std::move(p->message));
    }
    Bytes media_bytes() const {
        Bytes out;
        for (const auto& m : sent)
            if (auto* media = std::get_if<core::ServerMediaMsg>(&m)) {
                Bytes b(core::base64_decoded_max_size(media->payload.size()));
                auto n = core::base64_decode(media->payload, b.data());
                EXPECT_TRUE(n.ok());
                out.insert(out.end(), b.begin(), b.begin() + static_cast<long>(*n));
            }
        return out;
    }
    std::vector<std::string> marks() const {
        std::vector<std::string> out;
        for (const auto& m : sent)
            if (auto* mk = std::get_if<core::ServerMarkMsg>(&m)) out.push_back(mk->name);
        return out;
    }
    int clears() const {
        int n = 0;
        for (const auto& m : sent) n += std::holds_alternative<core::ClearMsg>(m);
        return n;
    }
};

// Plays Twilio's side: numbers the frames and keeps per-track chunks and timestamps.
class Twilio {
  public:
    explicit Twilio(MediaSession& s) : s_(s), t0_(MediaSession::Clock::now()) {}

    void send(const core::TwilioMessage& m) { text(core::to_json(m)); }
    void text(const std::string& frame) { s_.on_text(frame, t0_ + arrival_); }

    void connected() { send(core::ConnectedMsg{}); }
    void start(std::vector<core::Track> tracks = {core::Track::inbound}) {
        core::StartMsg m;
        m.stream_sid = kStream;
        m.call_sid = kCall;
        m.account_sid = kAccount;
        m.tracks = std::move(tracks);
        m.custom_parameters = {{"caller", "+14155550100"}};
        send(m);
        seq_ = 1;
    }
    // One media frame; arrival advances by 20 ms plus `late`.
    void media(const Bytes& mulaw, core::Track track = core::Track::inbound,
               std::chrono::milliseconds late = 0ms) {
        auto& c = chunk_[static_cast<int>(track)];
        std::string f;
        core::append_media_json(f, kStream, ++seq_, track, ++c, ts_[static_cast<int>(track)],
                                mulaw);
        ts_[static_cast<int>(track)] += 20;
        arrival_ = std::chrono::milliseconds(ts_[0]) + late;
        text(f);
    }
    void dtmf(char d) {
        core::DtmfMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.digit = d;
        send(m);
    }
    void mark(std::string name) {
        core::MarkMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.name = std::move(name);
        send(m);
    }
    void stop() {
        core::StopMsg m;
        m.sequence_number = ++seq_;
        m.stream_sid = kStream;
        m.account_sid = kAccount;
        m.call_sid = kCall;
        send(m);
    }
    std::uint64_t& seq() { return seq_; }

  private:
    MediaSession& s_;
    MediaSession::Clock::time_point t0_;
    std::chrono::milliseconds arrival_{0};
    std::uint64_t seq_ = 0;
    std::uint64_t chunk_[2] = {0, 0};
    std::uint64_t ts_[2] = {0, 0};
};

Bytes loud(int i) {
    // A 440 Hz tone at about -10 dBFS with a frame-dependent phase, so frames differ.
    Bytes b(160);
    for (int n = 0; n < 160; ++n)
        b[static_cast<std::size_t>(n)] = core::linear_to_ulaw(static_cast<std::int16_t>(
            10000 * std::sin(2 * 3.14159265 * 440 * (i * 160 + n) / 8000.0)));
    return b;
}
Bytes silence() {
    return Bytes(160, core::kUlawSilence);
}

struct Fixture : ::testing::Test {
    Metrics metrics;
    Logger log{nullptr};  // quiet
    BotOptions bot;
    CallDirectory calls;
    FakeStorage storage;
    Sink sink;
    MediaSession session{"/media/" + kCall, MediaSessionDeps{&storage, metrics, log, bot, calls},
                         sink};
    Twilio twilio{session};
};

TEST_F(Fixture, EchoesTheUtteranceThenAMarkAndClearsOnBargeIn) {
    twilio.connected();
    twilio.start();
    ASSERT_TRUE(session.started());
    EXPECT_TRUE(session.bidirectional());  // inbound only, unknown call: <Connect>
    EXPECT_EQ(storage.rec.info.stream_sid, kStream);
    EXPECT_EQ(storage.rec.info.path, "/media/" + kCall);
    EXPECT_EQ(storage.rec.info.custom_parameters, (core::Parameters{{"caller", "+14155550100"}}));

    Bytes utterance, all_in;
    for (int i = 0; i < 2; ++i) {  // leading silence is not echoed
        twilio.media(silence());
        all_in.insert(all_in.end(), 160, core::kUlawSilence);
    }
    for (int i = 0; i < 10; ++i) {
        const auto f = loud(i);
        utterance.insert(utterance.end(), f.begin(), f.end());
        all_in.insert(all_in.end(), f.begin(), f.end());
        twilio.media(f);
    }
    // 500 ms of silence ends the utterance; nothing is sent before that.
    for (int i = 0; i < 24; ++i) twilio.media(silence());
    EXPECT_TRUE(sink.sent.empty());
    twilio.media(silence());
    all_in.insert(all_in.end(), 25 * 160, core::kUlawSilence);

    ASSERT_EQ(sink.marks(), std::vector<std::string>{"echo-1"});
    EXPECT_EQ(sink.media_bytes(), utterance);  // bit-exact echo
    EXPECT_TRUE(std::holds_alternative<core::ServerMarkMsg>(sink.sent.back()));
    for (const auto& m : sink.sent) {
        if (auto* media = std::get_if<core::ServerMediaMsg>(&m)) {
            EXPECT_EQ(media->stream_sid, kStream);
        }
    }
    EXPECT_EQ(metrics.media_frames_out.load(), 10u);

    twilio.mark("echo-1");  // played
    EXPECT_EQ(session.bad_frames(), 0u);

    // DTMF: a tone and a mark; talking while it plays is barge-in.
    twilio.dtmf('5');
    EXPECT_EQ(sink.marks().back(), "tone-1");
    const auto before = sink.sent.size();
    for (int i = 0; i < 3; ++i) twilio.media(loud(100 + i));
    ASSERT_EQ(sink.clears(), 1);
    EXPECT_EQ(sink.sent.size(), before + 1);
    twilio.mark("tone-1");  // Twilio echoes pending marks after clear
    for (int i = 0; i < 30; ++i) twilio.media(silence());  // the barge-in utterance is echoed
    EXPECT_EQ(sink.marks().back(), "echo-2");
    twilio.stop();

    EXPECT_TRUE(session.stopped());
    EXPECT_EQ(session.bad_frames(), 0u);
    EXPECT_EQ(storage.rec.finished, "stop");
    EXPECT_EQ(storage.rec.clears, 1);
    // Every inbound byte reached the recording.
    EXPECT_EQ(Bytes(storage.rec.inbound.begin(),
                    storage.rec.inbound.begin() + static_cast<long>(all_in.size())),
              all_in);
    // What was sent is what was recorded on the other side.
    EXPECT_EQ(storage.rec.outbound, sink.media_bytes());
    const auto& ev = storage.rec.events;
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.front(), "start tracks=inbound");
    EXPECT_NE(std::find(ev.begin(), ev.end(), "dtmf digit=5"), ev.end());
    EXPECT_NE(std::find(ev.begin(), ev.end(), "mark_sent name=echo-1"), ev.end());
    EXPECT_NE(std::find(ev.begin(), ev.end(), "mark_echoed name=echo-1"), ev.end());
    EXPECT_NE(std::find(ev.begin(), ev.end(), "clear"), ev.end());
    EXPECT_EQ(ev.back(), "stop");
    EXPECT_EQ(metrics.streams_total.load(), 1u);
    EXPECT_EQ(metrics.streams_active.load(), 0);
    EXPECT_EQ(metrics.dtmf_in.load(), 1u);
}

TEST_F(Fixture, BadFramesAreCountedByReasonAndTheStreamGoesOn) {
    twilio.connected();
    twilio.text("{not json");
    EXPECT_EQ(session.bad_frames(BadFrame::invalid_json), 1u);
    twilio.media(silence());  // before start
    EXPECT_EQ(session.bad_frames(BadFrame::out_of_order), 1u);
    twilio.start();
    twilio.seq() = 1;
    twilio.text(R"({"event":"hello","sequenceNumber":"2","streamSid":")" + kStream + "\"}");
    EXPECT_EQ(session.bad_frames(BadFrame::unknown_event), 1u);

    // A media frame with the wrong streamSid, then one with a broken payload.
    {
        std::string f;
        core::append_media_json(f, "MZffffffffffffffffffffffffffffffff", 2, core::Track::inbound, 1,
                                0, silence());
        twilio.text(f);
        EXPECT_EQ(session.bad_frames(BadFrame::wrong_stream_sid), 1u);
        core::MediaMsg m;
        m.sequence_number = 2;
        m.stream_sid = kStream;
        m.chunk = 1;
        m.payload = std::string(212, 'A') + "!!==";
        twilio.text(core::to_json(core::TwilioMessage{m}));
        EXPECT_EQ(session.bad_frames(BadFrame::bad_base64), 1u);
    }
    twilio.seq() = 1;
    twilio.media(silence());  // seq 2: fine
    twilio.seq() += 3;        // 3 frames lost
    twilio.media(silence());
    EXPECT_EQ(session.bad_frames(BadFrame::sequence_gap), 1u);
    twilio.media(silence());  // back in step: no new gap
    EXPECT_EQ(session.bad_frames(BadFrame::sequence_gap), 1u);
    twilio.media(silence(), core::Track::outbound);  // not in start.tracks
    EXPECT_EQ(session.bad_frames(BadFrame::unexpected_track), 1u);
    twilio.mark("never-sent");
    EXPECT_EQ(session.bad_frames(BadFrame::unknown_mark), 1u);
    session.on_binary(10);
    EXPECT_EQ(session.bad_frames(BadFrame::binary_frame), 1u);

    // The frame sent before start used chunk 1, so the first accepted one (chunk 2) is a gap.
    EXPECT_EQ(session.bad_frames(BadFrame::chunk_gap), 1u);
    EXPECT_EQ(session.bad_frames(), 10u);
    EXPECT_EQ(metrics.bad_frames(BadFrame::invalid_json), 1u);
    EXPECT_EQ(metrics.bad_frames(BadFrame::bad_base64), 1u);
    // The good frames all got through.
    EXPECT_EQ(session.track(core::Track::inbound).frames, 3u);
    EXPECT_EQ(storage.rec.inbound.size(), 3u * 160);
    twilio.stop();
    EXPECT_TRUE(session.stopped());
    twilio.media(silence());  // after stop
    EXPECT_EQ(session.bad_frames(BadFrame::out_of_order), 2u);
    EXPECT_EQ(storage.rec.finished, "stop");
}

TEST_F(Fixture, ForkStreamsAreListenOnlyAndSplitByTrack) {
    calls.remember(kCall, Flow::fork);
    twilio.connected();
    twilio.start({core::Track::inbound, core::Track::outbound});
    EXPECT_FALSE(session.bidirectional());
    for (int i = 0; i < 40; ++i) {
        twilio.media(i < 10 ? loud(i) : silence(), core::Track::inbound);
        twilio.media(Bytes(160, 0x55), core::Track::outbound);
    }
    twilio.stop();
    EXPECT_TRUE(sink.sent.empty());  // nothing is sent on a <Start> stream
    EXPECT_EQ(storage.rec.inbound.size(), 40u * 160);
    EXPECT_EQ(storage.rec.outbound, Bytes(40 * 160, 0x55));
    EXPECT_EQ(session.track(core::Track::outbound).frames, 40u);
    EXPECT_EQ(session.bad_frames(), 0u);
    EXPECT_FALSE(storage.rec.info.bidirectional);
}

TEST_F(Fixture, JitterFollowsRfc3550) {
    twilio.connected();
    twilio.start();
    for (int i = 0; i < 100; ++i) twilio.media(silence());  // exactly on time
    EXPECT_NEAR(session.track(core::Track::inbound).jitter_ms, 0.0, 1e-9);
    // Every other frame 10 ms late: |D| = 10 ms each frame; J converges towards 10.
    for (int i = 0; i < 200; ++i)
        twilio.media(silence(), core::Track::inbound, std::chrono::milliseconds(i % 2 ? 10 : 0));
    EXPECT_NEAR(session.track(core::Track::inbound).jitter_ms, 10.0, 0.01);
    twilio.stop();
    EXPECT_NE(metrics.render().find("mediasim_server_stream_jitter_ms_count 1"), std::string::npos);
}

TEST_F(Fixture, FrameQueueingIsMeasuredAgainstTheStreamsBestTransit) {
    twilio.connected();
    twilio.start();
    for (int i = 0; i < 100; ++i) twilio.media(silence());  // exactly on time: queued 0
    EXPECT_EQ(metrics.frame_queue_count(), 100u);
    EXPECT_EQ(metrics.frame_queue_over_ms(0.5), 0u);
    // Three frames held up in the socket by 150, 40 and 0 ms (behind the stream's best transit).
    twilio.media(silence(), core::Track::inbound, 150ms);
    twilio.media(silence(), core::Track::inbound, 40ms);
    twilio.media(silence(), core::Track::inbound, 0ms);
    EXPECT_EQ(metrics.frame_queue_count(), 103u);
    EXPECT_EQ(metrics.frame_queue_over_ms(100), 1u);
    EXPECT_EQ(metrics.frame_queue_over_ms(20), 2u);
    EXPECT_EQ(metrics.frame_queue_max_us(), 150'000u);
    const auto text = metrics.render();
    EXPECT_NE(text.find("mediasim_server_frame_queue_ms_bucket{le=\"100\"} 102\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("mediasim_server_frame_queue_ms_bucket{le=\"+Inf\"} 103\n"),
              std::string::npos);
    EXPECT_NE(text.find("mediasim_server_frame_queue_max_ms 150.000\n"), std::string::npos);
    twilio.stop();
}

TEST_F(Fixture, ClosedWithoutStopFinishesTheRecording) {
    twilio.connected();
    twilio.start();
    twilio.media(silence());
    session.on_closed("closed");
    EXPECT_EQ(storage.rec.finished, "closed");
    EXPECT_EQ(metrics.streams_active.load(), 0);
    session.on_closed("closed");  // idempotent
    EXPECT_EQ(metrics.streams_active.load(), 0);
}

}  // namespace
}  // namespace mediasim::server
