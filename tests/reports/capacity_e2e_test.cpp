// mediasim capacity end to end (issue 5 §3), against the real mediasim-server: tiny steps (1, 2, 3
// concurrent calls of a 2 s call, held 0.5 s) give a result, capacity.json, each step's run
// directory and the report with a chart of each SLO metric against concurrency (checked in the
// file and, when chromium is installed, in the DOM Chromium builds from it).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

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

json read_json(const fs::path& p) {
    return json::parse(slurp(p), nullptr, false);
}

int count(const std::string& s, const std::string& needle) {
    int n = 0;
    for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
    return n;
}

class CapacityE2e : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = mediasim::test::fresh_temp_dir("mediasim_capacity_e2e");
        // A 2 s call: the caller speaks, the echo bot answers (a response latency), hang up.
        std::ofstream(dir_ / "short.yaml") << "name: capacity-e2e\n"
                                              "stream: {mode: connect}\n"
                                              "steps:\n"
                                              "  - speak: {audio: " MEDIASIM_SOURCE_DIR
                                              "/scenarios/audio/hello.wav}\n"
                                              "  - wait: {for: audio, within: 5s, timeout: 10s}\n"
                                              "  - hangup\n";
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

    // Runs mediasim capacity; returns its exit status, its output in *out.
    int capacity(const std::string& slo, const std::string& max, const std::string& out_dir,
                 std::string* out) {
        const fs::path log = dir_ / (out_dir + ".log");
        auto p = Subprocess::spawn(
            {bin("mediasim").string(), "capacity", (dir_ / "short.yaml").string(), "--webhook",
             base_ + "/voice", "--slo", slo, "--start", "1", "--step", "1", "--max", max, "--hold",
             "0.5", "--out", (dir_ / out_dir).string(), "--quiet"},
            log);
        EXPECT_TRUE(p.ok()) << p.error().to_string();
        if (!p.ok()) return -1;
        const int rc = p->wait(120s);
        *out = slurp(log);
        return rc;
    }

    fs::path dir_;
    std::unique_ptr<mediasim::test::ReferenceServer> server_;
    std::string base_;
};

