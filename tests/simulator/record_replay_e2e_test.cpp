// mediasim record, replay and soak end to end on loopback: the real binaries against the real
// mediasim-server. Record a call made by `mediasim call` through the proxy, replay it into the
// same server (same events), into a server that answers slower (the difference reported), turn
// it into a scenario that `mediasim run` plays; redaction; a soak of a few seconds.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using mediasim::test::slurp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

struct Server {
    Subprocess* proc = nullptr;
    std::string base;
};

const std::string kToken = "record-replay-token";
const std::string kHello = MEDIASIM_SOURCE_DIR "/scenarios/audio/hello.wav";

class RecordReplay : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = mediasim::test::fresh_temp_dir("mediasim_record");
        fast_ = start_server("fast", {});
        // The slower server: its echo bot waits 1.3 s of silence instead of 0.5 s before it
        // answers, so every echo starts ~800 ms later.
        std::ofstream(dir_ / "slow.yaml") << "bot:\n  silence_ms: 1300\n";
        slow_ = start_server("slow", {"--config", (dir_ / "slow.yaml").string()});
    }
    static void TearDownTestSuite() {
        for (auto* s : {&fast_, &slow_}) {
            if (s->proc) {
                EXPECT_EQ(s->proc->terminate(10s), 0) << s->proc->tail(20);
            }
            delete s->proc;
            s->proc = nullptr;
        }
        fs::remove_all(dir_);
    }

    static Server start_server(const std::string& name, std::vector<std::string> extra) {
        std::vector<std::string> argv = {
            bin("mediasim-server").string(),    "--listen",     "127.0.0.1:0", "--data",
            (dir_ / (name + "-data")).string(), "--auth-token", kToken};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto s = Subprocess::spawn(argv, dir_ / (name + "-server.log"));
        EXPECT_TRUE(s.ok()) << s.error().to_string();
        if (!s.ok()) return Server{};
        Server srv{new Subprocess(std::move(*s)), {}};
        auto line = srv.proc->wait_for_line("listening on ", 30s);
        EXPECT_TRUE(line.ok()) << line.error().to_string();
        if (line.ok()) srv.base = line->substr(line->find("http://"));
        return srv;
    }

    struct Run {
        int rc = -1;
        std::string out;
    };
    static Run run(const std::string& log, std::vector<std::string> argv,
                   std::chrono::seconds timeout = 60s) {
        argv.insert(argv.begin(), bin("mediasim").string());
        auto p = Subprocess::spawn(argv, dir_ / log);
        EXPECT_TRUE(p.ok());
        if (!p.ok()) return {};
        Run r;
        r.rc = p->wait(timeout);
        r.out = slurp(dir_ / log);
        return r;
    }

    // Records one `mediasim call` through a proxy in front of the fast server.
    static fs::path record(const std::string& name, std::vector<std::string> record_extra,
                           std::vector<std::string> call_extra) {
        const fs::path session = dir_ / (name + ".jsonl");
        std::vector<std::string> argv = {bin("mediasim").string(),
                                         "record",
                                         "--listen",
                                         "127.0.0.1:0",
                                         "--to",
                                         fast_.base,
                                         "--session",
                                         session.string(),
                                         "--auth-token",
                                         kToken};
        argv.insert(argv.end(), record_extra.begin(), record_extra.end());
        auto rec = Subprocess::spawn(argv, dir_ / (name + "-record.log"));
        EXPECT_TRUE(rec.ok());
        if (!rec.ok()) return session;
        auto line = rec->wait_for_line("listening on ", 30s);
        EXPECT_TRUE(line.ok()) << line.error().to_string();
        if (!line.ok()) return session;
        const std::string proxy = line->substr(line->find("http://"));
        std::vector<std::string> call = {"call",         "--webhook", proxy + "/voice",
                                         "--auth-token", kToken,      "--audio",
                                         kHello,         "--tail",    "3"};
        call.insert(call.end(), call_extra.begin(), call_extra.end());
        auto c = run(name + "-call.log", call);
        EXPECT_EQ(c.rc, 0) << c.out << rec->tail(20);
        EXPECT_EQ(rec->terminate(10s), 0) << rec->tail(20);
        return session;
    }

    static std::vector<nlohmann::json> lines(const fs::path& p) {
        std::vector<nlohmann::json> v;
        std::ifstream in(p);
        for (std::string l; std::getline(in, l);) v.push_back(nlohmann::json::parse(l));
        return v;
    }

    static fs::path recorded() {
        static fs::path s = record("plain", {}, {});
        return s;
    }

    static inline fs::path dir_;
    static inline Server fast_, slow_;
};

