// bench/stream_load against the real mediasim-server: every stream completes, the server
// receives every frame it sent (valid: no bad frames), records one call per stream, and a
// refused connection is a failed stream with its reason (exit 1).
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

using mediasim::sim::Subprocess;
using mediasim::test::bin;
using namespace std::chrono_literals;

// stream_load's one line of key=value pairs (first_failure is the rest of the line).
std::map<std::string, std::string> summary(const std::string& out) {
    std::map<std::string, std::string> kv;
    std::string head = out;
    if (const auto ff = out.find(" first_failure="); ff != std::string::npos) {
        kv["first_failure"] = out.substr(ff + 15);
        head = out.substr(0, ff);
    }
    std::istringstream in(head);
    for (std::string w; in >> w;)
        if (const auto eq = w.find('='); eq != std::string::npos)
            kv[w.substr(0, eq)] = w.substr(eq + 1);
    return kv;
}

double metric(const std::string& text, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.]+)"))) return -1;
    return std::stod(m[1]);
}

TEST(StreamLoadE2E, EveryFrameReachesTheServerAndEveryStreamIsRecorded) {
    const auto dir = mediasim::test::fresh_temp_dir("mediasim_stream_load_e2e");
    mediasim::test::ReferenceServer server(dir);
    ASSERT_TRUE(server.ok()) << server.error();
    auto load =
        Subprocess::spawn({bin("stream_load").string(), "--url",
                           "ws://127.0.0.1:" + std::to_string(server.port()) + "/media/load",
                           "--streams", "6", "--rate", "50", "--hold", "2"},
                          dir / "load.out");
    ASSERT_TRUE(load.ok());
    ASSERT_EQ(load->wait(60s), 0) << load->tail(10);
    const auto kv = summary(mediasim::test::slurp(dir / "load.out"));
    ASSERT_EQ(kv.at("completed"), "6") << mediasim::test::slurp(dir / "load.out");
    EXPECT_EQ(kv.at("failed"), "0");
    const double frames = std::stod(kv.at("frames"));
    EXPECT_GE(frames, 6 * 95);  // 2 s of 20 ms frames each, the last one or so cut by the hold
    EXPECT_LE(frames, 6 * 100);

    auto [status, metrics] = mediasim::test::http_get(server.port(), "/metrics");
    ASSERT_EQ(status, 200);
    EXPECT_EQ(metric(metrics, "mediasim_server_media_frames_in_total"), frames) << metrics;
    EXPECT_EQ(metric(metrics, "mediasim_server_streams_total"), 6);
    const std::regex bad(R"re(mediasim_server_bad_frames_total\{reason="([a-z_]+)"\} ([0-9]+))re");
    int reasons = 0;
    for (std::sregex_iterator it(metrics.begin(), metrics.end(), bad), end; it != end; ++it) {
        ++reasons;
        EXPECT_EQ((*it)[2], "0") << "rejected frames: " << (*it)[1];
    }
    EXPECT_GT(reasons, 0) << metrics;
    auto [cstatus, calls] = mediasim::test::http_get(server.port(), "/api/calls");
    ASSERT_EQ(cstatus, 200);
    std::size_t n = 0;
    for (auto at = calls.find("\"call_sid\""); at != std::string::npos;
         at = calls.find("\"call_sid\"", at + 1))
        ++n;
    EXPECT_EQ(n, 6u) << calls;
    EXPECT_EQ(server.stop(), 0) << server.tail(20);
    std::filesystem::remove_all(dir);
}

TEST(StreamLoadE2E, ARefusedConnectionIsAFailedStreamWithItsReason) {
    const auto dir = mediasim::test::fresh_temp_dir("mediasim_stream_load_refused");
    // A port nothing listens on: bind one, close it.
    mediasim::test::ReferenceServer server(dir);
    ASSERT_TRUE(server.ok()) << server.error();
    const auto port = server.port();
    ASSERT_EQ(server.stop(), 0);
    auto load = Subprocess::spawn(
        {bin("stream_load").string(), "--url", "ws://127.0.0.1:" + std::to_string(port) + "/media",
         "--streams", "2", "--hold", "1"},
        dir / "load.out");
    ASSERT_TRUE(load.ok());
    EXPECT_EQ(load->wait(30s), 1);
    const auto kv = summary(mediasim::test::slurp(dir / "load.out"));
    EXPECT_EQ(kv.at("failed"), "2");
    EXPECT_NE(kv.at("first_failure").find("refused"), std::string::npos) << kv.at("first_failure");
    std::filesystem::remove_all(dir);
}

}  // namespace
