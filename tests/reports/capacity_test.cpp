// The capacity search, capacity.json, the stdout table and the HTML page, with steps whose
// summaries are made here (the real runner is exercised by tests/simulator/capacity_e2e_test).
#include "reports/capacity.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace {

using namespace mediasim::reports;
using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kMetrics = {"pacing_error", "response_latency"};

int count(const std::string& s, const std::string& needle) {
    int n = 0;
    for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
}

// A step's summary.json: response p99 grows with the concurrency; one call in 100 fails above 30.
std::string summary(int c) {
    const int started = c * 10;
    const int failed = c > 30 ? started / 100 : 0;
    return fmt::format(
        R"({{"schema": "mediasim.summary/1", "started_at": "2026-12-01T19:00:00.000Z",
  "duration_seconds": 2.5,
  "calls": {{"started": {}, "completed": {}, "failed": {}, "expectations_failed": 0}},
  "metrics": {{"response_latency": {{"unit": "us", "count": {}, "p50": 1000, "p90": 2000,
               "p99": {}, "p99_9": 5000, "max": 9000}}}}}})",
        started, started - failed, failed, started, 100000 * c);
}

struct Recorder {
    std::vector<int> ran;
    StepRunner runner() {
        return [this](int c) -> mediasim::core::Result<StepRun> {
            ran.push_back(c);
            return StepRun{summary(c), fmt::format("steps/c{}", c)};
        };
    }
};

CapacityPlan plan_of(int start, int step, int max) {
    CapacityPlan p;
    p.start = start;
    p.step = step;
    p.max = max;
    return p;
}

Slo slo(const char* text) {
    auto s = parse_slo(text, kMetrics);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return *s;
}

TEST(CapacitySearch, StopsAtTheFirstBrokenStep) {
    Recorder rec;
    CapacityPlan plan;
    plan.start = 10;
    plan.step = 5;
    plan.max = 100;
    int calls = 0;
    auto r = find_capacity(plan, slo("response_p99<2.2s,failed<0.5%"), rec.runner(),
                           [&](const CapacityResult& so_far) {
                               ++calls;
                               EXPECT_EQ(so_far.steps.size(), static_cast<std::size_t>(calls));
                           });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    // 10 .. 20 hold (p99 1.0 .. 2.0 s); 25 breaks (2.5 s).
    EXPECT_EQ(rec.ran, (std::vector<int>{10, 15, 20, 25}));
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(r->capacity, 20);
    EXPECT_EQ(r->broken_at, 25);
    EXPECT_FALSE(r->steps.back().evaluation.held);
    EXPECT_FALSE(r->steps.back().evaluation.checks[0].held);
    EXPECT_TRUE(r->steps.back().evaluation.checks[1].held);
    EXPECT_EQ(r->steps[0].started, 100u);
    EXPECT_EQ(r->plan.started_at, "2026-12-01T19:00:00.000Z");  // from the first step
    EXPECT_THAT(capacity_verdict(*r), HasSubstr("Capacity: 20 concurrent call(s)"));
    EXPECT_THAT(capacity_verdict(*r), HasSubstr("Broken at 25: response_p99<2.2s (2.50 s)"));
}

TEST(CapacitySearch, TheFailedRateBreaksToo) {
    Recorder rec;
    CapacityPlan plan = plan_of(28, 1, 40);
    auto r = find_capacity(plan, slo("failed<0.5%"), rec.runner());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->capacity, 30);
    EXPECT_EQ(r->broken_at, 31);
    EXPECT_DOUBLE_EQ(*r->steps.back().evaluation.checks[0].value, 3 * 100.0 / 310);
}

TEST(CapacitySearch, EveryStepHeldUpToMax) {
    Recorder rec;
    CapacityPlan plan = plan_of(1, 2, 6);
    auto r = find_capacity(plan, slo("response_p99<3600s"), rec.runner());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(rec.ran, (std::vector<int>{1, 3, 5}));
    EXPECT_EQ(r->capacity, 5);
    EXPECT_EQ(r->broken_at, 0);
    EXPECT_THAT(capacity_verdict(*r), HasSubstr("Every step held, up to --max 6"));
}

TEST(CapacitySearch, TheFirstStepBroken) {
    Recorder rec;
    CapacityPlan plan = plan_of(1, 1, 3);
    auto r = find_capacity(plan, slo("pacing_p99<1ms"), rec.runner());  // not measured
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(rec.ran, (std::vector<int>{1}));
    EXPECT_EQ(r->capacity, 0);
    EXPECT_EQ(r->broken_at, 1);
    EXPECT_THAT(capacity_verdict(*r), HasSubstr("none"));
    EXPECT_THAT(capacity_verdict(*r), HasSubstr("pacing_p99<1ms (not measured)"));
}

