// The exit codes of `mediasim report compare` (the real binary).
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

// The exit codes of the real binary: 0 (no regression), 1 (regression), 2 (bad input).
class CompareCli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mediasim_compare_" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        for (const char* d : {"base", "same", "slow"}) fs::create_directories(dir_ / d);
        std::ofstream(dir_ / "base" / "summary.json") << summary(100000, 0);
        std::ofstream(dir_ / "same" / "summary.json") << summary(105000, 0);
        std::ofstream(dir_ / "slow" / "summary.json") << summary(150000, 0);
    }
    void TearDown() override { fs::remove_all(dir_); }
    int run(const std::string& args) {
        const char* bin = std::getenv("MEDIASIM_BIN_DIR");
        const std::string cmd =
            fmt::format("'{}/mediasim' report compare {} > '{}' 2>&1",
                        bin ? bin : MEDIASIM_BINARY_DIR "/bin", args, (dir_ / "out.txt").string());
        const int st = std::system(cmd.c_str());
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::string output() {
        std::ifstream in(dir_ / "out.txt");
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    fs::path dir_;
};

TEST_F(CompareCli, ExitCodes) {
    const auto p = [&](const char* d) { return "'" + (dir_ / d).string() + "'"; };
    EXPECT_EQ(run(p("base") + " " + p("same")), 0) << output();
    EXPECT_THAT(output(), HasSubstr("response_latency"));
    EXPECT_EQ(run(p("base") + " " + p("slow")), 1) << output();
    EXPECT_THAT(output(), HasSubstr("REGRESSION"));
    EXPECT_EQ(run(p("base") + " " + p("slow") + " --max-regression 60%"), 0) << output();
    EXPECT_EQ(run(p("base") + " " + p("same") + " --max-regression 1%"), 1) << output();
    EXPECT_EQ(run(p("base") + " " + p("missing")), 2) << output();
    EXPECT_THAT(output(), HasSubstr("missing"));
    EXPECT_EQ(run(p("base") + " " + p("same") + " --max-regression lots"), 2) << output();
}

}  // namespace
