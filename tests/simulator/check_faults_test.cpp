// mediasim check end to end: against the clean reference server (webhook, fork flow, signatures,
// --stream) every case passes or is skipped for its reason; against each `--fault` exactly the
// cases that catch it fail, with the exit code their severity gives. Every JUnit XML written is
// validated against tests/reports/junit.xsd with xmllint. One check process per server, several
// at once (each is mostly waiting for real-time calls).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "reference-server/faults.hpp"
#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using namespace std::chrono_literals;
using Ids = std::set<std::string>;

struct Entry {
    std::string name;  // the --fault, or "clean-…"
    Ids fails;         // exactly the cases expected to fail
    int exit_code;     // 0: only `should` cases fail; 1: a `must` one does
    std::vector<std::string> server_args = {};
    std::vector<std::string> check_args = {};
    bool stream = false;  // --stream ws://…/media instead of --webhook …/voice
    Ids passes = {};      // cases that must pass (not merely not fail)
};

const std::vector<std::string> kFew = {"--concurrency", "10"};

std::vector<Entry> matrix() {
    const std::vector<std::string> token = {"--auth-token", "tok-9f2c"};
    std::vector<Entry> m = {
        {"clean-webhook",
         {},
         0,
         {},
         {"--long-duration", "4"},
         false,
         {"webhook.status", "twiml.valid", "twiml.status_callback", "handshake.upgrade",
          "messages.json", "media.frame_size", "marks.names", "clear.stale_audio",
          "stop.nothing_after", "behaviour.dtmf", "behaviour.hangup_mid_word",
          "behaviour.long_call", "behaviour.concurrent", "behaviour.response_time",
          "behaviour.barge_in", "behaviour.drop_mid_word", "behaviour.burst",
          "behaviour.burst_response", "timing.buffer"}},
        {"clean-fork",
         {},
         0,
         {"--flow", "fork"},
         kFew,
         false,
         {"twiml.start_not_last", "unidirectional.silent", "behaviour.both_tracks",
          "behaviour.concurrent"}},
        {"clean-signed",
         {},
         0,
         token,
         token,
         false,
         {"webhook.signature", "handshake.unsigned_refused", "handshake.bad_signature_refused"}},
        {"clean-stream",
         {},
         0,
         {},
         kFew,
         true,
         {"handshake.upgrade", "behaviour.dtmf", "behaviour.barge_in", "messages.json",
          "behaviour.drop_mid_word", "behaviour.burst", "behaviour.burst_response"}},
        {"clean-stream-start",
         {},
         0,
         {},
         {"--stream-mode", "start", "--concurrency", "10"},
         true,
         {"handshake.upgrade", "unidirectional.silent", "behaviour.both_tracks",
          "behaviour.drop_mid_word", "behaviour.burst"}},
        {"webhook-status", {"webhook.status"}, 1},
        {"webhook-slow", {"webhook.timeout"}, 1, {}, {"--webhook-timeout", "1"}},
        {"webhook-content-type", {"webhook.content_type"}, 1},
        {"webhook-large", {"webhook.size"}, 1},
        {"twiml-malformed", {"twiml.valid"}, 1},
        {"twiml-no-stream", {"twiml.stream"}, 1},
        {"twiml-http-url", {"twiml.stream_url"}, 1},
        {"twiml-query", {"twiml.stream_query"}, 0},
        {"twiml-parameter", {"twiml.parameters"}, 0},
        {"twiml-connect-track", {"twiml.connect_track"}, 1},
        {"twiml-start-last", {"twiml.start_not_last"}, 1, {"--flow", "fork"}},
        {"status-callback", {"twiml.status_callback"}, 0},
        {"upgrade-refused", {"handshake.upgrade"}, 1},
        {"no-signature-check",
         {"webhook.signature", "handshake.unsigned_refused", "handshake.bad_signature_refused"},
         0,
         token,
         token},
        {"binary-frame", {"messages.text"}, 1},
        {"not-json", {"messages.json"}, 1},
        {"unknown-event", {"messages.known_events"}, 1},
        {"wrong-stream-sid", {"messages.stream_sid"}, 1},
        {"no-stream-sid", {"messages.stream_sid"}, 1},
        {"bad-field", {"messages.fields"}, 1},
        {"extra-field", {"messages.extra_fields"}, 0},
        {"bad-base64", {"media.base64"}, 1},
        {"wav-header", {"media.no_header"}, 1},
        {"huge-frames", {"media.frame_size"}, 0},
        {"empty-mark", {"marks.names"}, 0},
        {"stale-after-clear", {"clear.stale_audio"}, 0},
        {"after-stop", {"stop.nothing_after"}, 0},
        {"talk-on-start", {"unidirectional.silent"}, 1, {}, {"--stream-mode", "start"}, true},
        {"dtmf-drop", {"behaviour.dtmf"}, 1},
        {"midword-crash", {"behaviour.hangup_mid_word"}, 1},
        {"close-early", {"behaviour.long_call"}, 1, {}, {"--long-duration", "11"}},
        {"burst-close", {"behaviour.burst"}, 1},
        {"burst-deaf", {"behaviour.burst_response"}, 0},
        {"drop-crash", {"behaviour.drop_mid_word"}, 1},
        // No fault needed: the server's own limit (503 beyond 20 streams) fails it.
        {"limit-max-streams",
         {"behaviour.concurrent"},
         1,
         {"--max-streams", "20"},
         {"--concurrency", "30"}},
        // The echo bot's 2.5 s also misses the limit after the burst.
        {"slow-reply", {"behaviour.response_time", "behaviour.burst_response"}, 0},
        {"no-clear", {"behaviour.barge_in"}, 0},
        {"ahead", {"timing.ahead"}, 0},
        {"overflow", {"timing.ahead", "timing.buffer"}, 1},
    };
    for (auto& e : m) {
        if (!e.name.starts_with("clean-") && !e.name.starts_with("limit-"))
            e.server_args.insert(e.server_args.begin(), {"--fault", e.name});
        if (std::find(e.check_args.begin(), e.check_args.end(), "--concurrency") ==
            e.check_args.end())
            e.check_args.insert(e.check_args.end(), kFew.begin(), kFew.end());
    }
    return m;
}

