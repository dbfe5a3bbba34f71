#include "reports/html.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "core/histogram.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::reports::render_html_report;
using mediasim::reports::Series;
using mediasim::reports::svg_line_chart;
using ::testing::HasSubstr;
using ::testing::Not;

int count(const std::string& s, const std::string& needle) {
    int n = 0;
    for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
}

class HtmlReport : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mediasim_html_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write_run(bool failed) {
        std::ofstream(dir_ / "summary.json")
            << R"({
  "schema": "mediasim.summary/1", "scenario": "conversation <&>",
  "target": "http://127.0.0.1:9/voice", "command_line": "mediasim run x.yaml",
  "started_at": "2026-11-25T01:00:00.000Z", "duration_seconds": 3.0,
  "shard": {"index": 0, "count": 1},
  "calls": {"started": 4, "completed": )"
            << (failed ? 3 : 4) << R"(, "failed": )" << (failed ? 1 : 0)
            << R"(, "expectations_failed": 0,
            "failed_by_class": )"
            << (failed ? R"({"timeout": 1})" : "{}") << R"(},
  "messages": {"sent": 600, "received": 500},
  "metrics": {"response_latency": {"unit": "us", "count": 100, "min": 1000, "p50": 50000,
              "p90": 90000, "p99": 99000, "p99_9": 100000, "max": 100000, "mean": 50500.0}},
  "failure_examples": )"
            << (failed ? R"([{"call": 3, "call_sid": "CA3", "class": "timeout",
                                           "error": "no <audio> within 10 s"}])"
                       : "[]")
            << "}\n";
        std::ofstream ts(dir_ / "timeseries.jsonl");
        for (int i = 1; i <= 3; ++i)
            ts << R"({"t": )" << i << R"(, "length": 1.0, "active": )" << i
               << R"(, "started": 1, "completed": 1, "failed": 0, "sent": 200, "received": 150, )"
               << R"("p99_us": {"pacing_error": 800, "response_latency": 99000}})"
               << "\n";
        mediasim::core::Histogram h;
        for (int v = 1; v <= 100; ++v) h.record(v * 1000);
        std::ofstream log(dir_ / "response_latency.hlog");
        mediasim::core::HistogramLogWriter w(log);
        w.write_header(1700000000.0);
        w.write_interval("response_latency", 0, 1, h);
    }
    fs::path dir_;
};

TEST_F(HtmlReport, HasEverySectionAndItsCharts) {
    write_run(true);
    auto html = render_html_report(dir_);
    ASSERT_TRUE(html.ok()) << html.error().to_string();
    for (const char* id : {"summary", "distributions", "timeseries", "failures", "settings"})
        EXPECT_THAT(*html, HasSubstr(std::string("id=\"") + id + "\"")) << id;
    EXPECT_THAT(*html, HasSubstr("<span class=\"badge fail\" id=\"verdict\">FAIL</span>"));
    // Two distribution charts and four time series.
    EXPECT_EQ(count(*html, "<svg class=\"chart\""), 6);
    // The response latency distribution is drawn from the interval log.
    EXPECT_THAT(*html, HasSubstr("data-name=\"response latency\""));
    // One distribution (only response_latency.hlog exists; the timing chart says "no data") and
    // the four time series.
    EXPECT_EQ(count(*html, "class=\"series\""), 5);
    EXPECT_EQ(count(*html, ">no data</text>"), 1);
    // Text is escaped; nothing is fetched.
    EXPECT_THAT(*html, HasSubstr("conversation &lt;&amp;&gt;"));
    EXPECT_THAT(*html, HasSubstr("no &lt;audio&gt; within 10 s"));
    EXPECT_THAT(*html, Not(HasSubstr("http://cdn")));
    EXPECT_THAT(*html, Not(HasSubstr("<script src")));
    EXPECT_THAT(*html, Not(HasSubstr("<link")));
}

TEST_F(HtmlReport, PassWithoutFailures) {
    write_run(false);
    auto html = render_html_report(dir_);
    ASSERT_TRUE(html.ok());
    EXPECT_THAT(*html, HasSubstr(">PASS</span>"));
    EXPECT_THAT(*html, HasSubstr("No call failed and every expectation held."));
}

TEST_F(HtmlReport, ErrorsNameTheFile) {
    auto r = render_html_report(dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message, HasSubstr("summary.json: not found"));
    std::ofstream(dir_ / "summary.json") << "{\"x\": 1}";
    r = render_html_report(dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.error().message, HasSubstr("not a mediasim summary"));
}

TEST(SvgChart, ScalesPointsIntoThePlotArea) {
    auto svg = svg_line_chart({Series{"a", {{0, 0}, {10, 5}}}}, {"t", "x", "y", false, 400, 200});
    // Plot area: x 64..384, y 28..156. (0,0) is bottom left, (10,5) is top right.
    EXPECT_THAT(svg, HasSubstr("points=\"64.0,156.0 384.0,28.0 \""));
    EXPECT_THAT(svg, HasSubstr("data-series=\"1\""));
}

TEST(SvgChart, PercentileAxisIsLogarithmic) {
    auto svg = svg_line_chart({Series{"p", {{0, 1}, {90, 1}, {99, 1}}}},
                              {"t", "percentile", "ms", true, 400, 200});
    // 90% lands at 1/2 of the axis (0..2 decades), 99% at its end.
    EXPECT_THAT(svg, HasSubstr("points=\"64.0,28.0 224.0,28.0 384.0,28.0 \""));
    EXPECT_THAT(svg, HasSubstr(">99%</text>"));
}

TEST(SvgChart, EmptyChartSaysSo) {
    EXPECT_THAT(svg_line_chart({}, {"t", "x", "y"}), HasSubstr("no data"));
}

}  // namespace
