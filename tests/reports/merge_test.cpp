// report merge: counts added, histograms added exactly, percentiles recomputed from the sum.
#include "reports/merge.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/histogram.hpp"
#include "reports/summary_fields.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::core::Histogram;
using mediasim::reports::merge_runs;
using ::testing::HasSubstr;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class Merge : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mediasim_merge_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // One shard's run directory: `intervals` intervals of random response latencies (seeded),
    // a summary.json whose counts and metrics come from them, calls.jsonl and timeseries.jsonl.
    fs::path write_shard(int index, int count, unsigned seed, int intervals, double start_epoch,
                         Histogram* total_out) {
        const fs::path d = dir_ / ("shard" + std::to_string(index));
        fs::create_directories(d);
        std::mt19937 rng(seed);
        std::lognormal_distribution<double> lat(10.0, 0.8);  // ~22 ms median, long tail
        Histogram total;
        std::ofstream log(d / "response_latency.hlog");
        mediasim::core::HistogramLogWriter w(log);
        w.write_header(start_epoch);
        std::ofstream ts(d / "timeseries.jsonl");
        for (int i = 0; i < intervals; ++i) {
            Histogram h;
            for (int k = 0; k < 200 + 37 * i; ++k)
                h.record(static_cast<std::int64_t>(lat(rng)) + 1);
            w.write_interval("response_latency", i, 1.0, h);
            total.add(h);
            ts << json{{"t", i + 1.0},
                       {"length", 1.0},
                       {"active", 2},
                       {"started", 1},
                       {"completed", 1},
                       {"failed", 0},
                       {"sent", 100},
                       {"received", 90},
                       {"p99_us", {{"response_latency", h.value_at_percentile(99)}}}}
                      .dump()
               << "\n";
        }
        const int started = 3 + index;
        json s = {{"schema", "mediasim.summary/1"},
                  {"scenario", "inbound_only"},
                  {"target", "http://127.0.0.1:9/voice"},
                  {"command_line", "mediasim run x.yaml --shard"},
                  {"started_at", "2026-11-25T01:00:0" + std::to_string(index) + ".000Z"},
                  {"duration_seconds", 2.0 + index},
                  {"shard", {{"index", index}, {"count", count}}},
                  {"calls",
                   {{"started", started},
                    {"completed", started - 1},
                    {"failed", 1},
                    {"expectations_failed", 0},
                    {"failed_by_class", {{index == 0 ? "timeout" : "closed early", 1}}}}},
                  {"messages", {{"sent", 1000 * (index + 1)}, {"received", 900 * (index + 1)}}},
                  {"metrics",
                   {{"response_latency", mediasim::reports::metric_summary<json>(total)},
                    {"jitter", mediasim::reports::metric_summary<json>(Histogram())}}},
                  {"failure_examples", json::array({{{"call", index + 1},
                                                     {"call_sid", "CA" + std::to_string(index)},
                                                     {"class", "timeout"},
                                                     {"error", "no audio"}}})}};
        std::ofstream(d / "summary.json") << s.dump(2);
        std::ofstream calls(d / "calls.jsonl");
        for (int c = 0; c < started; ++c)
            calls << json{{"call", index + 1 + c * count}, {"completed", true}}.dump() << "\n";
        if (total_out) *total_out = total;
        return d;
    }
    fs::path dir_;
};

