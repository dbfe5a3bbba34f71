#include "reports/slo.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using mediasim::reports::evaluate_slo;
using mediasim::reports::format_slo_error;
using mediasim::reports::parse_slo;
using ::testing::HasSubstr;

const std::vector<std::string> kMetrics = {"webhook_latency",  "connect_time", "pacing_error",
                                           "response_latency", "mark_rtt",     "clear_latency",
                                           "leakage",          "jitter",       "underrun"};

// A summary.json as the simulator writes it (values in µs).
const char* kSummary = R"({
  "schema": "mediasim.summary/1",
  "calls": {"started": 1000, "completed": 999, "failed": 1, "expectations_failed": 3},
  "metrics": {
    "response_latency": {"unit": "us", "count": 50, "min": 1000, "p50": 400000, "p90": 900000,
                         "p99": 1400000, "p99_9": 1600000, "max": 1700000, "mean": 450000.0},
    "pacing_error": {"unit": "us", "count": 5000, "min": 1, "p50": 300, "p90": 900,
                     "p99": 2500, "p99_9": 4000, "max": 9000, "mean": 400.0},
    "mark_rtt": {"unit": "us", "count": 0, "min": 0, "p50": 0, "p90": 0, "p99": 0, "p99_9": 0,
                 "max": 0, "mean": 0.0}
  }
})";

TEST(SloParse, TheIssuesExample) {
    auto slo = parse_slo("response_p99<1500ms,pacing_p99<2ms,failed<0.1%", kMetrics);
    ASSERT_TRUE(slo.ok()) << slo.error().to_string();
    ASSERT_EQ(slo->clauses.size(), 3u);
    const auto& r = slo->clauses[0];
    EXPECT_EQ(r.text, "response_p99<1500ms");
    EXPECT_EQ(r.metric, "response_latency");
    EXPECT_EQ(r.stat, "p99");
    EXPECT_FALSE(r.inclusive);
    EXPECT_EQ(r.limit, 1500);
    EXPECT_EQ(r.unit, "ms");
    EXPECT_EQ(r.name(), "response_latency p99");
    EXPECT_EQ(slo->clauses[1].metric, "pacing_error");
    EXPECT_EQ(slo->clauses[1].limit, 2);
    const auto& f = slo->clauses[2];
    EXPECT_EQ(f.metric, "failed");
    EXPECT_TRUE(f.rate());
    EXPECT_EQ(f.limit, 0.1);
    EXPECT_EQ(f.unit, "%");
}

TEST(SloParse, FullNamesStatsUnitsAndSpaces) {
    auto slo = parse_slo(
        " response_latency_p99.9 <= 2s , connect_time_p50<500us,jitter_max<30 ms,"
        "mark_p99_9<1.5s,webhook_p90<=250ms,expectations_failed<=5%",
        kMetrics);
    ASSERT_TRUE(slo.ok()) << slo.error().to_string();
    ASSERT_EQ(slo->clauses.size(), 6u);
    EXPECT_EQ(slo->clauses[0].metric, "response_latency");
    EXPECT_EQ(slo->clauses[0].stat, "p99_9");
    EXPECT_TRUE(slo->clauses[0].inclusive);
    EXPECT_EQ(slo->clauses[0].unit, "s");
    EXPECT_EQ(slo->clauses[0].text, "response_latency_p99.9 <= 2s");
    EXPECT_EQ(slo->clauses[0].name(), "response_latency p99.9");
    EXPECT_EQ(slo->clauses[1].metric, "connect_time");
    EXPECT_EQ(slo->clauses[1].stat, "p50");
    EXPECT_EQ(slo->clauses[1].unit, "us");
    EXPECT_EQ(slo->clauses[2].stat, "max");
    EXPECT_EQ(slo->clauses[2].unit, "ms");
    EXPECT_EQ(slo->clauses[3].metric, "mark_rtt");
    EXPECT_EQ(slo->clauses[3].stat, "p99_9");
    EXPECT_EQ(slo->clauses[4].metric, "webhook_latency");
    EXPECT_EQ(slo->clauses[5].metric, "expectations_failed");
}

// Each bad expression: the error's column points at the problem and the message says what.
struct Bad {
    const char* text;
    int column;
    const char* says;
};

