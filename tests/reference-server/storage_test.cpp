#include "reference-server/storage.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "core/wav.hpp"

namespace mediasim::server {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Bytes = std::vector<std::uint8_t>;
constexpr std::uint8_t kSilence = 0xFF;

class TempDir {
  public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("mediasim_storage_test_" + std::to_string(::getpid()) +
                                             "_" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// n bytes that differ from frame to frame and never equal μ-law silence, so misplaced audio
// and silence are told apart.
Bytes frame_bytes(std::size_t n, std::uint32_t seed) {
    Bytes out(n);
    std::uint32_t x = seed * 2654435761u + 12345u;
    for (auto& b : out) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>((x >> 24) % 0xFF);  // 0..0xFE
    }
    return out;
}

std::unique_ptr<Storage> open_store(const fs::path& dir) {
    auto s = Storage::open(dir);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().to_string());
    if (!s.ok()) return nullptr;
    return std::move(s).value();
}

StreamInfo stream_info(std::string call_sid, std::string stream_sid,
                       std::vector<core::Track> tracks, bool bidirectional) {
    StreamInfo info;
    info.stream_sid = std::move(stream_sid);
    info.call_sid = std::move(call_sid);
    info.account_sid = "AC00000000000000000000000000000000";
    info.tracks = std::move(tracks);
    info.bidirectional = bidirectional;
    info.custom_parameters = {{"FirstName", "Jane"}};
    info.path = "/media/" + info.call_sid;
    return info;
}

core::WavFile read_recording(Storage& store, const std::string& call_sid) {
    auto path = store.recording_path(call_sid);
    EXPECT_TRUE(path.has_value()) << call_sid;
    if (!path) return {};
    auto wav = core::read_wav(*path);
    EXPECT_TRUE(wav.ok()) << (wav.ok() ? "" : wav.error().to_string());
    if (!wav.ok()) return {};
    return std::move(wav).value();
}

// Splits interleaved stereo into its channels.
std::pair<Bytes, Bytes> split(const Bytes& data) {
    Bytes l, r;
    for (std::size_t i = 0; i + 1 < data.size(); i += 2) {
        l.push_back(data[i]);
        r.push_back(data[i + 1]);
    }
    return {l, r};
}

void put(Bytes& channel, std::size_t offset, const Bytes& bytes) {
    if (channel.size() < offset + bytes.size()) channel.resize(offset + bytes.size(), kSilence);
    std::copy(bytes.begin(), bytes.end(), channel.begin() + static_cast<std::ptrdiff_t>(offset));
}

TEST(Storage, MonoInboundStreamPlacesFramesAtTheirTimestamps) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(stream_info("CA1", "MZ1", {core::Track::inbound}, false));
    const Bytes f0 = frame_bytes(160, 0), f1 = frame_bytes(160, 1), f2 = frame_bytes(160, 2),
                f3 = frame_bytes(160, 3), f4 = frame_bytes(160, 4);
    rec->inbound_audio(f0, 0);
    rec->inbound_audio(f1, 20);
    rec->inbound_audio(f2, 100);  // 60 ms lost: silence
    rec->inbound_audio(f3, 125);  // 5 ms late (jitter): placed right after f2
    rec->inbound_audio(f4, 130);  // overlaps f3: appended, never overwrites
    rec->outbound_audio(f0, 0);   // a unidirectional stream ignores server audio, as Twilio does
    rec->finish("stop");

    Bytes expected;
    put(expected, 0, f0);
    put(expected, 160, f1);
    put(expected, 800, f2);
    put(expected, 960, f3);
    put(expected, 1120, f4);
    auto wav = read_recording(*store, "CA1");
    EXPECT_EQ(wav.format, (core::AudioFormat{core::Encoding::mulaw, 8000, 1}));
    EXPECT_EQ(wav.data, expected);
    ASSERT_EQ(wav.data.size(), 1280u);
    for (std::size_t i = 320; i < 800; ++i) ASSERT_EQ(wav.data[i], kSilence) << i;
    const auto stats = store->stats();
    EXPECT_EQ(stats.gaps_filled, 1u);
    EXPECT_EQ(stats.frames_overlapping, 1u);
    EXPECT_EQ(stats.open_recordings, 0u);
    EXPECT_EQ(stats.recording_errors, 0u);
}