TEST_F(Merge, CountsAddUpAndHistogramsAreTheSumOfTheParts) {
    Histogram h0, h1, h2;
    auto d0 = write_shard(0, 3, 1, 4, 1700000000.0, &h0);
    auto d1 = write_shard(1, 3, 2, 3, 1700000000.5, &h1);
    auto d2 = write_shard(2, 3, 3, 5, 1700000001.0, &h2);
    auto r = merge_runs({d0, d1, d2}, dir_ / "merged");
    ASSERT_TRUE(r.ok()) << r.error().to_string();

    Histogram sum;
    sum.add(h0);
    sum.add(h1);
    sum.add(h2);
    ASSERT_EQ(r->metrics.count("response_latency"), 1u);
    EXPECT_TRUE(r->metrics.at("response_latency") == sum);
    EXPECT_FALSE(r->metrics.at("response_latency") == h0);
    EXPECT_EQ(r->metrics.at("jitter").total_count(), 0);

    // The merged log, read back, adds up to the same histogram.
    auto back = mediasim::reports::histogram_of_log(dir_ / "merged" / "response_latency.hlog");
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_TRUE(*back == sum);

    json s = json::parse(slurp(dir_ / "merged" / "summary.json"));
    EXPECT_EQ(s["schema"], "mediasim.summary/1");
    EXPECT_EQ(s["calls"]["started"], 3 + 4 + 5);
    EXPECT_EQ(s["calls"]["completed"], 2 + 3 + 4);
    EXPECT_EQ(s["calls"]["failed"], 3);
    EXPECT_EQ(s["calls"]["failed_by_class"]["timeout"], 1);
    EXPECT_EQ(s["calls"]["failed_by_class"]["closed early"], 2);
    EXPECT_EQ(s["messages"]["sent"], 1000 + 2000 + 3000);
    EXPECT_EQ(s["messages"]["received"], 900 + 1800 + 2700);
    EXPECT_EQ(s["duration_seconds"], 4.0);
    EXPECT_EQ(s["started_at"], "2026-11-25T01:00:00.000Z");
    EXPECT_EQ(s["shard"]["count"], 3);
    EXPECT_EQ(s["failure_examples"].size(), 3u);

    // Percentiles come from the summed histogram (not an average of the shards' percentiles).
    const auto& m = s["metrics"]["response_latency"];
    EXPECT_EQ(m["count"], sum.total_count());
    EXPECT_EQ(m["p50"], sum.value_at_percentile(50));
    EXPECT_EQ(m["p90"], sum.value_at_percentile(90));
    EXPECT_EQ(m["p99"], sum.value_at_percentile(99));
    EXPECT_EQ(m["p99_9"], sum.value_at_percentile(99.9));
    EXPECT_EQ(m["max"], sum.max());
    EXPECT_EQ(m["min"], sum.min());
    EXPECT_EQ(s["metrics"]["jitter"]["count"], 0);

    // calls.jsonl concatenated; timeseries bucketed by absolute time (shard 1 starts 0.5 s late,
    // which rounds into neighbouring buckets; shard 2 starts 1 s late).
    std::istringstream calls(slurp(dir_ / "merged" / "calls.jsonl"));
    int lines = 0;
    for (std::string l; std::getline(calls, l);) ++lines;
    EXPECT_EQ(lines, 12);
    std::istringstream ts(slurp(dir_ / "merged" / "timeseries.jsonl"));
    std::int64_t started = 0, sent = 0, buckets = 0;
    double last_t = -1;
    for (std::string l; std::getline(ts, l);) {
        auto j = json::parse(l);
        EXPECT_GT(j["t"].get<double>(), last_t);
        last_t = j["t"].get<double>();
        started += j["started"].get<std::int64_t>();
        sent += j["sent"].get<std::int64_t>();
        ++buckets;
    }
    EXPECT_EQ(started, 4 + 3 + 5);
    EXPECT_EQ(sent, 100 * 12);
    EXPECT_LT(buckets, 12);  // overlapping seconds were merged

    EXPECT_THAT(slurp(dir_ / "merged" / "summary.md"), HasSubstr("inbound_only"));
    EXPECT_THAT(slurp(dir_ / "merged" / "report.html"), HasSubstr("<svg class=\"chart\""));
}

TEST_F(Merge, TimeseriesP99OfABucketComesFromTheAddedIntervals) {
    Histogram h0, h1;
    auto d0 = write_shard(0, 2, 7, 1, 1700000000.0, &h0);
    auto d1 = write_shard(1, 2, 8, 1, 1700000000.0, &h1);
    auto r = merge_runs({d0, d1}, dir_ / "m");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    auto j = json::parse(slurp(dir_ / "m" / "timeseries.jsonl"));
    Histogram sum;
    sum.add(h0);
    sum.add(h1);
    EXPECT_EQ(j["active"], 4);
    EXPECT_EQ(j["p99_us"]["response_latency"], sum.value_at_percentile(99));
}

TEST_F(Merge, ErrorsNameTheFile) {
    auto d0 = write_shard(0, 2, 1, 2, 1700000000.0, nullptr);
    auto r = merge_runs({d0, dir_ / "nope"}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("nope"));

    auto d1 = write_shard(1, 2, 2, 2, 1700000000.0, nullptr);
    std::ofstream(d1 / "summary.json") << "{ not json";
    r = merge_runs({d0, d1}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr((d1 / "summary.json").string()));

    write_shard(1, 2, 2, 2, 1700000000.0, nullptr);
    fs::remove(d1 / "response_latency.hlog");
    r = merge_runs({d0, d1}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("response_latency.hlog: not found"));

    write_shard(1, 2, 2, 2, 1700000000.0, nullptr);
    std::ofstream(d1 / "response_latency.hlog", std::ios::app) << "Tag=x,0,1,2,garbage\n";
    r = merge_runs({d0, d1}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("response_latency.hlog"));

    // The same shard twice would count its calls twice.
    r = merge_runs({d0, d0}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("same shard"));
}

TEST_F(Merge, EveryShardOfTheRunIsNeeded) {
    auto d0 = write_shard(0, 3, 1, 2, 1700000000.0, nullptr);
    auto d2 = write_shard(2, 3, 3, 2, 1700000000.0, nullptr);
    auto r = merge_runs({d0, d2}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("shard 1/3 missing"));
    EXPECT_FALSE(fs::exists(dir_ / "m" / "summary.json"));

    // A shard of another split is not one of these.
    auto other = write_shard(1, 2, 2, 2, 1700000000.0, nullptr);
    r = merge_runs({d0, other, d2}, dir_ / "m");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().to_string(), HasSubstr("is not one of the 3 shards"));

    auto d1 = write_shard(1, 3, 2, 2, 1700000000.0, nullptr);
    EXPECT_TRUE(merge_runs({d2, d0, d1}, dir_ / "m").ok());  // any order
}

}  // namespace
