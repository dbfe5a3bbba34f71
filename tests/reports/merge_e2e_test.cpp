// report merge end to end: one run of 4 calls, the same run as 2 shards, the shards merged; the
// merge has the single run's counts and its histograms are the sum of the shards'.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "reports/merge.hpp"
#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using namespace std::chrono_literals;

nlohmann::json summary(const fs::path& dir) {
    std::ifstream in(dir / "summary.json");
    return nlohmann::json::parse(in, nullptr, false);
}

class MergeE2e : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = mediasim::test::fresh_temp_dir("mediasim_merge_e2e");
        server_ = std::make_unique<mediasim::test::ReferenceServer>(dir_);
        ASSERT_TRUE(server_->ok()) << server_->error();
        base_ = server_->base();
    }
    void TearDown() override {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0) << server_->tail(20);
        }
        server_.reset();
        fs::remove_all(dir_);
    }

    int mediasim(std::vector<std::string> args, const std::string& log) {
        args.insert(args.begin(), bin("mediasim").string());
        auto p = Subprocess::spawn(args, dir_ / log);
        EXPECT_TRUE(p.ok()) << p.error().to_string();
        if (!p.ok()) return -1;
        const int rc = p->wait(180s);
        EXPECT_EQ(rc, 0) << log << ":\n" << p->tail(40);
        return rc;
    }
    void run(const std::string& out, std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {
            "run",           MEDIASIM_SOURCE_DIR "/scenarios/inbound_only.yaml",
            "--webhook",     base_ + "/voice",
            "--calls",       "4",
            "--concurrency", "4",
            "--out",         (dir_ / out).string(),
            "--quiet"};
        args.insert(args.end(), extra.begin(), extra.end());
        mediasim(args, out + ".log");
    }

    fs::path dir_;
    std::unique_ptr<mediasim::test::ReferenceServer> server_;
    std::string base_;
};

TEST_F(MergeE2e, ShardsMergedEqualOneRun) {
    run("A");
    run("B0", {"--shard", "0/2"});
    run("B1", {"--shard", "1/2"});
    ASSERT_EQ(mediasim({"report", "merge", (dir_ / "B0").string(), (dir_ / "B1").string(), "--out",
                        (dir_ / "M").string()},
                       "merge.log"),
              0);
    const auto a = summary(dir_ / "A");
    const auto b0 = summary(dir_ / "B0");
    const auto m = summary(dir_ / "M");
    ASSERT_TRUE(a.is_object() && b0.is_object() && m.is_object());
    EXPECT_EQ(a["calls"]["started"], 4);
    EXPECT_EQ(a["calls"]["completed"], 4);
    EXPECT_EQ(b0["calls"]["started"], 2);  // each shard ran its share
    EXPECT_EQ(m["calls"]["started"], a["calls"]["started"]);
    EXPECT_EQ(m["calls"]["completed"], a["calls"]["completed"]);
    EXPECT_EQ(m["calls"]["failed"], a["calls"]["failed"]);
    EXPECT_EQ(m["shard"]["count"], 2);
    // The same script in every call: the same messages and frames as the single run.
    EXPECT_EQ(m["messages"]["sent"], a["messages"]["sent"]);
    EXPECT_EQ(m["metrics"]["pacing_error"]["count"], a["metrics"]["pacing_error"]["count"]);

    // Call numbers and CallSids stay distinct across shards: 1..4, four SIDs.
    std::set<int> numbers;
    std::set<std::string> sids;
    std::ifstream calls(dir_ / "M" / "calls.jsonl");
    for (std::string line; std::getline(calls, line);) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << line;
        numbers.insert(j["call"].get<int>());
        sids.insert(j["call_sid"].get<std::string>());
    }
    EXPECT_EQ(numbers, (std::set<int>{1, 2, 3, 4}));
    EXPECT_EQ(sids.size(), 4u);

    // Every metric's merged histogram is the sum of the shards' (and what the summary says).
    int metrics = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "B0")) {
        if (e.path().extension() != ".hlog") continue;
        const auto name = e.path().filename();
        auto h0 = mediasim::reports::histogram_of_log(dir_ / "B0" / name);
        auto h1 = mediasim::reports::histogram_of_log(dir_ / "B1" / name);
        auto hm = mediasim::reports::histogram_of_log(dir_ / "M" / name);
        ASSERT_TRUE(h0.ok() && h1.ok() && hm.ok()) << name;
        mediasim::core::Histogram sum = *h0;
        sum.add(*h1);
        EXPECT_TRUE(*hm == sum) << name;
        const auto& sm = m["metrics"][e.path().stem().string()];
        EXPECT_EQ(sm["count"], sum.total_count()) << name;
        EXPECT_EQ(sm["p99"], sum.value_at_percentile(99)) << name;
        ++metrics;
    }
    EXPECT_GE(metrics, 1);
    EXPECT_TRUE(fs::exists(dir_ / "M" / "report.html"));
    EXPECT_TRUE(fs::exists(dir_ / "M" / "summary.md"));
    // A pacing error was measured on every frame sent: the histograms are not empty.
    EXPECT_GT(m["metrics"]["pacing_error"]["count"], 0);
}

}  // namespace