TEST(Storage, TimestampsFarAheadOfTheClockAreClamped) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    const auto began = std::chrono::steady_clock::now();  // before the recorder's clock starts
    auto rec = store->begin_stream(
        stream_info("CA9", "MZ9", {core::Track::inbound, core::Track::outbound}, false));
    const Bytes a = frame_bytes(160, 1), b = frame_bytes(160, 2);
    rec->inbound_audio(a, 0);
    rec->inbound_audio(b, 1'000'000'000'000);  // 31 years in: a hostile frame
    rec->outbound_audio(b, 1'000'000'000'000);
    rec->finish("stop");
    const auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - began)
                               .count();
    auto wav = read_recording(*store, "CA9");
    // b landed 10 s (plus however long this test took) after the start, not 31 years.
    const std::size_t max_frames = static_cast<std::size_t>(10'000 + waited_ms) * 8 + 160;
    EXPECT_GE(wav.data.size(), 2u * (80'000 + 160));
    EXPECT_LE(wav.data.size(), 2u * max_frames);
    auto [l, r] = split(wav.data);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), l.begin()));
    for (const Bytes* ch : {&l, &r}) {
        const auto at = std::search(ch->begin(), ch->end(), b.begin(), b.end());
        ASSERT_NE(at, ch->end());
        const auto offset = static_cast<std::size_t>(at - ch->begin());
        EXPECT_GE(offset, 80'000u);
        EXPECT_LE(offset, max_frames - 160);
    }
    EXPECT_EQ(store->stats().timestamps_clamped, 2u);
}

TEST(Storage, OutboundOnlyStreamIsMonoWithTheOutboundTrack) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(stream_info("CA2", "MZ2", {core::Track::outbound}, false));
    const Bytes a = frame_bytes(160, 7), b = frame_bytes(160, 8);
    rec->inbound_audio(a, 0);  // not a track of this stream
    rec->outbound_audio(a, 20);
    rec->outbound_audio(b, 40);
    rec->finish("stop");
    // Built with reserve + append: `Bytes expected(160, …)` followed by inserts trips GCC 12's
    // -Warray-bounds false positive at -O3 (GCC PR 107852).
    Bytes expected;
    expected.reserve(480);
    expected.resize(160, kSilence);
    expected.insert(expected.end(), a.begin(), a.end());
    expected.insert(expected.end(), b.begin(), b.end());
    auto wav = read_recording(*store, "CA2");
    EXPECT_EQ(wav.format.channels, 1);
    EXPECT_EQ(wav.data, expected);
}

TEST(Storage, BothTracksStreamIsStereoCallerLeftOtherSideRight) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(
        stream_info("CA3", "MZ3", {core::Track::inbound, core::Track::outbound}, false));
    Bytes left, right;
    // Interleaved as Twilio sends them; the outbound frame at 40 ms is missing.
    for (std::uint32_t i = 0; i < 10; ++i) {
        const Bytes in = frame_bytes(160, 100 + i), out = frame_bytes(160, 200 + i);
        if (i != 2) {
            rec->outbound_audio(out, i * 20);
            put(right, i * 160, out);
        }
        rec->inbound_audio(in, i * 20);
        put(left, i * 160, in);
    }
    // The outbound track stops early: the caller's audio still lands at its time.
    for (std::uint32_t i = 10; i < 60; ++i) {
        const Bytes in = frame_bytes(160, 100 + i);
        rec->inbound_audio(in, i * 20);
        put(left, i * 160, in);
    }
    rec->finish("stop");
    right.resize(left.size(), kSilence);

    auto wav = read_recording(*store, "CA3");
    EXPECT_EQ(wav.format, (core::AudioFormat{core::Encoding::mulaw, 8000, 2}));
    ASSERT_EQ(wav.data.size(), 2 * left.size());
    auto [l, r] = split(wav.data);
    EXPECT_EQ(l, left);
    EXPECT_EQ(r, right);
    EXPECT_EQ(r[2 * 160], kSilence);
}