TEST(CapacitySearch, BadPlansAndStepErrors) {
    Recorder rec;
    EXPECT_FALSE(find_capacity(plan_of(0, 1, 1), slo("failed<1%"), rec.runner()).ok());
    EXPECT_FALSE(find_capacity(plan_of(5, 1, 4), slo("failed<1%"), rec.runner()).ok());
    EXPECT_TRUE(rec.ran.empty());
    auto failing = [](int) -> mediasim::core::Result<StepRun> {
        return mediasim::core::make_error("cannot write steps/c1");
    };
    auto r = find_capacity(plan_of(1, 1, 2), slo("failed<1%"), failing);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message, HasSubstr("cannot write"));
}

TEST(CapacityOutput, JsonTableAndReport) {
    Recorder rec;
    CapacityPlan plan = plan_of(10, 10, 100);
    plan.hold_seconds = 2;
    plan.scenario = "conversation <&>";
    plan.target = "http://127.0.0.1:9/voice";
    plan.command_line = "mediasim capacity x.yaml";
    const Slo s = slo("response_p99<3500ms,failed<0.5%");
    auto r = find_capacity(plan, s, rec.runner());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->capacity, 30);  // 40: 4 of 400 calls failed (1%)

    const auto j = nlohmann::json::parse(capacity_json(*r));
    EXPECT_EQ(j["schema"], "mediasim.capacity/1");
    EXPECT_EQ(j["capacity"], 30);
    EXPECT_EQ(j["broken_at"], 40);
    EXPECT_EQ(j["slo"], "response_p99<3500ms,failed<0.5%");
    ASSERT_EQ(j["objectives"].size(), 2u);
    EXPECT_EQ(j["objectives"][0]["metric"], "response_latency");
    EXPECT_EQ(j["objectives"][0]["stat"], "p99");
    EXPECT_EQ(j["objectives"][0]["unit"], "ms");
    ASSERT_EQ(j["steps"].size(), 4u);
    EXPECT_EQ(j["steps"][3]["concurrency"], 40);
    EXPECT_EQ(j["steps"][3]["held"], false);
    EXPECT_EQ(j["steps"][3]["dir"], "steps/c40");
    EXPECT_EQ(j["steps"][3]["calls"]["failed"], 4);
    EXPECT_DOUBLE_EQ(j["steps"][1]["checks"][0]["value"].get<double>(), 2000.0);
    EXPECT_EQ(j["plan"]["hold_seconds"], 2.0);

    const std::string table = capacity_table_header(s) + capacity_table_row(s, r->steps[0]) +
                              capacity_table_row(s, r->steps[3]);
    EXPECT_THAT(table, HasSubstr("concurrency"));
    EXPECT_THAT(table, HasSubstr("response_p99<3500ms"));
    EXPECT_THAT(table, HasSubstr("1000 ms"));
    EXPECT_THAT(table, HasSubstr("1.00%!"));  // the broken value is marked
    EXPECT_THAT(table, HasSubstr("BROKEN"));

    auto html = render_capacity_report(capacity_json(*r));
    ASSERT_TRUE(html.ok()) << html.error().to_string();
    EXPECT_EQ(count(*html, "<svg class=\"chart\""), 2);  // one per objective
    EXPECT_EQ(count(*html, "<polyline"), 4);             // measured and limit in each
    EXPECT_THAT(*html, HasSubstr("data-name=\"response_p99&lt;3500ms\""));
    EXPECT_THAT(*html, HasSubstr("data-name=\"limit &lt; 3500 ms\""));
    EXPECT_THAT(*html, HasSubstr("capacity 30 concurrent calls"));
    EXPECT_THAT(*html, HasSubstr("conversation &lt;&amp;&gt;"));
    EXPECT_EQ(count(*html, "<a href=\"steps/c"), 4);
    EXPECT_THAT(*html, HasSubstr("<a href=\"steps/c40/report.html\">"));
    EXPECT_EQ(count(*html, ">held</span>"), 3);
    EXPECT_EQ(count(*html, ">broken</span>"), 1);
    EXPECT_THAT(*html, Not(HasSubstr("http://www.w3.org/1999")));  // nothing but the SVG ns
    EXPECT_THAT(*html, Not(HasSubstr("<script")));
}

TEST(CapacityOutput, ReportOfABadFileIsAnError) {
    EXPECT_FALSE(render_capacity_report("{").ok());
    EXPECT_FALSE(render_capacity_report(R"({"schema": "mediasim.summary/1"})").ok());
}

}  // namespace