TEST(SloParse, ErrorsSayWhereAndWhat) {
    const Bad cases[] = {
        {"", 1, "empty objective"},
        {"response_p99<1500ms,,failed<1%", 21, "empty objective"},
        {"response_p99<1500ms,", 21, "empty objective"},
        {"respons_p99<1500ms", 1, "unknown metric \"respons\""},
        {"response<1500ms", 9, "needs a statistic"},
        {"response_p98<1500ms", 1, "not METRIC_STAT"},
        {"response_p99 1500ms", 14, "expected < or <="},
        {"response_p99", 13, "expected < or <="},
        {"response_p99>1500ms", 13, "upper limit"},
        {"response_p99<fast", 14, "expected a non-negative number"},
        {"response_p99<-5ms", 14, "expected a non-negative number"},
        {"pacing_p99<2", 13, "a time needs a unit"},
        {"pacing_p99<2xs", 13, "unknown unit \"xs\""},
        {"failed<0.1", 11, "percentage of the calls started"},
        {"failed<0.1ms", 11, "percentage"},
        {"response_p99<1500ms, pacing_p99<2xs", 34, "unknown unit"},
        {"<5ms", 1, "expected a metric"},
    };
    for (const auto& c : cases) {
        auto slo = parse_slo(c.text, kMetrics);
        ASSERT_FALSE(slo.ok()) << c.text;
        EXPECT_EQ(slo.error().column, c.column) << c.text << ": " << slo.error().message;
        EXPECT_THAT(slo.error().message, HasSubstr(c.says)) << c.text;
    }
}

TEST(SloParse, UnknownMetricListsTheKnownOnes) {
    auto slo = parse_slo("latency_p99<1s", kMetrics);
    ASSERT_FALSE(slo.ok());
    EXPECT_THAT(slo.error().message, HasSubstr("response_latency"));
    EXPECT_THAT(slo.error().message, HasSubstr("failed"));
}

TEST(SloParse, ErrorDisplayHasACaretUnderTheColumn) {
    const std::string text = "response_p99<1500ms,pacing_p99<2xs";
    auto slo = parse_slo(text, kMetrics);
    ASSERT_FALSE(slo.ok());
    const std::string shown = format_slo_error(text, slo.error());
    EXPECT_EQ(shown,
              "column 33: unknown unit \"xs\" (expected us, ms or s)\n"
              "  response_p99<1500ms,pacing_p99<2xs\n"
              "                                  ^\n");
}

TEST(SloEvaluate, ValuesInTheClausesUnits) {
    auto slo = parse_slo(
        "response_p99<1500ms,pacing_p99<2ms,failed<0.1%,response_max<=1.7s,pacing_p50<300us",
        kMetrics);
    ASSERT_TRUE(slo.ok());
    auto ev = evaluate_slo(*slo, kSummary);
    ASSERT_TRUE(ev.ok()) << ev.error().to_string();
    ASSERT_EQ(ev->checks.size(), 5u);
    EXPECT_DOUBLE_EQ(*ev->checks[0].value, 1400.0);
    EXPECT_TRUE(ev->checks[0].held);
    EXPECT_DOUBLE_EQ(*ev->checks[1].value, 2.5);
    EXPECT_FALSE(ev->checks[1].held);
    EXPECT_DOUBLE_EQ(*ev->checks[2].value, 0.1);  // 1 of 1000: not below 0.1%
    EXPECT_FALSE(ev->checks[2].held);
    EXPECT_DOUBLE_EQ(*ev->checks[3].value, 1.7);  // <= holds at the limit
    EXPECT_TRUE(ev->checks[3].held);
    EXPECT_DOUBLE_EQ(*ev->checks[4].value, 300.0);  // < does not
    EXPECT_FALSE(ev->checks[4].held);
    EXPECT_FALSE(ev->held);

    auto ok = evaluate_slo(
        *parse_slo("response_p99<1500ms,failed<0.2%,expectations_failed<1%", kMetrics), kSummary);
    ASSERT_TRUE(ok.ok());
    EXPECT_TRUE(ok->held);
    EXPECT_DOUBLE_EQ(*ok->checks[2].value, 0.3);
}

TEST(SloEvaluate, AMetricNotMeasuredDoesNotHold) {
    auto slo = parse_slo("mark_p99<1s,jitter_p99<1s", kMetrics);  // count 0; absent
    ASSERT_TRUE(slo.ok());
    auto ev = evaluate_slo(*slo, kSummary);
    ASSERT_TRUE(ev.ok());
    EXPECT_FALSE(ev->checks[0].value.has_value());
    EXPECT_FALSE(ev->checks[0].held);
    EXPECT_FALSE(ev->checks[1].value.has_value());
    EXPECT_FALSE(ev->held);

    // No call started: the failed rate is not measured either.
    auto none = evaluate_slo(*parse_slo("failed<1%", kMetrics),
                             R"({"calls": {"started": 0, "failed": 0}, "metrics": {}})");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->held);
}

TEST(SloEvaluate, NotASummaryIsAnError) {
    auto slo = parse_slo("failed<1%", kMetrics);
    ASSERT_TRUE(slo.ok());
    EXPECT_FALSE(evaluate_slo(*slo, "{").ok());
    EXPECT_FALSE(evaluate_slo(*slo, R"({"calls": {}})").ok());
}

}  // namespace