// The other track lags and the caller's audio is committed first, its place on the lagging
// channel written as padding: here by flush(), in a server by the idle commit whenever 200 ms
// pass between the two tracks' frames of one instant (a stalled network, or a preempted thread).
// The late frames must still land at their timestamps, over that padding, and the channels
// stay aligned after it.
TEST(Storage, LateFramesOfTheLaggingTrackLandAtTheirTimeAfterACommit) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(
        stream_info("CA10", "MZ10", {core::Track::inbound, core::Track::outbound}, false));
    Bytes left, right;
    auto in = [&](std::uint32_t i) {
        const Bytes b = frame_bytes(160, 300 + i);
        rec->inbound_audio(b, i * 20);
        put(left, i * 160, b);
    };
    auto out = [&](std::uint32_t at_ms, std::size_t n, std::uint32_t seed) {
        const Bytes b = frame_bytes(n, seed);
        rec->outbound_audio(b, at_ms);
        put(right, at_ms * 8, b);
    };
    for (std::uint32_t i = 0; i < 10; ++i) in(i);  // 0..200 ms of the caller
    store->flush();  // commits 200 ms of both channels: the right one is padding
    for (std::uint32_t i = 0; i < 5; ++i) out(i * 20, 160, 400 + i);  // entirely in the file
    out(100, 1600, 500);  // 100..300 ms: half in the file, half still buffered
    for (std::uint32_t i = 10; i < 20; ++i) in(i);
    for (std::uint32_t i = 15; i < 20; ++i) out(i * 20, 160, 400 + i);
    rec->finish("stop");

    auto wav = read_recording(*store, "CA10");
    ASSERT_EQ(wav.data.size(), 2 * left.size());
    auto [l, r] = split(wav.data);
    EXPECT_EQ(l, left);
    EXPECT_EQ(r, right);
    const auto stats = store->stats();
    EXPECT_EQ(stats.frames_overlapping, 0u);
    EXPECT_EQ(stats.gaps_filled, 0u);
    EXPECT_EQ(stats.recording_errors, 0u);
}

TEST(Storage, BidirectionalPlayoutQueuesServerAudioAndClearDropsTheRest) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(stream_info("CA4", "MZ4", {core::Track::inbound}, true));
    const Bytes a = frame_bytes(800, 1);   // 100 ms
    const Bytes b = frame_bytes(400, 2);   // 50 ms
    const Bytes c = frame_bytes(4000, 3);  // 500 ms
    const Bytes d = frame_bytes(160, 4);   // 20 ms
    const Bytes e = frame_bytes(2000, 5);  // 250 ms, cut by the end of the stream
    Bytes left, right;
    // The session's order: each server action happens between the caller frames of its time.
    for (std::uint32_t i = 0; i < 50; ++i) {
        const std::uint64_t t = i * 20;
        if (t == 100) rec->outbound_audio(a, 100);  // plays 100..200 ms
        if (t == 120) rec->outbound_audio(b, 120);  // queued behind a: 200..250 ms
        if (t == 300) rec->outbound_audio(c, 300);  // 300..800 ms ...
        if (t == 500) rec->outbound_clear(500);     // ... cut at 500 ms
        if (t == 600) rec->outbound_audio(d, 600);  // 600..620 ms
        if (t == 900) rec->outbound_audio(e, 900);  // 900..1150 ms, the stream ends at 1000
        const Bytes in = frame_bytes(160, 1000 + i);
        rec->inbound_audio(in, t);
        put(left, i * 160, in);
    }
    rec->finish("stop");
    put(right, 800, a);
    put(right, 1600, b);
    put(right, 2400, Bytes(c.begin(), c.begin() + 1600));
    put(right, 4800, d);
    put(right, 7200, Bytes(e.begin(), e.begin() + 800));
    right.resize(8000, kSilence);

    auto wav = read_recording(*store, "CA4");
    EXPECT_EQ(wav.format.channels, 2);
    ASSERT_EQ(wav.data.size(), 16000u);
    auto [l, r] = split(wav.data);
    EXPECT_EQ(l, left);
    EXPECT_EQ(r, right);
}