struct Job {
    const Entry* entry;
    fs::path dir;
    std::optional<Subprocess> server, check;
    std::string error;
};

class CheckFaults : public ::testing::Test {
  protected:
    void SetUp() override { dir_ = mediasim::test::fresh_temp_dir("mediasim_check_faults"); }
    void TearDown() override {
        if (!HasFailure()) fs::remove_all(dir_);
    }

    void start(Job& j) {
        const Entry& e = *j.entry;
        j.dir = dir_ / e.name;
        fs::create_directories(j.dir);
        std::vector<std::string> sargs = {bin("mediasim-server").string(), "--listen",
                                          "127.0.0.1:0", "--data", (j.dir / "data").string()};
        sargs.insert(sargs.end(), e.server_args.begin(), e.server_args.end());
        auto s = Subprocess::spawn(sargs, j.dir / "server.log");
        if (!s) return void(j.error = s.error().to_string());
        j.server.emplace(std::move(*s));
        auto line = j.server->wait_for_line("listening on ", 30s);
        if (!line) return void(j.error = line.error().to_string());
        const std::string base = line->substr(line->find("http://"));
        std::vector<std::string> cargs = {bin("mediasim").string(), "check", "--quiet", "--out",
                                          (j.dir / "out").string()};
        if (e.stream) {
            cargs.insert(cargs.end(), {"--stream", "ws://" + base.substr(7) + "/media"});
        } else {
            cargs.insert(cargs.end(), {"--webhook", base + "/voice"});
        }
        cargs.insert(cargs.end(), e.check_args.begin(), e.check_args.end());
        auto c = Subprocess::spawn(cargs, j.dir / "check.log");
        if (!c) return void(j.error = c.error().to_string());
        j.check.emplace(std::move(*c));
    }

