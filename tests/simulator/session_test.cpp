// Session files, redaction, the recorder's TwiML rewriting, the replay's event sequence and the
// soak's memory parsing, without sockets.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base64.hpp"
#include "simulator/record.hpp"
#include "simulator/replay.hpp"
#include "simulator/session.hpp"
#include "simulator/soak.hpp"

namespace {

namespace fs = std::filesystem;
using namespace mediasim;
using ::testing::HasSubstr;
using ::testing::Not;

fs::path temp(const std::string& name) {
    return fs::temp_directory_path() / fmt::format("mediasim_session_{}_{}", ::getpid(), name);
}

std::string media(std::uint8_t byte, const char* track = nullptr) {
    std::vector<std::uint8_t> b(160, byte);
    nlohmann::json j = {{"event", "media"}, {"media", {{"payload", core::base64_encode(b)}}}};
    if (track) j["media"]["track"] = track;
    return j.dump();
}

TEST(Session, WrittenAndReadBack) {
    const auto p = temp("rw.jsonl");
    {
        sim::session::Writer w;
        ASSERT_TRUE(w.open(p, "http://127.0.0.1:8080", false).ok());
        w.http_request(1, 10, "POST", "/voice", "application/x-www-form-urlencoded",
                       "CallSid=CA1&From=%2B14155550100");
        w.http_response(1, 20, 200, "text/xml", "<Response/>", {1}, "");
        w.ws_open(1, 30, "ws://127.0.0.1:8080/media");
        w.ws_message(1, 40, true, false, media(0x00, "inbound"));
        w.ws_message(1, 50, false, false, media(0x10));
        w.ws_close(1, 60, "twilio", 1000);
    }
    auto s = sim::session::read_session(p);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_EQ(s->upstream, "http://127.0.0.1:8080");
    ASSERT_EQ(s->http.size(), 1u);
    EXPECT_EQ(s->http[0].status, 200);
    EXPECT_EQ(s->http[0].t_response_us, 20);
    EXPECT_EQ(s->http[0].streams, std::vector<int>{1});
    ASSERT_EQ(s->streams.count(1), 1u);
    const auto& st = s->streams.at(1);
    EXPECT_EQ(st.t_open_us, 30);
    EXPECT_EQ(st.closed_by, "twilio");
    ASSERT_EQ(st.messages.size(), 2u);
    EXPECT_TRUE(st.messages[0].from_twilio);
    EXPECT_FALSE(st.messages[1].from_twilio);
    // The audio of both directions, 160 bytes each (plus a 44+ byte header).
    const auto stem = p.parent_path() / p.stem();
    EXPECT_GE(fs::file_size(stem.string() + "-stream1-caller.wav"), 160u + 44u);
    EXPECT_GE(fs::file_size(stem.string() + "-stream1-server.wav"), 160u + 44u);
    fs::remove(p);
    fs::remove(stem.string() + "-stream1-caller.wav");
    fs::remove(stem.string() + "-stream1-server.wav");
}

TEST(Session, ReadErrorsNameTheLine) {
    const auto p = temp("bad.jsonl");
    std::ofstream(p) << "{\"type\":\"session\",\"format\":\"mediasim.session/1\"}\nnot json\n";
    auto s = sim::session::read_session(p);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.error().to_string(), HasSubstr("bad.jsonl:2: not a JSON object"));
    std::ofstream(p) << "{\"type\":\"other\"}\n";
    s = sim::session::read_session(p);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.error().to_string(), HasSubstr(":1: not a session file"));
    std::ofstream(p) << "{\"type\":\"session\",\"format\":\"mediasim.session/1\"}\n"
                        "{\"type\":\"http_request\",\"t_us\":1}\n";
    s = sim::session::read_session(p);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s.error().to_string(), HasSubstr(":2: a field is missing"));
    fs::remove(p);
}

TEST(Session, Redaction) {
    using namespace sim::session;
    const auto form = redact_form(
        "CallSid=CA1&From=%2B14155550100&To=%2B15005550006&Note=call+"
        "%2B442071234567&Digits=12");
    EXPECT_THAT(form, Not(HasSubstr("4155550100")));
    EXPECT_THAT(form, Not(HasSubstr("5005550006")));
    EXPECT_THAT(form, Not(HasSubstr("442071234567")));
    EXPECT_THAT(form, HasSubstr("CallSid=CA1"));
    EXPECT_THAT(form, HasSubstr("Digits=12"));
    const auto twiml = redact_twiml(
        "<Response><Connect><Stream url=\"wss://h/media\"><Parameter name=\"caller\" "
        "value=\"+14155550100\"/><Parameter name=\"tenant\" value=\"42\"></Parameter></Stream>"
        "</Connect><Dial>+15551234567</Dial></Response>");
    EXPECT_THAT(twiml, Not(HasSubstr("Parameter")));
    EXPECT_THAT(twiml, Not(HasSubstr("5551234567")));
    EXPECT_THAT(twiml, HasSubstr("<Stream url=\"wss://h/media\">"));
    const auto ws = redact_ws(
        R"({"event":"start","start":{"streamSid":"MZ1","customParameters":{"caller":"x"}}})");
    EXPECT_THAT(ws, HasSubstr("\"customParameters\":{}"));
    EXPECT_THAT(ws, HasSubstr("MZ1"));
}