TEST(Storage, EventsCallsAndTranscriptsReadBack) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    CallInfo call;
    call.call_sid = "CA5";
    call.account_sid = "AC5";
    call.from = "+15550001111";
    call.to = "+15550002222";
    call.direction = "inbound";
    call.flow = "stream";
    call.webhook = {{"CallSid", "CA5"}, {"From", "+15550001111"}};
    store->record_call(call);
    store->call_event("CA5", "webhook", R"({"path":"/voice"})");
    auto rec = store->begin_stream(stream_info("CA5", "MZ5", {core::Track::inbound}, true));
    rec->event("start", R"({"tracks":["inbound"]})");
    rec->inbound_audio(frame_bytes(160, 9), 0);
    rec->event("dtmf", R"({"digit":"5"})");
    rec->event("mark_sent", "greeting");
    rec->event("clear", "");
    rec->event("error", "media #17: \"payload\" is not base64 (byte 41)");
    store->add_transcript({"CA5", "MZ5", "inbound", false, "hel", 0.5, 0.9});
    store->add_transcript({"CA5", "MZ5", "inbound", true, "hello there", 0.5, 1.25});
    store->add_transcript({"CA5", "MZ5", "outbound", true, "how can I help", 1.5, 2.0});
    rec->event("stop", "{}");
    rec->finish("stop");

    auto text = store->call_json("CA5");
    ASSERT_TRUE(text.has_value());
    const json j = json::parse(*text);
    EXPECT_EQ(j["call_sid"], "CA5");
    EXPECT_EQ(j["from"], "+15550001111");
    EXPECT_EQ(j["to"], "+15550002222");
    EXPECT_EQ(j["flow"], "stream");
    EXPECT_EQ(j["webhook"]["From"], "+15550001111");
    ASSERT_EQ(j["streams"].size(), 1u);
    const auto& s = j["streams"][0];
    EXPECT_EQ(s["stream_sid"], "MZ5");
    EXPECT_EQ(s["status"], "stop");
    EXPECT_EQ(s["bidirectional"], true);
    EXPECT_EQ(s["channels"], 2);
    EXPECT_EQ(s["tracks"], json::array({"inbound"}));
    EXPECT_EQ(s["custom_parameters"]["FirstName"], "Jane");
    EXPECT_EQ(s["path"], "/media/CA5");
    EXPECT_EQ(s["data_bytes"], 320);
    EXPECT_FALSE(s["ended_at"].is_null());
    std::vector<std::string> kinds;
    for (const auto& e : j["events"]) kinds.push_back(e["kind"]);
    EXPECT_EQ(kinds, (std::vector<std::string>{"webhook", "start", "dtmf", "mark_sent", "clear",
                                               "error", "stop"}));
    EXPECT_EQ(j["events"][0]["stream_sid"], "");
    EXPECT_EQ(j["events"][2]["detail"]["digit"], "5");
    EXPECT_EQ(j["events"][3]["detail"], "greeting");
    EXPECT_EQ(j["events"][5]["detail"], "media #17: \"payload\" is not base64 (byte 41)");
    ASSERT_EQ(j["transcript"].size(), 3u);
    EXPECT_EQ(j["transcript"][0]["final"], false);
    EXPECT_EQ(j["transcript"][1]["text"], "hello there");
    EXPECT_DOUBLE_EQ(j["transcript"][1]["end_seconds"].get<double>(), 1.25);

    auto plain = store->transcript_text("CA5");
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(*plain, "[0.50-1.25] inbound: hello there\n[1.50-2.00] outbound: how can I help\n");

    const json calls = json::parse(store->calls_json());
    ASSERT_EQ(calls["calls"].size(), 1u);
    EXPECT_EQ(calls["calls"][0]["call_sid"], "CA5");
    EXPECT_EQ(calls["calls"][0]["streams"], 1);

    EXPECT_FALSE(store->call_json("CAunknown").has_value());
    EXPECT_FALSE(store->transcript_text("CAunknown").has_value());
    EXPECT_FALSE(store->recording_path("CAunknown").has_value());
}

