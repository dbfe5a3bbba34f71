#include "reports/markdown.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using mediasim::reports::render_markdown;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSummary = R"({
  "schema": "mediasim.summary/1",
  "scenario": "conversation",
  "target": "http://127.0.0.1:8080/voice",
  "command_line": "mediasim run scenarios/conversation.yaml",
  "started_at": "2026-11-25T01:00:00.000Z",
  "duration_seconds": 12.5,
  "shard": {"index": 0, "count": 1},
  "calls": {"started": 10, "completed": 9, "failed": 1, "expectations_failed": 2,
            "failed_by_class": {"timeout": 1}},
  "messages": {"sent": 5000, "received": 4000},
  "metrics": {
    "response_latency": {"unit": "us", "count": 9, "min": 900000, "p50": 1200000,
                         "p90": 1400000, "p99": 1612000, "p99_9": 1612000, "max": 1612000,
                         "mean": 1250000.0},
    "pacing_error": {"unit": "us", "count": 5000, "min": 3, "p50": 40, "p90": 80, "p99": 150,
                     "p99_9": 900, "max": 1200, "mean": 50.0},
    "clear_latency": {"unit": "us", "count": 0, "min": 0, "p50": 0, "p90": 0, "p99": 0,
                      "p99_9": 0, "max": 0, "mean": 0.0}
  },
  "failure_examples": [{"call": 7, "call_sid": "CA0123", "class": "timeout",
                        "error": "steps[3]: no bot audio within 10 s"}]
})";

TEST(Markdown, RendersCountsPercentilesAndFailures) {
    auto md = render_markdown(kSummary);
    ASSERT_TRUE(md.ok()) << md.error().to_string();
    EXPECT_THAT(*md, HasSubstr("## Mediasim run: conversation"));
    EXPECT_THAT(*md, HasSubstr("**FAIL** — 10 calls started, 9 completed, 1 failed, 2 with"));
    EXPECT_THAT(*md, HasSubstr("Messages: 5000 sent, 4000 received."));
    // µs → ms with sensible precision.
    EXPECT_THAT(*md, HasSubstr("| 9 | 1200 | 1400 | 1612 | 1612 | 1612 |"));
    EXPECT_THAT(*md, HasSubstr("| 5000 | 0.04 | 0.08 | 0.15 | 0.90 | 1.20 |"));
    // Metrics with no samples are left out.
    EXPECT_THAT(*md, Not(HasSubstr("barge-in → clear")));
    EXPECT_THAT(*md, HasSubstr("| timeout | 1 |"));
    EXPECT_THAT(*md, HasSubstr("- call 7 `CA0123` (timeout): steps[3]: no bot audio within 10 s"));
}

TEST(Markdown, PassWhenNothingFailed) {
    std::string s = kSummary;
    s.replace(s.find("\"failed\": 1"), 11, "\"failed\": 0");
    s.replace(s.find("\"expectations_failed\": 2"), 24, "\"expectations_failed\": 0");
    auto md = render_markdown(s);
    ASSERT_TRUE(md.ok()) << md.error().to_string();
    EXPECT_THAT(*md, HasSubstr("**PASS**"));
}

TEST(Markdown, ErrorsNameTheField) {
    EXPECT_EQ(render_markdown("[1,2]").error().to_string(), "summary.json is not a JSON object");
    EXPECT_EQ(render_markdown("{").error().to_string(), "summary.json is not a JSON object");
    EXPECT_EQ(render_markdown(R"({"schema": "other/2"})").error().to_string(),
              "schema: expected \"mediasim.summary/1\", got \"other/2\"");
    EXPECT_EQ(
        render_markdown(R"({"schema": "mediasim.summary/1", "metrics": {}})").error().to_string(),
        "calls: missing or not an object");
    EXPECT_EQ(render_markdown(R"({"schema": "mediasim.summary/1", "calls": {},
                                  "metrics": {"jitter": 3}})")
                  .error()
                  .to_string(),
              "metrics.jitter: not an object");
}

}  // namespace
