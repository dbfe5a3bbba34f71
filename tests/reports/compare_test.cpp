// report compare: the comparison logic (exit codes: compare_cli_test.cpp).
#include "reports/compare.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using mediasim::reports::compare_summaries;
using mediasim::reports::parse_percent;
using ::testing::HasSubstr;

std::string summary(int p99_us, int failed, int started = 100) {
    return fmt::format(R"({{"schema": "mediasim.summary/1",
      "calls": {{"started": {}, "completed": {}, "failed": {}}},
      "metrics": {{
        "response_latency": {{"count": 50, "p50": 40000, "p90": 80000, "p99": {}, "max": 200000}},
        "jitter": {{"count": 0, "p50": 0, "p90": 0, "p99": 0, "max": 0}}}}}})",
                       started, started - failed, failed, p99_us);
}

const mediasim::reports::MetricDelta* row(const mediasim::reports::Comparison& c,
                                          const std::string& metric, const std::string& stat) {
    for (const auto& r : c.rows)
        if (r.metric == metric && r.stat == stat) return &r;
    return nullptr;
}

TEST(Compare, P99WithinTheLimitIsNoRegression) {
    auto c = compare_summaries(summary(100000, 0), summary(109000, 0), 0.10);
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    EXPECT_FALSE(c->regressed);
    auto* r = row(*c, "response_latency", "p99");
    ASSERT_NE(r, nullptr);
    EXPECT_DOUBLE_EQ(r->base, 100.0);
    EXPECT_DOUBLE_EQ(r->now, 109.0);
    EXPECT_NEAR(r->change_percent, 9.0, 1e-9);
    EXPECT_EQ(row(*c, "jitter", "p99"), nullptr);  // no values in either run
    ASSERT_NE(row(*c, "response_latency", "max"), nullptr);
}

TEST(Compare, P99BeyondTheLimitRegresses) {
    auto c = compare_summaries(summary(100000, 0), summary(111000, 0), 0.10);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->regressed);
    EXPECT_TRUE(row(*c, "response_latency", "p99")->regressed);
    EXPECT_FALSE(row(*c, "response_latency", "p50")->regressed);
    EXPECT_THAT(mediasim::reports::format_comparison(*c, 0.10), HasSubstr("REGRESSION"));
    // Faster is never a regression.
    c = compare_summaries(summary(111000, 0), summary(50000, 0), 0.0);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->regressed);
}

TEST(Compare, FailedCallRate) {
    auto c = compare_summaries(summary(100000, 0), summary(100000, 1), 0.10);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->regressed);
    auto* f = row(*c, "calls", "failed_rate");
    ASSERT_NE(f, nullptr);
    EXPECT_DOUBLE_EQ(f->now, 1.0);
    EXPECT_TRUE(std::isinf(f->change_percent));
    c = compare_summaries(summary(100000, 10), summary(100000, 11), 0.10);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->regressed);  // 10% → 11%: exactly +10%, not beyond
    c = compare_summaries(summary(100000, 10), summary(100000, 12), 0.10);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->regressed);
}

TEST(Compare, BadInput) {
    auto c = compare_summaries("{", summary(1, 0), 0.1, "a/summary.json");
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.error().to_string(), HasSubstr("a/summary.json"));
    c = compare_summaries(summary(1, 0), R"({"schema": "mediasim.summary/1", "calls": {},
        "metrics": {"response_latency": {"count": 3, "p50": "x"}}})",
                          0.1, "b", "n/summary.json");
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.error().to_string(), HasSubstr("metrics.response_latency.p50"));
}

TEST(Compare, ParsePercent) {
    EXPECT_DOUBLE_EQ(*parse_percent("10%"), 0.10);
    EXPECT_DOUBLE_EQ(*parse_percent("2.5"), 0.025);
    EXPECT_DOUBLE_EQ(*parse_percent("0%"), 0.0);
    EXPECT_FALSE(parse_percent("ten").ok());
    EXPECT_FALSE(parse_percent("-5%").ok());
    EXPECT_FALSE(parse_percent("").ok());
}

}  // namespace
