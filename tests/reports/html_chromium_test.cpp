// The HTML report in a real browser (issue 5 §1): headless Chromium renders report.html to a
// screenshot and dumps the DOM it built; the charts must be there. Skipped when chromium is not
// installed (scripts/setup.sh installs it).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/histogram.hpp"
#include "reports/html.hpp"
#include "simulator/subprocess.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int count(const std::string& s, const std::string& needle) {
    int n = 0;
    for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
}

fs::path find_chromium() {
    if (const char* c = std::getenv("MEDIASIM_CHROMIUM")) return c;
    for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
        if (fs::exists(c)) return c;
    return {};
}

class Chromium : public ::testing::Test {
  protected:
    void SetUp() override {
        chromium_ = find_chromium();
        if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh)";
        dir_ = fs::temp_directory_path() / fmt::format("mediasim_chromium_{}", ::getpid());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "run");
        write_run(dir_ / "run");
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);  // the profile (--user-data-dir) with it
    }

    // A run directory as `mediasim run --out` leaves it (as tests/reports/html_test.cpp).
    static void write_run(const fs::path& d) {
        std::ofstream(d / "summary.json") << R"({
  "schema": "mediasim.summary/1", "scenario": "conversation",
  "target": "http://127.0.0.1:9/voice", "command_line": "mediasim run x.yaml",
  "started_at": "2026-11-25T01:00:00.000Z", "duration_seconds": 3.0,
  "shard": {"index": 0, "count": 1},
  "calls": {"started": 4, "completed": 3, "failed": 1, "expectations_failed": 0,
            "failed_by_class": {"timeout": 1}},
  "messages": {"sent": 600, "received": 500},
  "metrics": {"response_latency": {"unit": "us", "count": 100, "min": 1000, "p50": 50000,
              "p90": 90000, "p99": 99000, "p99_9": 100000, "max": 100000, "mean": 50500.0}},
  "failure_examples": [{"call": 3, "call_sid": "CA3", "class": "timeout",
                        "error": "no audio within 10 s"}]
}
)";
        std::ofstream ts(d / "timeseries.jsonl");
        for (int i = 1; i <= 3; ++i)
            ts << R"({"t": )" << i << R"(, "length": 1.0, "active": )" << i
               << R"(, "started": 1, "completed": 1, "failed": 0, "sent": 200, "received": 150, )"
               << R"("p99_us": {"pacing_error": 800, "response_latency": 99000}})"
               << "\n";
        mediasim::core::Histogram h;
        for (int v = 1; v <= 100; ++v) h.record(v * 1000);
        std::ofstream log(d / "response_latency.hlog");
        mediasim::core::HistogramLogWriter w(log);
        w.write_header(1700000000.0);
        w.write_interval("response_latency", 0, 1, h);
    }

    // Runs chromium headless on the report with a fresh profile; output goes to `log`.
    int chromium(const std::string& what, const fs::path& log, const fs::path& html) {
        auto p = Subprocess::spawn(
            {chromium_.string(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
             "--hide-scrollbars", "--user-data-dir=" + (dir_ / "profile").string(),
             "--window-size=1200,3000", what, "file://" + html.string()},
            log);
        EXPECT_TRUE(p.ok()) << p.error().to_string();
        if (!p.ok()) return -1;
        return p->wait(120s);  // terminated after that
    }

    fs::path chromium_;
    fs::path dir_;
};

TEST_F(Chromium, RendersTheReportWithItsCharts) {
    auto html_path = mediasim::reports::write_html_report(dir_ / "run");
    ASSERT_TRUE(html_path.ok()) << html_path.error().to_string();
    const fs::path html = fs::absolute(*html_path);
    const std::string source = slurp(html);
    const int charts = count(source, "<svg class=\"chart\"");
    const int lines = count(source, "<polyline");
    ASSERT_EQ(charts, 6);  // two distributions and four time series
    ASSERT_GE(lines, 5);   // one distribution series and the four time series

    // The DOM Chromium built from the file (no network: file:// and nothing fetched).
    const fs::path dom = dir_ / "dom.html";
    ASSERT_EQ(chromium("--dump-dom", dom, html), 0) << slurp(dom);
    const std::string d = slurp(dom);
    EXPECT_EQ(count(d, "<svg class=\"chart\""), charts) << d.substr(0, 2000);
    EXPECT_EQ(count(d, "<polyline"), lines);
    EXPECT_NE(d.find("id=\"verdict\""), std::string::npos);

    // The screenshot: a real PNG of the window's size, with something drawn in it.
    const fs::path png = dir_ / "report.png";
    ASSERT_EQ(chromium("--screenshot=" + png.string(), dir_ / "screenshot.log", html), 0)
        << slurp(dir_ / "screenshot.log");
    ASSERT_TRUE(fs::exists(png)) << slurp(dir_ / "screenshot.log");
    const std::string bytes = slurp(png);
    ASSERT_GT(bytes.size(), 20u * 1024) << "a blank page compresses to almost nothing";
    ASSERT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    ASSERT_EQ(bytes.substr(12, 4), "IHDR");
    const auto be32 = [&](std::size_t at) {
        std::uint32_t v = 0;
        for (std::size_t i = 0; i < 4; ++i)
            v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
        return v;
    };
    EXPECT_EQ(be32(16), 1200u);  // width
    EXPECT_EQ(be32(20), 3000u);  // height
}

}  // namespace