TEST(Record, RewritesStreamUrlsAndCallbacks) {
    auto doc = core::parse_url("http://10.0.0.5:8080/voice");
    ASSERT_TRUE(doc.ok());
    std::vector<std::string> originals;
    auto r = sim::rewrite_twiml(
        "<?xml version=\"1.0\"?><Response><Start><Stream name=\"a\" url='/media?x=1&amp;y=2'/>"
        "</Start><Connect action=\"http://10.0.0.5:8080/after\"><Stream "
        "url=\"wss://other.example/m\" track=\"inbound_track\"></Stream></Connect>"
        "<StreamX url=\"keep\"/></Response>",
        *doc, "http://127.0.0.1:9000", [&](const std::string& o) {
            originals.push_back(o);
            return fmt::format("ws://127.0.0.1:9000/stream/{}", originals.size());
        });
    ASSERT_EQ(r.stream_urls.size(), 2u);
    EXPECT_EQ(r.stream_urls[0], "http://10.0.0.5:8080/media?x=1&y=2");
    EXPECT_EQ(r.stream_urls[1], "wss://other.example/m");
    EXPECT_THAT(r.body, HasSubstr("<Stream name=\"a\" url='ws://127.0.0.1:9000/stream/1'/>"));
    EXPECT_THAT(r.body, HasSubstr("<Stream url=\"ws://127.0.0.1:9000/stream/2\" "
                                  "track=\"inbound_track\">"));
    EXPECT_THAT(r.body, HasSubstr("action=\"http://127.0.0.1:9000/after\""));
    EXPECT_THAT(r.body, HasSubstr("<StreamX url=\"keep\"/>"));
}

TEST(Replay, ServerEventsGroupMediaIntoRuns) {
    using sim::session::WsMessage;
    std::vector<WsMessage> caller, server;
    // The caller speaks (loud frames) until 1 s, then silence.
    for (int i = 0; i < 100; ++i)
        caller.push_back({i * 20000, true, false, media(i < 50 ? 0x10 : 0xFF, "inbound")});
    for (int i = 0; i < 10; ++i) server.push_back({1500000 + i * 1000, false, false, media(0x10)});
    server.push_back({1511000, false, false, R"({"event":"mark","mark":{"name":"echo-1"}})"});
    server.push_back({1600000, false, false, media(0x10)});  // after a mark: a new run
    server.push_back({1700000, false, false, R"({"event":"clear"})"});
    auto ev = sim::server_events(server, caller);
    ASSERT_EQ(ev.size(), 4u);
    EXPECT_EQ(ev[0].kind, "audio");
    EXPECT_EQ(ev[0].frames, 10);
    EXPECT_EQ(ev[0].t_us, 1500000);
    // The last loud frame was sent at 980 ms and ended at 1000 ms.
    EXPECT_EQ(ev[0].latency_us, 500000);
    EXPECT_EQ(ev[1].kind, "mark");
    EXPECT_EQ(ev[1].name, "echo-1");
    EXPECT_EQ(ev[2].kind, "audio");
    EXPECT_EQ(ev[3].kind, "clear");
    EXPECT_TRUE(sim::payload_has_speech(media(0x10)));
    EXPECT_FALSE(sim::payload_has_speech(media(0xFF)));
}

TEST(Soak, MemoryFromMetrics) {
    EXPECT_EQ(sim::rss_from_metrics("# HELP x\nprocess_resident_memory_bytes 1.5e+07\n"),
              15000000u);
    EXPECT_EQ(sim::rss_from_metrics("mediasim_server_resident_memory_bytes 123456\n"), 123456u);
    EXPECT_EQ(sim::rss_from_metrics("a_resident_memory_bytes 1\nprocess_resident_memory_bytes "
                                    "2 1700000000\n"),
              2u);
    EXPECT_EQ(sim::rss_from_metrics("up{job=\"x\"} 1\n"), std::nullopt);
    EXPECT_GT(sim::rss_from_proc(::getpid()).value_or(0), 0u);
    EXPECT_EQ(sim::rss_from_proc(999999999), std::nullopt);
}

TEST(Soak, VerdictLeavesTheWarmUpOutAndFitsASlope) {
    std::vector<sim::SoakWindow> ws(4);
    for (std::size_t i = 0; i < ws.size(); ++i) {
        ws[i].index = i;
        ws[i].end_s = 60.0 * static_cast<double>(i + 1);
        ws[i].rss_bytes = i == 0 ? 50'000'000 : 10'000'000 + 1'000'000 * i;  // warm-up spike
        ws[i].iv.metrics[static_cast<int>(sim::Metric::response_latency)].record(500000);
        ws[i].iv.calls_completed = 10;
    }
    ws[3].iv.calls_failed = 2;
    auto v = sim::soak_verdict(ws, 60);
    EXPECT_NEAR(v["memory_slope_bytes_per_minute"].get<double>(), 1'000'000, 1);
    EXPECT_EQ(v["memory_first_bytes"].get<double>(), 11'000'000);
    EXPECT_EQ(v["calls_failed"], 2);
    EXPECT_EQ(v["calls_ended"], 42);
    EXPECT_NEAR(v["response_p99_slope_us_per_minute"].get<double>(), 0, 1);
    const auto line = nlohmann::json::parse(ws[3].json());
    EXPECT_NEAR(line["failure_rate"].get<double>(), 2.0 / 12, 1e-9);
    EXPECT_THAT(sim::soak_html(ws, v, "t"), HasSubstr("<svg"));
}

}  // namespace
