// The shipped scenarios and `mediasim demo`, end to end: the real mediasim binary against the
// real mediasim-server on loopback.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using mediasim::test::slurp;
using namespace std::chrono_literals;

class ShippedScenarios : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = mediasim::test::fresh_temp_dir("mediasim_scenarios");
        server_ = new mediasim::test::ReferenceServer(dir_);
        ASSERT_TRUE(server_->ok()) << server_->error();
        base_ = server_->base();
    }
    static void TearDownTestSuite() {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0) << server_->tail(20);
        }
        delete server_;
        server_ = nullptr;
        fs::remove_all(dir_);
    }

    // Runs `mediasim run` and returns its summary.json.
    nlohmann::json run(const std::string& scenario, std::vector<std::string> extra = {}) {
        const fs::path out = dir_ / scenario;
        std::vector<std::string> argv = {bin("mediasim").string(),
                                         "run",
                                         MEDIASIM_SOURCE_DIR "/scenarios/" + scenario + ".yaml",
                                         "--webhook",
                                         base_ + "/voice",
                                         "--out",
                                         out.string(),
                                         "--quiet"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto p = Subprocess::spawn(argv, dir_ / (scenario + ".log"));
        EXPECT_TRUE(p.ok());
        if (!p.ok()) return {};
        const int rc = p->wait(180s);
        EXPECT_EQ(rc, 0) << scenario << ":\n" << p->tail(40) << slurp(out / "summary.md");
        EXPECT_TRUE(fs::exists(out / "report.html"));
        return nlohmann::json::parse(slurp(out / "summary.json"), nullptr, false);
    }

    static void expect_clean(const nlohmann::json& s, int calls) {
        ASSERT_TRUE(s.is_object());
        EXPECT_EQ(s["calls"]["started"], calls);
        EXPECT_EQ(s["calls"]["completed"], calls);
        EXPECT_EQ(s["calls"]["failed"], 0);
        EXPECT_EQ(s["calls"]["expectations_failed"], 0);
    }

    static inline fs::path dir_;
    static inline mediasim::test::ReferenceServer* server_ = nullptr;
    static inline std::string base_;
};

TEST_F(ShippedScenarios, InboundOnly) {
    auto s = run("inbound_only");
    expect_clean(s, 1);
}

TEST_F(ShippedScenarios, Conversation) {
    auto s = run("conversation");
    expect_clean(s, 1);
    // The bot's answer came, and its latency was measured from the end of the caller's words.
    EXPECT_GE(s["metrics"]["response_latency"]["count"], 1);
    EXPECT_GE(s["metrics"]["mark_rtt"]["count"], 1);
}

TEST_F(ShippedScenarios, BargeIn) {
    auto s = run("barge_in");
    expect_clean(s, 1);
    EXPECT_EQ(s["metrics"]["clear_latency"]["count"], 1);
}

TEST_F(ShippedScenarios, DtmfMenu) {
    auto s = run("dtmf_menu");
    expect_clean(s, 1);
}

TEST_F(ShippedScenarios, LoadProfileScaledDown) {
    auto s = run("load_profile", {"--calls", "6", "--concurrency", "3", "--rate", "10"});
    expect_clean(s, 6);
    // Every call left a line, with distinct CallSids.
    std::ifstream jl(dir_ / "load_profile" / "calls.jsonl");
    std::set<std::string> sids;
    for (std::string line; std::getline(jl, line);)
        sids.insert(nlohmann::json::parse(line)["call_sid"].get<std::string>());
    EXPECT_EQ(sids.size(), 6u);
}

// The assistant (reference-server/examples/assistant.yaml): a scripted conversation through
// offline transcription, the rule table and espeak-ng, with a barge-in; then the transcript of
// the call through the API, holding each thing the caller said.
TEST(AssistantScenario, HoldsTheScriptedConversation) {
    const fs::path dir = mediasim::test::fresh_temp_dir("mediasim_assistant");
    mediasim::test::ReferenceServer server(
        dir, {"--config", MEDIASIM_SOURCE_DIR "/reference-server/examples/assistant.yaml"});
    ASSERT_TRUE(server.ok()) << server.error();
    const std::string base = server.base();
    const fs::path out = dir / "run";
    auto p = Subprocess::spawn(
        {bin("mediasim").string(), "run", MEDIASIM_SOURCE_DIR "/scenarios/assistant.yaml",
         "--webhook", base + "/voice", "--out", out.string(), "--quiet"},
        dir / "run.log");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->wait(120s), 0) << p->tail(40) << slurp(out / "summary.md") << server.tail(30);
    auto s = nlohmann::json::parse(slurp(out / "summary.json"), nullptr, false);
    ASSERT_TRUE(s.is_object());
    EXPECT_EQ(s["calls"]["completed"], 1);
    EXPECT_EQ(s["calls"]["expectations_failed"], 0);
    // Four answers, each within 1.5 s of the caller's words (the scenario's expectation), and
    // the barge-in drew one clear.
    EXPECT_EQ(s["metrics"]["response_latency"]["count"], 4);
    EXPECT_EQ(s["metrics"]["clear_latency"]["count"], 1);
    const std::string log = slurp(dir / "server.log");
    for (const char* said : {"i would like to check my balance", "what are your opening hours",
                             "stop i want to talk to an agent", "thank you goodbye"})
        EXPECT_NE(log.find(fmt::format("text=\"{}\"", said)), std::string::npos) << said << log;
    EXPECT_EQ(server.stop(), 0) << server.tail(20);
    fs::remove_all(dir);
}

// The first Quick start command's job: `mediasim demo` starts its own server and passes.
TEST(Demo, PlaysTheDefaultScenarioAgainstTheReferenceServer) {
    const fs::path out = fs::temp_directory_path() / fmt::format("mediasim_demo_{}", ::getpid());
    fs::remove_all(out);
    fs::create_directories(out);
    auto p = Subprocess::spawn({bin("mediasim").string(), "demo", "--out", out.string()},
                               out / "demo.log");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->wait(180s), 0) << p->tail(60);
    const std::string log = slurp(out / "demo.log");
    EXPECT_THAT(log, ::testing::HasSubstr("**PASS** — 1 calls started, 1 completed"));
    EXPECT_TRUE(fs::exists(out / "run" / "report.html"));
    EXPECT_FALSE(fs::is_empty(out / "recordings"));
    fs::remove_all(out);
}

}  // namespace
