#include "simulator/subprocess.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace {

using mediasim::sim::Subprocess;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class SubprocessTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("mediasim_subprocess_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(SubprocessTest, WaitsForALineThenTerminates) {
    auto p = Subprocess::spawn({"sh", "-c",
                                "echo starting; sleep 0.2; echo 'listening on 42'; "
                                "exec sleep 30"},
                               dir_ / "a.log");
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    auto line = p->wait_for_line("listening on", std::chrono::seconds(10));
    ASSERT_TRUE(line.ok()) << line.error().to_string();
    EXPECT_EQ(*line, "listening on 42");
    EXPECT_TRUE(p->running());
    EXPECT_EQ(p->terminate(), 128 + 15);  // SIGTERM
    EXPECT_FALSE(p->running());
}

TEST_F(SubprocessTest, ReportsAnEarlyExitWithTheLogTail) {
    auto p = Subprocess::spawn({"sh", "-c", "echo 'bad flag --x' >&2; exit 3"}, dir_ / "b.log");
    ASSERT_TRUE(p.ok());
    auto line = p->wait_for_line("listening on", std::chrono::seconds(10));
    ASSERT_FALSE(line.ok());
    EXPECT_THAT(line.error().message, HasSubstr("sh exited (status 3) before printing"));
    EXPECT_THAT(line.error().message, HasSubstr("bad flag --x"));
}

TEST_F(SubprocessTest, TimesOut) {
    auto p = Subprocess::spawn({"sh", "-c", "exec sleep 30"}, dir_ / "c.log");
    ASSERT_TRUE(p.ok());
    auto line = p->wait_for_line("never", std::chrono::milliseconds(200));
    ASSERT_FALSE(line.ok());
    EXPECT_THAT(line.error().message, HasSubstr("no \"never\" in"));
}

TEST_F(SubprocessTest, MissingProgram) {
    auto p = Subprocess::spawn({"/nonexistent/mediasim-server"}, dir_ / "d.log");
    ASSERT_FALSE(p.ok());
    EXPECT_THAT(p.error().message, HasSubstr("cannot start /nonexistent/mediasim-server"));
}

TEST_F(SubprocessTest, KillsAChildThatIgnoresSigterm) {
    auto p = Subprocess::spawn({"sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"},
                               dir_ / "e.log");
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(p->wait_for_line("up", std::chrono::seconds(10)).ok());
    EXPECT_EQ(p->terminate(std::chrono::milliseconds(300)), 128 + 9);  // SIGKILL
}

}  // namespace