TEST_F(RecordReplay, TheSessionHoldsEveryExchangeAndTheAudio) {
    const auto s = recorded();
    auto ls = lines(s);
    ASSERT_GE(ls.size(), 10u);
    EXPECT_EQ(ls[0]["type"], "session");
    EXPECT_EQ(ls[0]["format"], "mediasim.session/1");
    int requests = 0, responses = 0, opens = 0, closes = 0, from_twilio = 0, from_server = 0;
    std::int64_t last_t = 0;
    for (std::size_t i = 1; i < ls.size(); ++i) {
        const auto& l = ls[i];
        EXPECT_GE(l["t_us"].get<std::int64_t>(), last_t) << l.dump();
        last_t = l["t_us"];
        const auto type = l["type"].get<std::string>();
        if (type == "http_request") ++requests;
        if (type == "http_response") {
            ++responses;
            if (responses == 1) {
                EXPECT_EQ(l["status"], 200);
                EXPECT_EQ(l["streams"], nlohmann::json::array({1}));
                // The server's own TwiML, not the rewritten one.
                EXPECT_THAT(l["body"].get<std::string>(), HasSubstr("/media/"));
            }
        }
        if (type == "ws_open") ++opens;
        if (type == "ws_close") ++closes;
        if (type == "ws") (l["from"] == "twilio" ? from_twilio : from_server)++;
    }
    EXPECT_GE(requests, 1);
    EXPECT_EQ(requests, responses);
    EXPECT_EQ(opens, 1);
    EXPECT_EQ(closes, 1);
    EXPECT_GT(from_twilio, 100);  // connected, start, ~5 s of media, stop
    EXPECT_GT(from_server, 50);   // the greeting and the echo
    const auto caller = dir_ / "plain-stream1-caller.wav";
    const auto server = dir_ / "plain-stream1-server.wav";
    ASSERT_TRUE(fs::exists(caller));
    ASSERT_TRUE(fs::exists(server));
    EXPECT_GT(fs::file_size(caller), 8000u * 4);  // at least 4 s of the caller
    EXPECT_GT(fs::file_size(server), 8000u * 1);  // the echo of 1.95 s of words
}

TEST_F(RecordReplay, ReplayIntoTheSameServerFindsTheSameEvents) {
    auto r = run("replay-same.log", {"replay", recorded().string(), "--webhook",
                                     fast_.base + "/voice", "--auth-token", kToken, "--verbose",
                                     // Generous: a loaded CI machine must not make a difference.
                                     "--tolerance", "600ms"});
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr("the server did what the recorded server did"));
    EXPECT_THAT(r.out, HasSubstr("mark \"echo-1\""));
    EXPECT_THAT(r.out, Not(HasSubstr("DIFFERENCE")));
}

TEST_F(RecordReplay, ReplayIntoASlowerServerReportsTheDifference) {
    auto r = run("replay-slow.log", {"replay", recorded().string(), "--webhook",
                                     slow_.base + "/voice", "--auth-token", kToken});
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr("DIFFERENCE"));
    EXPECT_THAT(r.out, HasSubstr("later than recorded"));
    EXPECT_THAT(r.out, HasSubstr("response latency"));
}

