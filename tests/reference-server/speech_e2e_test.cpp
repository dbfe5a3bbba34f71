// Transcription end to end: the real mediasim-server (PocketSphinx, with hints) and a real call
// from `mediasim call` speaking an espeak-ng sentence; the transcript comes back through the API
// (JSON segments and plain text) and the transcription gauges through /metrics.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/tts.hpp"
#include "core/wav.hpp"
#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using mediasim::test::slurp;
using namespace std::chrono_literals;

// A spoken sentence, the hints of the `stream` flow; the call either goes through the webhook
// (the server answered it: the flow is known) or opens the media stream directly (the server's
// configured flow, `stream`, is the one whose hints apply).
void spoken_sentence_comes_back(bool through_webhook) {
    const fs::path dir = mediasim::test::fresh_temp_dir("mediasim_speech_e2e");
    {
        std::ofstream cfg(dir / "server.yaml");
        cfg << "transcription:\n  hints:\n    stream:\n"
               "      - please transfer me to the billing department\n"
               "      - what are your opening hours\n"
               "      - i would like to check my balance\n";
    }
    const std::string said = "Please transfer me to the billing department.";
    auto mulaw = mediasim::core::speak_mulaw(said);
    ASSERT_TRUE(mulaw.ok()) << mulaw.error().to_string();
    ASSERT_TRUE(mediasim::core::write_wav(dir / "said.wav",
                                          {mediasim::core::Encoding::mulaw, 8000, 1}, *mulaw)
                    .ok());

    // Flags on top of the file: the engine and the bot come from the command line.
    mediasim::test::ReferenceServer server(dir, {"--config", (dir / "server.yaml").string(),
                                                 "--transcribe", "pocketsphinx", "--bot", "none"});
    ASSERT_TRUE(server.ok()) << server.error();
    const std::string base = server.base();
    const auto port = server.port();

    std::vector<std::string> target = {"--webhook", base + "/voice"};
    if (!through_webhook)
        target = {"--stream", "ws://127.0.0.1:" + std::to_string(port) + "/media"};
    std::vector<std::string> args = {bin("mediasim").string(), "call"};
    args.insert(args.end(), target.begin(), target.end());
    for (std::string a : {std::string("--audio"), (dir / "said.wav").string(),
                          std::string("--tail"), std::string("1")})
        args.push_back(std::move(a));
    auto call = Subprocess::spawn(args, dir / "call.log");
    ASSERT_TRUE(call.ok());
    ASSERT_EQ(call->wait(60s), 0) << call->tail(30);
    std::smatch m;
    const std::string call_log = slurp(dir / "call.log");
    ASSERT_TRUE(std::regex_search(call_log, m, std::regex("call (CA[0-9a-f]{32}): completed")))
        << call_log;
    const std::string sid = m[1];

    // The final segment is stored when the VAD has heard 500 ms of silence and the worker is
    // done: poll (bounded).
    std::pair<int, std::string> text;
    for (int i = 0; i < 100; ++i) {
        text = mediasim::test::http_get(port, "/api/calls/" + sid + "/transcript");
        if (text.first == 200 && !text.second.empty()) break;
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(text.first, 200) << text.second;
    EXPECT_NE(text.second.find("inbound: please transfer me to the billing department"),
              std::string::npos)
        << text.second << server.tail(20);

    auto [status, body] = mediasim::test::http_get(port, "/api/calls/" + sid);
    ASSERT_EQ(status, 200);
    auto j = nlohmann::json::parse(body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << body;
    ASSERT_TRUE(j["transcript"].is_array()) << body;
    bool found_final = false;
    for (const auto& seg : j["transcript"]) {
        if (seg["final"] != true) continue;
        found_final = true;
        EXPECT_EQ(seg["text"], "please transfer me to the billing department");
        EXPECT_EQ(seg["track"], "inbound");
        // The caller's words start at once (mediasim call sends the audio from the start).
        EXPECT_LT(seg["start_seconds"].get<double>(), 0.5);
        EXPECT_GT(seg["end_seconds"].get<double>(), 1.5);
    }
    EXPECT_TRUE(found_final) << body;

    auto [mstatus, metrics] = mediasim::test::http_get(port, "/metrics");
    ASSERT_EQ(mstatus, 200);
    EXPECT_NE(metrics.find("\nmediasim_server_transcription_queue_depth 0"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("\nmediasim_server_transcription_utterances_total 1"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("\nmediasim_server_transcription_real_time_factor 0."),
              std::string::npos)
        << metrics;
    EXPECT_EQ(server.stop(), 0) << server.tail(20);
    fs::remove_all(dir);
}

TEST(TranscriptionE2E, ASpokenSentenceComesBackThroughTheApi) {
    spoken_sentence_comes_back(true);
}

TEST(TranscriptionE2E, AStreamOpenedDirectlyGetsTheConfiguredFlowsHints) {
    spoken_sentence_comes_back(false);
}

}  // namespace