TEST(Storage, StreamWithoutWebhookCreatesItsCallAndCallsAreNewestFirst) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    for (int i = 0; i < 3; ++i) {
        auto rec = store->begin_stream(stream_info(
            "CA" + std::to_string(i), "MZ" + std::to_string(i), {core::Track::inbound}, false));
        rec->inbound_audio(frame_bytes(160, static_cast<std::uint32_t>(i)), 0);
        // Destroyed without finish(): closed.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const json calls = json::parse(store->calls_json(2));
    ASSERT_EQ(calls["calls"].size(), 2u);
    EXPECT_EQ(calls["calls"][0]["call_sid"], "CA2");
    EXPECT_EQ(calls["calls"][1]["call_sid"], "CA1");
    const json c0 = json::parse(*store->call_json("CA0"));
    EXPECT_EQ(c0["account_sid"], "AC00000000000000000000000000000000");
    EXPECT_EQ(c0["streams"][0]["status"], "closed");
    EXPECT_EQ(c0["streams"][0]["data_bytes"], 160);
}

TEST(Storage, IdsNeverEscapeTheDataDirectory) {
    TempDir dir;
    auto store = open_store(dir.path() / "data");
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(
        stream_info("../../evil", "/etc/passwd", {core::Track::inbound}, false));
    rec->inbound_audio(frame_bytes(160, 1), 0);
    rec->finish("stop");
    // The same stream sid again gets a file of its own.
    auto again = store->begin_stream(
        stream_info("../../evil", "/etc/passwd", {core::Track::inbound}, false));
    again->finish("stop");
    auto path = store->recording_path("../../evil");
    ASSERT_TRUE(path.has_value());
    const auto canon = fs::weakly_canonical(*path).string();
    const auto root = fs::weakly_canonical(dir.path() / "data").string();
    EXPECT_EQ(canon.rfind(root + "/recordings/", 0), 0u) << canon;
    const json j = json::parse(*store->call_json("../../evil"));
    ASSERT_EQ(j["streams"].size(), 2u);
    EXPECT_NE(j["streams"][0]["recording"], j["streams"][1]["recording"]);
}

TEST(Storage, SecondOpenOfTheSameDirectoryIsRefused) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto second = Storage::open(dir.path());
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().to_string().find("in use by another process"), std::string::npos)
        << second.error().to_string();
    store.reset();
    EXPECT_TRUE(Storage::open(dir.path()).ok());
}

TEST(Storage, RecorderOutlivingItsStorageStillFinishesAndHoldsTheLock) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(stream_info("CA6", "MZ6", {core::Track::inbound}, false));
    const Bytes a = frame_bytes(160, 1), b = frame_bytes(160, 2);
    rec->inbound_audio(a, 0);
    store.reset();
    rec->inbound_audio(b, 20);
    rec->event("stop", "{}");
    // The directory stays locked until the last recorder is done with it.
    EXPECT_FALSE(Storage::open(dir.path()).ok());
    rec->finish("stop");
    rec.reset();
    store = open_store(dir.path());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->stats().repaired_on_open, 0u);
    const json j = json::parse(*store->call_json("CA6"));
    EXPECT_EQ(j["streams"][0]["status"], "stop");
    EXPECT_EQ(j["events"].back()["kind"], "stop");
    Bytes expected = a;
    expected.insert(expected.end(), b.begin(), b.end());
    EXPECT_EQ(read_recording(*store, "CA6").data, expected);
}

TEST(Storage, ReopenKeepsFinishedStreamsAsTheyWere) {
    TempDir dir;
    {
        auto store = open_store(dir.path());
        ASSERT_TRUE(store);
        auto rec = store->begin_stream(stream_info("CA7", "MZ7", {core::Track::inbound}, false));
        rec->inbound_audio(frame_bytes(320, 7), 0);
        rec->finish("stop");
    }
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    const json j = json::parse(*store->call_json("CA7"));
    EXPECT_EQ(j["streams"][0]["status"], "stop");
    EXPECT_EQ(j["streams"][0]["data_bytes"], 320);
    // New stream ids continue after the old ones.
    auto rec = store->begin_stream(stream_info("CA7", "MZ8", {core::Track::inbound}, false));
    rec->finish("stop");
    EXPECT_EQ(json::parse(*store->call_json("CA7"))["streams"].size(), 2u);
}