    void finish(Job& j, bool xmllint) {
        const Entry& e = *j.entry;
        SCOPED_TRACE(e.name);
        ASSERT_TRUE(j.error.empty()) << j.error;
        const int rc = j.check->wait(10s);
        const std::string log = j.check->tail(60);
        EXPECT_EQ(rc, e.exit_code) << log;
        const int server_rc = j.server->terminate(10s);
        if (e.name == "midword-crash" || e.name == "drop-crash")
            EXPECT_EQ(server_rc, 70) << j.server->tail(10);
        else
            EXPECT_EQ(server_rc, 0) << j.server->tail(20);
        std::ifstream in(j.dir / "out" / "conformance.json");
        const auto doc = nlohmann::json::parse(in, nullptr, false);
        ASSERT_TRUE(doc.is_object()) << log;
        Ids failed, passed;
        for (const auto& c : doc["cases"]) {
            if (c["result"] == "fail") failed.insert(c["id"].get<std::string>());
            if (c["result"] == "pass") passed.insert(c["id"].get<std::string>());
        }
        EXPECT_EQ(failed, e.fails) << log;
        for (const auto& id : e.passes) EXPECT_TRUE(passed.contains(id)) << id << "\n" << log;
        EXPECT_EQ(doc["passed"].get<bool>(), e.exit_code == 0);
        EXPECT_TRUE(fs::exists(j.dir / "out" / "report.html"));
        if (xmllint) {
            auto x = Subprocess::spawn(
                {"xmllint", "--noout", "--schema", MEDIASIM_SOURCE_DIR "/tests/reports/junit.xsd",
                 (j.dir / "out" / "junit.xml").string()},
                j.dir / "xmllint.log");
            ASSERT_TRUE(x.ok()) << x.error().to_string();
            EXPECT_EQ(x->wait(30s), 0) << x->tail(20);
        }
    }

    fs::path dir_;
};

bool have_xmllint() {
    return std::system("command -v xmllint >/dev/null 2>&1") == 0;
}

TEST_F(CheckFaults, EveryFaultHasAnEntry) {
    Ids names;
    for (const auto& e : matrix()) names.insert(e.name);
    for (const auto& f : mediasim::server::all_faults())
        EXPECT_TRUE(names.contains(f.name)) << f.name << " is not in the matrix";
}

TEST_F(CheckFaults, BadUsageExits2WithOneLineSayingWhat) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{}, "give either --webhook URL or --stream WS_URL"},
        {{"--webhook", "http://127.0.0.1:9/voice", "--stream", "ws://127.0.0.1:9/media"},
         "give either --webhook URL or --stream WS_URL"},
        {{"--stream", "http://127.0.0.1:9/media"}, "is not a ws:// or wss:// URL"},
        {{"--webhook", "ws://127.0.0.1:9/voice"}, "is not an http:// or https:// URL"},
        {{"--webhook", "http://127.0.0.1:9/voice", "--cases", "nope.*"}, "matches no case"},
        {{"--webhook", "http://127.0.0.1:9/voice", "--stream-mode", "start"},
         "--stream-mode goes with --stream"},
        {{"--stream", "ws://127.0.0.1:9/media", "--stream-mode", "both"},
         "is not connect or start"},
        {{"--webhook", "http://127.0.0.1:9/voice", "--concurrency", "x"}, "--concurrency"},
    };
    int i = 0;
    for (const auto& [args, message] : cases) {
        std::vector<std::string> argv = {bin("mediasim").string(), "check"};
        argv.insert(argv.end(), args.begin(), args.end());
        const fs::path log = dir_ / fmt::format("usage{}.log", i++);
        auto p = Subprocess::spawn(argv, log);
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(p->wait(30s), 2) << p->tail();
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_NE(text.find(message), std::string::npos) << text;
    }
    // Nothing listens on port 9: the webhook gets no answer, a must case fails, exit 1.
    auto p =
        Subprocess::spawn({bin("mediasim").string(), "check", "--quiet", "--webhook",
                           "http://127.0.0.1:9/voice", "--junit", (dir_ / "refused.xml").string()},
                          dir_ / "refused.log");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->wait(60s), 1) << p->tail();
    EXPECT_TRUE(fs::exists(dir_ / "refused.xml"));
}

TEST_F(CheckFaults, CleanServerPassesAndEachFaultFailsItsCases) {
    const bool xmllint = have_xmllint();
    if (!xmllint) std::printf("xmllint missing (Debian libxml2-utils): JUnit XML not validated\n");
    const auto entries = matrix();
    std::vector<Job> jobs;
    for (const auto& e : entries) jobs.push_back({&e, {}, {}, {}, {}});
    constexpr std::size_t kParallel = 6;
    std::size_t next = 0, done = 0;
    std::vector<Job*> running;
    while (done < jobs.size()) {
        while (running.size() < kParallel && next < jobs.size()) {
            start(jobs[next]);
            running.push_back(&jobs[next++]);
        }
        for (auto it = running.begin(); it != running.end();) {
            Job& j = **it;
            if (!j.error.empty() || !j.check->running()) {
                finish(j, xmllint);
                ++done;
                it = running.erase(it);
            } else {
                ++it;
            }
        }
        std::this_thread::sleep_for(50ms);
    }
}

}  // namespace