TEST_F(CapacityE2e, StepsUpAndReportsTheCapacityWithItsCharts) {
    // No timing assertion: limits no 2 s call can reach (its waits time out at 10 s, and the test
    // is bounded), so every step holds however loaded the machine; the values are still real.
    std::string out;
    ASSERT_EQ(capacity("response_p99<30s,pacing_p99<30000ms,failed<0.1%", "3", "cap", &out), 0)
        << out;
    EXPECT_NE(out.find("concurrency"), std::string::npos) << out;
    EXPECT_NE(out.find("Capacity: 3 concurrent call(s)"), std::string::npos) << out;
    EXPECT_EQ(count(out, "  held\n"), 3) << out;

    const json c = read_json(dir_ / "cap" / "capacity.json");
    ASSERT_TRUE(c.is_object()) << slurp(dir_ / "cap" / "capacity.json");
    EXPECT_EQ(c["schema"], "mediasim.capacity/1");
    EXPECT_EQ(c["capacity"], 3);
    EXPECT_TRUE(c["broken_at"].is_null());
    ASSERT_EQ(c["steps"].size(), 3u);
    for (int i = 0; i < 3; ++i) {
        const json& st = c["steps"][i];
        EXPECT_EQ(st["concurrency"], i + 1);
        EXPECT_EQ(st["held"], true);
        EXPECT_GE(st["calls"]["started"].get<int>(), i + 1);  // the step reached its concurrency
        EXPECT_EQ(st["calls"]["failed"], 0);
        ASSERT_EQ(st["checks"].size(), 3u);
        for (const auto& k : st["checks"]) EXPECT_TRUE(k["value"].is_number()) << k.dump();
        // The step's own run directory, with the same counts and the value the SLO judged.
        const fs::path d = dir_ / "cap" / st["dir"].get<std::string>();
        const json s = read_json(d / "summary.json");
        ASSERT_TRUE(s.is_object()) << d;
        EXPECT_EQ(s["calls"]["started"], st["calls"]["started"]);
        EXPECT_DOUBLE_EQ(st["checks"][0]["value"].get<double>(),
                         s["metrics"]["response_latency"]["p99"].get<double>() / 1e6);
        EXPECT_TRUE(fs::exists(d / "report.html"));
        EXPECT_TRUE(fs::exists(d / "pacing_error.hlog"));
    }

    // The report: a chart per objective with the measured values (3 points) and the limit.
    const fs::path html = fs::absolute(dir_ / "cap" / "report.html");
    const std::string source = slurp(html);
    EXPECT_EQ(count(source, "<svg class=\"chart\""), 3);
    EXPECT_EQ(count(source, "<polyline"), 6);
    EXPECT_NE(source.find("data-name=\"pacing_p99&lt;30000ms\""), std::string::npos);
    EXPECT_EQ(count(source, "<a href=\"steps/c"), 3);
    EXPECT_NE(source.find("capacity 3 concurrent calls"), std::string::npos);
    // Three points in each measured series (the polyline's "x,y " pairs).
    const auto pts = source.find("points=\"", source.find("data-name=\"response_p99"));
    ASSERT_NE(pts, std::string::npos);
    const auto end = source.find('"', pts + 8);
    EXPECT_EQ(count(source.substr(pts + 8, end - pts - 8), ","), 3);

    // `mediasim report DIR` renders the capacity page again from capacity.json.
    fs::remove(html);
    auto r = Subprocess::spawn({bin("mediasim").string(), "report", (dir_ / "cap").string()},
                               dir_ / "report.log");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->wait(60s), 0) << r->tail();
    EXPECT_EQ(slurp(html), source);

    // In a real browser, when there is one (scripts/setup.sh installs chromium).
    fs::path chromium;
    for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
        if (fs::exists(p)) chromium = p;
    if (const char* e = std::getenv("MEDIASIM_CHROMIUM")) chromium = e;
    if (chromium.empty()) return;
    const auto dump_dom = [&](const fs::path& page, const std::string& name) {
        const fs::path dom = dir_ / name;
        auto b =
            Subprocess::spawn({chromium.string(), "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                               "--user-data-dir=" + (dir_ / "profile").string(), "--dump-dom",
                               "file://" + page.string()},
                              dom);
        EXPECT_TRUE(b.ok());
        if (!b.ok()) return std::string();
        EXPECT_EQ(b->wait(120s), 0) << slurp(dom);
        return slurp(dom);
    };
    const std::string d = dump_dom(html, "dom.html");
    EXPECT_EQ(count(d, "<svg class=\"chart\""), 3) << d.substr(0, 2000);
    EXPECT_EQ(count(d, "<polyline"), 6);
    EXPECT_NE(d.find("id=\"step-table\""), std::string::npos);

    // A step's own report: the report of a real run against the reference server, with its
    // two distributions and four time series.
    const fs::path step = fs::absolute(dir_ / "cap" / "steps" / "c3" / "report.html");
    const std::string step_source = slurp(step);
    EXPECT_EQ(count(step_source, "<svg class=\"chart\""), 6);
    EXPECT_GE(count(step_source, "<polyline"), 6);  // a distribution or more, 4 time series
    const std::string sd = dump_dom(step, "step-dom.html");
    EXPECT_EQ(count(sd, "<svg class=\"chart\""), 6) << sd.substr(0, 2000);
    EXPECT_EQ(count(sd, "<polyline"), count(step_source, "<polyline"));
    EXPECT_NE(sd.find("id=\"verdict\">PASS<"), std::string::npos);
}

TEST_F(CapacityE2e, AFirstStepThatBreaksTheSloExitsOne) {
    // A stream connect (TCP and the WebSocket upgrade) never takes under a microsecond.
    std::string out;
    ASSERT_EQ(capacity("connect_p99<1us", "3", "broken", &out), 1) << out;
    EXPECT_NE(out.find("Capacity: none"), std::string::npos) << out;
    EXPECT_NE(out.find("BROKEN"), std::string::npos) << out;
    const json c = read_json(dir_ / "broken" / "capacity.json");
    ASSERT_TRUE(c.is_object());
    EXPECT_EQ(c["capacity"], 0);
    EXPECT_EQ(c["broken_at"], 1);
    ASSERT_EQ(c["steps"].size(), 1u);  // stopped at the first step that broke
    EXPECT_GT(c["steps"][0]["checks"][0]["value"].get<double>(), 1.0);
    EXPECT_TRUE(fs::exists(dir_ / "broken" / "report.html"));
}

TEST_F(CapacityE2e, ABadSloSaysWhereAndRunsNothing) {
    std::string out;
    ASSERT_EQ(capacity("response_p99<1500ms,pacing_p99<2xs", "3", "bad", &out), 2) << out;
    EXPECT_NE(out.find("--slo: column 33: unknown unit \"xs\""), std::string::npos) << out;
    EXPECT_NE(out.find("  response_p99<1500ms,pacing_p99<2xs\n"), std::string::npos) << out;
    EXPECT_NE(out.find("^"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(dir_ / "bad" / "capacity.json"));
}

}  // namespace
