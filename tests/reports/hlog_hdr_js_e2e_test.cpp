// The interval logs of a real run, read by an independent HdrHistogram implementation (issue 5,
// "Done when"): `mediasim run` against the real mediasim-server writes <metric>.hlog and
// summary.json; hdr-histogram-js (npm, installed by scripts/test.sh under $MEDIASIM_HDR_JS) reads
// each log with HistogramLogReader and adds up its intervals (tests/core/data/hdr_vectors.mjs
// read-logs); the count, min, max, mean and p50/p90/p99/p99.9 it computes must be what
// summary.json says. Skipped when node or the module is missing.
//
// Exact equality is the tightest true statement: both sides compute a percentile the same way
// (HdrHistogram's getValueAtPercentile: count = max(ceil(p/100 * total - 1 ulp), 1), then the
// highest equivalent value of the bucket where the running count reaches it), max is the highest
// equivalent value of the top bucket and min the lowest equivalent value of the lowest one, and
// the run's totals are the sum of its intervals. A one-bucket slack would hide real bugs here.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using mediasim::test::slurp;
using nlohmann::json;
using namespace std::chrono_literals;

bool on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string d; std::getline(dirs, d, ':');)
        if (!d.empty() && ::access((fs::path(d) / program).c_str(), X_OK) == 0) return true;
    return false;
}

// Interval lines of an HdrHistogram log: everything but comments and the legend.
int interval_lines(const fs::path& log) {
    std::ifstream in(log);
    int n = 0;
    for (std::string line; std::getline(in, line);)
        n += !line.empty() && line[0] != '#' && line[0] != '"';
    return n;
}

class HlogHdrJsE2e : public ::testing::Test {
  protected:
    void SetUp() override {
        const char* js = std::getenv("MEDIASIM_HDR_JS");
        if (!on_path("node")) GTEST_SKIP() << "node is not installed";
        if (!js || !fs::is_directory(fs::path(js) / "node_modules" / "hdr-histogram-js"))
            GTEST_SKIP() << "set MEDIASIM_HDR_JS to a directory where 'npm install "
                            "hdr-histogram-js' was run (scripts/test.sh does)";
        dir_ = mediasim::test::fresh_temp_dir("mediasim_hlog_hdr_js");
        server_ = std::make_unique<mediasim::test::ReferenceServer>(dir_);
        ASSERT_TRUE(server_->ok()) << server_->error();
        base_ = server_->base();
    }
    void TearDown() override {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0) << server_->tail(20);
        }
        server_.reset();
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    int run(std::vector<std::string> argv, const std::string& log) {
        auto p = Subprocess::spawn(argv, dir_ / log);
        EXPECT_TRUE(p.ok()) << p.error().to_string();
        if (!p.ok()) return -1;
        const int rc = p->wait(120s);
        EXPECT_EQ(rc, 0) << log << ":\n" << p->tail(40);
        return rc;
    }

    fs::path dir_;
    std::unique_ptr<mediasim::test::ReferenceServer> server_;
    std::string base_;
};

TEST_F(HlogHdrJsE2e, RunLogsReadBackWithTheSummarysPercentiles) {
    // A short call with a response (the caller speaks, the echo bot answers, hang up); 4 calls
    // at once; the run spans several 1 s intervals.
    std::ofstream(dir_ / "short.yaml") << "name: hlog-hdr-js\n"
                                          "stream: {mode: connect}\n"
                                          "steps:\n"
                                          "  - speak: {audio: " MEDIASIM_SOURCE_DIR
                                          "/scenarios/audio/hello.wav}\n"
                                          "  - wait: {for: audio, within: 5s, timeout: 10s}\n"
                                          "  - hangup\n";
    const fs::path out = dir_ / "run";
    ASSERT_EQ(run({bin("mediasim").string(), "run", (dir_ / "short.yaml").string(), "--webhook",
                   base_ + "/voice", "--calls", "4", "--concurrency", "4", "--out", out.string(),
                   "--quiet"},
                  "run.log"),
              0);
    const json summary = json::parse(slurp(out / "summary.json"), nullptr, false);
    ASSERT_TRUE(summary.is_object()) << slurp(out / "summary.json");
    ASSERT_EQ(summary["calls"]["completed"], 4) << summary.dump();
    const json& metrics = summary["metrics"];
    ASSERT_TRUE(metrics.is_object() && !metrics.empty()) << summary.dump();

    std::vector<std::string> argv = {"node", MEDIASIM_SOURCE_DIR "/tests/core/data/hdr_vectors.mjs",
                                     "read-logs", (dir_ / "js.json").string()};
    for (const auto& [name, m] : metrics.items()) {
        ASSERT_TRUE(fs::exists(out / (name + ".hlog"))) << name;
        argv.push_back((out / (name + ".hlog")).string());
    }
    ASSERT_EQ(run(argv, "node.log"), 0);
    const json js = json::parse(slurp(dir_ / "js.json"), nullptr, false);
    ASSERT_TRUE(js.is_object()) << slurp(dir_ / "node.log");
    std::printf("read by %s\n", js["generator"].get<std::string>().c_str());

    // One interval per line of timeseries.jsonl, in every log.
    const std::string series = slurp(out / "timeseries.jsonl");
    const auto intervals = static_cast<int>(std::count(series.begin(), series.end(), '\n'));
    EXPECT_GE(intervals, 2) << series;
    int with_values = 0;
    for (const auto& [name, m] : metrics.items()) {
        SCOPED_TRACE(name);
        const json& r = js["logs"][name + ".hlog"];
        ASSERT_TRUE(r.is_object()) << js.dump();
        EXPECT_EQ(r["intervals"], intervals);
        EXPECT_EQ(r["intervals"], interval_lines(out / (name + ".hlog")));  // none unreadable
        EXPECT_EQ(r["tags"], json::array({name}));
        EXPECT_EQ(r["count"], m["count"]);
        EXPECT_EQ(r["min"], m["min"]);
        EXPECT_EQ(r["max"], m["max"]);
        EXPECT_EQ(r["percentiles"]["50"], m["p50"]);
        EXPECT_EQ(r["percentiles"]["90"], m["p90"]);
        EXPECT_EQ(r["percentiles"]["99"], m["p99"]);
        EXPECT_EQ(r["percentiles"]["99.9"], m["p99_9"]);
        // The mean: the same sum of bucket midpoints, added in another order.
        EXPECT_NEAR(r["mean"].get<double>(), m["mean"].get<double>(),
                    1e-9 * std::max(1.0, m["mean"].get<double>()));
        const auto count = m["count"].get<std::int64_t>();
        with_values += count > 0;
        std::printf("%-17s count %6lld  min %8lld  p50 %8lld  p99.9 %8lld  max %8lld us\n",
                    name.c_str(), static_cast<long long>(count), m["min"].get<long long>(),
                    m["p50"].get<long long>(), m["p99_9"].get<long long>(),
                    m["max"].get<long long>());
    }
    // Not a vacuous comparison: the frames' pacing and each call's webhook, connect and
    // response were measured, with many distinct pacing values.
    for (const char* name : {"webhook_latency", "connect_time", "pacing_error", "response_latency"})
        EXPECT_GT(metrics[name]["count"].get<std::int64_t>(), 0) << name;
    EXPECT_GT(metrics["pacing_error"]["count"].get<std::int64_t>(), 100);
    EXPECT_GE(with_values, 4);
}

}  // namespace