TEST(Storage, FlushMakesOpenRecordingsReadableWithEverythingSoFar) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    auto rec = store->begin_stream(
        stream_info("CA8", "MZ8", {core::Track::inbound, core::Track::outbound}, false));
    Bytes left, right;
    for (std::uint32_t i = 0; i < 25; ++i) {
        const Bytes in = frame_bytes(160, i), out = frame_bytes(160, 50 + i);
        rec->inbound_audio(in, i * 20);
        put(left, i * 160, in);
        if (i < 20) {  // the outbound track lags: flush still writes the caller's audio
            rec->outbound_audio(out, i * 20);
            put(right, i * 160, out);
        }
    }
    rec->event("stop", "{}");
    store->flush();
    right.resize(left.size(), kSilence);
    auto wav = read_recording(*store, "CA8");
    auto [l, r] = split(wav.data);
    EXPECT_EQ(l, left);
    EXPECT_EQ(r, right);
    const json j = json::parse(*store->call_json("CA8"));
    EXPECT_EQ(j["events"].back()["kind"], "stop");
    EXPECT_EQ(j["streams"][0]["status"], "open");
    store->flush();  // twice is fine
    rec->finish("stop");
}

TEST(Storage, ManyStreamsFromManyThreads) {
    TempDir dir;
    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    constexpr int kThreads = 6, kStreamsPerThread = 4, kFrames = 60;
    std::atomic<bool> reading{true};
    std::thread reader([&] {
        while (reading) {
            auto calls = json::parse(store->calls_json());
            ASSERT_TRUE(calls["calls"].is_array());
        }
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::unique_ptr<StreamRecorder>> recs;
            for (int k = 0; k < kStreamsPerThread; ++k) {
                const auto n = std::to_string(t * kStreamsPerThread + k);
                const bool stereo = k % 2 == 1;
                recs.push_back(store->begin_stream(
                    stream_info("CA" + n, "MZ" + n,
                                stereo ? std::vector{core::Track::inbound, core::Track::outbound}
                                       : std::vector{core::Track::inbound},
                                false)));
                CallInfo call;
                call.call_sid = "CA" + n;
                call.flow = "fork";
                store->record_call(call);
            }
            for (std::uint32_t f = 0; f < kFrames; ++f) {
                for (int k = 0; k < kStreamsPerThread; ++k) {
                    const auto id = static_cast<std::uint32_t>(t * kStreamsPerThread + k);
                    recs[k]->inbound_audio(frame_bytes(160, id * 1000 + f), f * 20);
                    if (k % 2 == 1)
                        recs[k]->outbound_audio(frame_bytes(160, id * 1000 + 500 + f), f * 20);
                    if (f % 10 == 0) recs[k]->event("mark_echoed", std::to_string(f));
                }
            }
            for (auto& r : recs) r->finish("stop");
        });
    }
    for (auto& th : threads) th.join();
    reading = false;
    reader.join();

    for (int id = 0; id < kThreads * kStreamsPerThread; ++id) {
        const auto sid = "CA" + std::to_string(id);
        const bool stereo = (id % kStreamsPerThread) % 2 == 1;
        Bytes left, right;
        for (std::uint32_t f = 0; f < kFrames; ++f) {
            const auto u = static_cast<std::uint32_t>(id);
            put(left, f * 160, frame_bytes(160, u * 1000 + f));
            put(right, f * 160, frame_bytes(160, u * 1000 + 500 + f));
        }
        auto wav = read_recording(*store, sid);
        if (stereo) {
            auto [l, r] = split(wav.data);
            EXPECT_EQ(l, left) << sid;
            EXPECT_EQ(r, right) << sid;
        } else {
            EXPECT_EQ(wav.data, left) << sid;
        }
        const json j = json::parse(*store->call_json(sid));
        EXPECT_EQ(j["flow"], "fork") << sid;
        EXPECT_EQ(j["events"].size(), static_cast<std::size_t>(kFrames / 10)) << sid;
        EXPECT_EQ(j["streams"][0]["status"], "stop") << sid;
    }
    EXPECT_EQ(json::parse(store->calls_json(1000))["calls"].size(),
              static_cast<std::size_t>(kThreads * kStreamsPerThread));
    const auto stats = store->stats();
    EXPECT_EQ(stats.open_recordings, 0u);
    EXPECT_EQ(stats.db_queue_depth, 0u);
    EXPECT_EQ(stats.db_errors, 0u);
    EXPECT_EQ(stats.gaps_filled, 0u);
    // Per stream: the call stub, the stream, the upsert, the finish, and the events.
    EXPECT_EQ(stats.db_rows_written,
              static_cast<std::uint64_t>(kThreads * kStreamsPerThread * (4 + kFrames / 10)));
}