TEST_F(RecordReplay, AWrongTokenIsADifference) {
    auto r = run("replay-token.log", {"replay", recorded().string(), "--webhook",
                                      fast_.base + "/voice", "--auth-token", "wrong"});
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr("status 403 (recorded 200)"));
}

TEST_F(RecordReplay, ASessionBecomesAScenarioThatRuns) {
    const auto yaml = dir_ / "scenario" / "replayed.yaml";
    auto w =
        run("to-scenario.log", {"replay", recorded().string(), "--to-scenario", yaml.string()});
    ASSERT_EQ(w.rc, 0) << w.out;
    const auto text = slurp(yaml);
    EXPECT_THAT(text, HasSubstr("speak: {audio: replayed-1.wav}"));
    EXPECT_THAT(text, HasSubstr("wait: {for: audio, within:"));
    EXPECT_TRUE(fs::exists(dir_ / "scenario" / "replayed-1.wav"));
    auto r = run("to-scenario-run.log", {"run", yaml.string(), "--webhook", fast_.base + "/voice",
                                         "--auth-token", kToken, "--quiet"});
    EXPECT_EQ(r.rc, 0) << r.out << text;
}

TEST_F(RecordReplay, RedactDropsPhoneNumbersAndCustomParameters) {
    const auto s = record("redacted", {"--redact"}, {"--from", "+14155550123"});
    const auto text = slurp(s);
    EXPECT_THAT(text, Not(HasSubstr("4155550123")));
    EXPECT_THAT(text, Not(HasSubstr("5005550006")));
    EXPECT_THAT(text, HasSubstr("From=%5Bredacted%5D"));  // form-encoded "[redacted]"
    EXPECT_THAT(text, Not(HasSubstr("<Parameter")));
    for (const auto& l : lines(s)) {
        if (l["type"] != "ws" || l["from"] != "twilio") continue;
        auto m = nlohmann::json::parse(l["text"].get<std::string>());
        if (m["event"] == "start") {
            EXPECT_TRUE(m["start"]["customParameters"].empty()) << m;
        }
    }
    // A redacted session still replays (placeholders stand in for the numbers).
    auto r = run("replay-redacted.log", {"replay", s.string(), "--webhook", fast_.base + "/voice",
                                         "--auth-token", kToken});
    EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(RecordReplay, BadSessionsAreClearErrors) {
    std::ofstream(dir_ / "bad.jsonl")
        << "{\"type\":\"session\",\"format\":\"mediasim.session/1\"}\n"
        << "{\"type\":\"ws\",\"t_us\":5,\"stream\":3}\n";
    auto r = run("bad.log",
                 {"replay", (dir_ / "bad.jsonl").string(), "--webhook", fast_.base + "/voice"});
    EXPECT_EQ(r.rc, 2);
    EXPECT_THAT(r.out, HasSubstr("bad.jsonl:2: stream 3 was not opened"));
    auto m = run("missing.log",
                 {"replay", (dir_ / "nope.jsonl").string(), "--webhook", fast_.base + "/voice"});
    EXPECT_EQ(m.rc, 2);
    EXPECT_THAT(m.out, HasSubstr("cannot open"));
}

TEST_F(RecordReplay, ShortSoakWritesWindowsWithServerMemory) {
    std::ofstream(dir_ / "soak.yaml") << "name: soak-e2e\n"
                                         "stream: {mode: connect}\n"
                                         "steps:\n"
                                         "  - speak: {audio: "
                                      << kHello
                                      << "}\n"
                                         "  - wait: {for: audio, within: 1500ms, timeout: 10s}\n"
                                         "  - hangup\n";
    const auto out = dir_ / "soak-out";
    auto r = run("soak.log",
                 {"soak", (dir_ / "soak.yaml").string(), "--webhook", fast_.base + "/voice",
                  "--auth-token", kToken, "--duration", "6s", "--window", "2s", "--concurrency",
                  "3", "--metrics-url", fast_.base + "/metrics", "--out", out.string()},
                 90s);
    EXPECT_EQ(r.rc, 0) << r.out;
    auto ws = lines(out / "soak.jsonl");
    ASSERT_GE(ws.size(), 3u) << r.out;
    std::uint64_t ended = 0;
    for (const auto& w : ws) {
        EXPECT_GT(w["server_rss_bytes"].get<std::uint64_t>(), 1000000u) << w;
        ended += w["completed"].get<std::uint64_t>() + w["failed"].get<std::uint64_t>();
        EXPECT_EQ(w["failed"], 0) << w;
    }
    EXPECT_GE(ended, 3u);
    auto verdict = nlohmann::json::parse(slurp(out / "soak.json"));
    EXPECT_TRUE(verdict.contains("memory_slope_bytes_per_minute")) << verdict;
    EXPECT_THAT(slurp(out / "soak.html"), HasSubstr("<svg"));
    EXPECT_TRUE(fs::exists(out / "summary.json"));
    // --server-pid reads /proc; a bad one is a usage error.
    auto bad = run("soak-bad.log", {"soak", (dir_ / "soak.yaml").string(), "--webhook",
                                    fast_.base + "/voice", "--server-pid", "999999999"});
    EXPECT_EQ(bad.rc, 2);
    EXPECT_THAT(bad.out, HasSubstr("--server-pid"));
}

TEST_F(RecordReplay, ImpairedStreamsDoNotBreakTheServer) {
    // A 1 s pause every 2.5 s (then a burst of 50 frames) plus exponential jitter: the server
    // must still answer every utterance, and the report shows what the server got.
    std::ofstream(dir_ / "impaired.yaml")
        << "name: impaired\n"
           "stream: {mode: connect}\n"
           "network:\n"
           "  jitter: 30ms\n"
           "  pause: {for: 1s, every: 2500ms}\n"
           "steps:\n"
           "  - speak: {audio: "
        << kHello
        << "}\n"
           "  - wait: {for: audio, within: 3s, timeout: 10s}\n"
           "  - wait: {for: silence, silence: 700ms, timeout: 20s}\n"
           "  - hangup\n";
    const auto out = dir_ / "impaired-out";
    auto r = run("impaired.log", {"run", (dir_ / "impaired.yaml").string(), "--webhook",
                                  fast_.base + "/voice", "--auth-token", kToken, "--calls", "2",
                                  "--concurrency", "2", "--out", out.string(), "--quiet"});
    EXPECT_EQ(r.rc, 0) << r.out;
    auto s = nlohmann::json::parse(slurp(out / "summary.json"));
    EXPECT_EQ(s["calls"]["completed"], 2);
    EXPECT_GE(s["metrics"]["response_latency"]["count"], 2);
    // The burst: frames released up to 1 s after they were due; the simulator's own pacing
    // against the schedule stays what it was.
    EXPECT_GE(s["metrics"]["delivery_delay"]["max"].get<std::int64_t>(), 900000) << s["metrics"];
    EXPECT_LT(s["metrics"]["pacing_error"]["p50"].get<std::int64_t>(), 20000) << s["metrics"];

    // A connection dropped mid-word: the call ends, the server goes on serving calls.
    auto d = run("drop.log", {"call", "--webhook", fast_.base + "/voice", "--auth-token", kToken,
                              "--audio", kHello, "--drop-at", "500ms"});
    EXPECT_EQ(d.rc, 0) << d.out;
    EXPECT_THAT(d.out, HasSubstr("connection dropped mid-word"));
    auto after = run("after-drop.log",
                     {"call", "--webhook", fast_.base + "/voice", "--auth-token", kToken, "--audio",
                      kHello, "--slow-read", "5ms", "--webhook-delay", "300ms"});
    EXPECT_EQ(after.rc, 0) << after.out;
    EXPECT_THAT(after.out, HasSubstr("network impairments: slow read 5ms, webhook delay 300ms"));
    EXPECT_THAT(after.out, HasSubstr("mark \"echo-1\" echoed"));
}

}  // namespace