// A child records three streams in real time and is killed with SIGKILL; the parent's
// Storage::open() repairs. Everything written at least 1 s before the kill must be there,
// bit-exact, and the streams must be marked interrupted. Two ways to die: while writing, and
// during a stall (the network stops for good), when the audio written before the stall reaches
// the disk only through the periodic flush since nothing else writes any more.
struct Progress {
    std::uint32_t frames;  // frames fully handed to the recorders
    std::int64_t steady_ns;
};

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr std::uint32_t kFramesBeforeStall = 75;
const Bytes kServerPrompt = frame_bytes(160, 99999);

// The expected channels of each stream after n frames.
std::pair<Bytes, Bytes> crash_channels(std::string_view stream_sid, std::uint32_t n) {
    Bytes l, r;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (stream_sid == "MZmono") put(l, i * 160, frame_bytes(160, i));
        if (stream_sid == "MZboth") {
            put(l, i * 160, frame_bytes(160, 10000 + i));
            put(r, i * 160, frame_bytes(160, 20000 + i));
        }
        if (stream_sid == "MZbidi") put(l, i * 160, frame_bytes(160, 30000 + i));
    }
    if (stream_sid == "MZbidi") {
        put(r, 0, kServerPrompt);
        r.resize(l.size(), kSilence);
    }
    return {l, r};
}

[[noreturn]] void crash_child(const fs::path& dir, int out_fd, bool stall) {
    auto opened = Storage::open(dir);
    if (!opened.ok()) ::_exit(3);
    auto store = std::move(opened).value();
    CallInfo call;
    call.call_sid = "CAcrash";
    call.flow = "fork";
    store->record_call(call);
    auto mono =
        store->begin_stream(stream_info("CAcrash", "MZmono", {core::Track::inbound}, false));
    auto both = store->begin_stream(
        stream_info("CAcrash", "MZboth", {core::Track::inbound, core::Track::outbound}, false));
    auto bidi = store->begin_stream(stream_info("CAcrash", "MZbidi", {core::Track::inbound}, true));
    bidi->outbound_audio(kServerPrompt, 0);
    const auto start = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < 1000; ++i) {  // at most 20 s; the parent kills us long before
        if (stall && i == kFramesBeforeStall) std::this_thread::sleep_for(std::chrono::seconds(20));
        std::this_thread::sleep_until(start + std::chrono::milliseconds(20 * i));
        mono->inbound_audio(frame_bytes(160, i), i * 20);
        both->inbound_audio(frame_bytes(160, 10000 + i), i * 20);
        both->outbound_audio(frame_bytes(160, 20000 + i), i * 20);
        bidi->inbound_audio(frame_bytes(160, 30000 + i), i * 20);
        if (i % 25 == 0) mono->event("mark_echoed", std::to_string(i));
        const Progress p{i + 1, steady_ns()};
        if (::write(out_fd, &p, sizeof p) != static_cast<ssize_t>(sizeof p)) ::_exit(4);
    }
    ::_exit(5);
}

void crash_and_recover(bool stall) {
    TempDir dir;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        crash_child(dir.path(), fds[1], stall);
    }
    ::close(fds[1]);
    std::vector<Progress> progress;
    Progress p{};
    while (::read(fds[0], &p, sizeof p) == static_cast<ssize_t>(sizeof p)) {
        progress.push_back(p);
        if (p.frames >= (stall ? kFramesBeforeStall : 125u)) break;
    }
    if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    const std::int64_t kill_ns = steady_ns();
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    // The child kept going between the last record read and the kill (a loaded machine can
    // hold this process back for many frames): the pipe holds the records of what it handed.
    while (::read(fds[0], &p, sizeof p) == static_cast<ssize_t>(sizeof p)) progress.push_back(p);
    ::close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ASSERT_EQ(WTERMSIG(status), SIGKILL);
    ASSERT_FALSE(progress.empty());

    std::uint32_t must_have = 0;  // frames written at least 1 s before the kill
    for (const auto& q : progress)
        if (q.steady_ns <= kill_ns - 1'000'000'000) must_have = q.frames;
    if (stall) {
        ASSERT_EQ(must_have, kFramesBeforeStall);
    } else {
        ASSERT_GE(must_have, 10u) << "the child made too little progress to test anything";
    }
    // At most one frame more than the last record: the one in flight (handed to the recorders,
    // its record not written yet) when SIGKILL landed; none during the stall.
    const std::uint32_t written = progress.back().frames + (stall ? 0 : 1);
    std::printf("frames handed to the recorders: at most %u; at least 1 s before the kill: %u\n",
                written, must_have);

    auto store = open_store(dir.path());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->stats().repaired_on_open, 3u);
    const json j = json::parse(*store->call_json("CAcrash"));
    ASSERT_EQ(j["streams"].size(), 3u);
    for (const auto& s : j["streams"]) {
        const auto sid = s["stream_sid"].get<std::string>();
        EXPECT_EQ(s["status"], "interrupted") << s.dump();
        const auto path = dir.path() / s["recording"].get<std::string>();
        auto wav = core::read_wav(path);
        ASSERT_TRUE(wav.ok()) << wav.error().to_string();
        EXPECT_EQ(s["data_bytes"], wav->data.size());
        const bool stereo = sid != "MZmono";
        EXPECT_EQ(wav->format.channels, stereo ? 2 : 1) << sid;
        auto [l, r] = crash_channels(sid, written);
        auto [min_l, min_r] = crash_channels(sid, must_have);
        if (stereo) {
            auto [got_l, got_r] = split(wav->data);
            EXPECT_GE(got_l.size(), min_l.size()) << sid;
            ASSERT_LE(got_l.size(), l.size()) << sid;
            EXPECT_TRUE(std::equal(got_l.begin(), got_l.end(), l.begin())) << sid;
            EXPECT_TRUE(std::equal(got_r.begin(), got_r.end(), r.begin())) << sid;
        } else {
            EXPECT_GE(wav->data.size(), min_l.size()) << sid;
            ASSERT_LE(wav->data.size(), l.size()) << sid;
            EXPECT_TRUE(std::equal(wav->data.begin(), wav->data.end(), l.begin())) << sid;
        }
        const double missing_ms = static_cast<double>(l.size()) / 8.0 -
                                  static_cast<double>(wav->data.size()) / (stereo ? 16.0 : 8.0);
        std::printf("%s: recovered %zu bytes; %.0f ms of the audio written is missing\n",
                    sid.c_str(), wav->data.size(), missing_ms);
    }
    std::size_t interrupted_events = 0, marks = 0;
    for (const auto& e : j["events"]) {
        interrupted_events += e["kind"] == "interrupted";
        marks += e["kind"] == "mark_echoed";
    }
    EXPECT_EQ(interrupted_events, 3u);
    EXPECT_GE(marks, 1u);
    // A second open has nothing left to repair.
    store.reset();
    store = open_store(dir.path());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->stats().repaired_on_open, 0u);
    std::size_t again = 0;
    const json reread = json::parse(*store->call_json("CAcrash"));
    for (const auto& e : reread["events"]) again += e["kind"] == "interrupted";
    EXPECT_EQ(again, 3u) << reread.dump();
}

TEST(Storage, SigkillWhileWritingLosesNothingOlderThanOneSecond) {
    crash_and_recover(false);
}

TEST(Storage, SigkillDuringAStallLosesNothingOlderThanOneSecond) {
    crash_and_recover(true);
}

}  // namespace
}  // namespace mediasim::server
