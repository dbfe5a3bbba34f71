#include "simulator/script.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <map>

using namespace mediasim::sim;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

Speech speech(std::size_t bytes, std::uint8_t value = 0x55) {
    return Speech{"test", std::vector<std::uint8_t>(bytes, value)};
}

struct Harness {
    std::vector<ScriptStep> steps;
    ScriptPlayer::TimePoint origin = ScriptPlayer::Clock::now();
    std::multimap<Metric, std::int64_t> metrics;
    std::optional<ScriptPlayer> player;
    std::array<std::uint8_t, 160> frame{};

    ScriptPlayer& start() {
        player.emplace(steps, origin, [this](Metric m, std::int64_t v) { metrics.emplace(m, v); });
        return *player;
    }
    ScriptPlayer::TimePoint at(std::chrono::milliseconds t) const { return origin + t; }
    ScriptPlayer::Frame tick(std::uint64_t i, bool playing = false) {
        return player->next_frame(i, playing, frame);
    }
};

TEST(ScriptPlayer, SpeaksInWholeFramesPaddedWithSilenceThenHangsUp) {
    Harness h;
    h.steps = {{SpeakStep{speech(400)}, 3}};
    auto& p = h.start();
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE(h.tick(i).hangup);
        EXPECT_EQ(h.frame[0], 0x55);
        EXPECT_EQ(h.frame[159], 0x55);
    }
    EXPECT_FALSE(h.tick(2).hangup);
    EXPECT_EQ(h.frame[79], 0x55);
    EXPECT_EQ(h.frame[80], 0xFF);   // 400 = 2.5 frames: the rest is μ-law silence
    EXPECT_TRUE(h.tick(3).hangup);  // the script ended: the caller hangs up
    EXPECT_TRUE(p.done());
    EXPECT_TRUE(p.failure().empty());
}

TEST(ScriptPlayer, ResponseLatencyCountsFromTheEndOfTheWords) {
    Harness h;
    WaitStep w;
    w.within = 1500ms;
    h.steps = {{SpeakStep{speech(240)}, 1}, {w, 2}, {HangupStep{}, 3}};
    auto& p = h.start();
    h.tick(0);
    h.tick(1);  // the words end 10 ms into frame 1: at 30 ms
    for (int i = 2; i < 30; ++i) EXPECT_FALSE(h.tick(i).hangup);
    p.bot_audio(h.at(730ms));
    EXPECT_TRUE(h.tick(37).hangup);  // wait satisfied, then hang up
    EXPECT_TRUE(p.failure().empty()) << p.failure();
    EXPECT_TRUE(p.expectation_failures().empty());
    ASSERT_EQ(h.metrics.count(Metric::response_latency), 1u);
    EXPECT_EQ(h.metrics.find(Metric::response_latency)->second, 700000);
}

TEST(ScriptPlayer, SlowAnswerMissesTheExpectation) {
    Harness h;
    WaitStep w;
    w.within = 1500ms;
    h.steps = {{SpeakStep{speech(160)}, 4}, {w, 5}};
    auto& p = h.start();
    h.tick(0);
    h.tick(1);
    p.bot_audio(h.at(2160ms));  // words ended at 20 ms
    h.tick(109);
    EXPECT_THAT(p.expectation_failures(),
                ElementsAre("steps[1] (line 5): bot audio 2140 ms after the caller's words > "
                            "1500 ms"));
}

TEST(ScriptPlayer, WaitTimesOutAndFailsTheCall) {
    Harness h;
    WaitStep w;
    w.timeout = 1s;
    h.steps = {{w, 7}};
    auto& p = h.start();
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(h.tick(i).hangup) << i;
    EXPECT_TRUE(h.tick(50).hangup);
    EXPECT_EQ(p.failure(), "steps[0] (line 7): no bot audio within 1000 ms");
}

TEST(ScriptPlayer, WaitForSilenceNeedsTheBotQuietLongEnough) {
    Harness h;
    WaitStep w;
    w.what = WaitStep::For::silence;
    w.silence = 100ms;
    h.steps = {{w, 1}, {SpeakStep{speech(160, 0x11)}, 2}};
    h.start();
    for (int i = 0; i < 10; ++i) h.tick(i, /*playing=*/true);
    // Quiet from frame 10 (200 ms): satisfied at 300 ms, when the caller speaks.
    for (int i = 10; i < 15; ++i) {
        h.tick(i, false);
        EXPECT_EQ(h.frame[0], 0xFF) << i;
    }
    h.tick(15, false);
    EXPECT_EQ(h.frame[0], 0x11);
}

TEST(ScriptPlayer, DtmfDigitsAreSpacedByTheGap) {
    Harness h;
    DtmfStep d;
    d.digits = "12#";
    d.gap = 250ms;
    h.steps = {{d, 1}};
    auto& p = h.start();
    std::map<int, std::string> sent;
    for (int i = 0; i < 40 && !p.done(); ++i) {
        auto f = h.tick(i);
        if (!f.dtmf.empty()) sent[i] = f.dtmf;
    }
    // 0 ms, then the first frame at or after 250 ms (260 ms), then 520 ms.
    EXPECT_EQ(sent, (std::map<int, std::string>{{0, "1"}, {13, "2"}, {26, "#"}}));
}

TEST(ScriptPlayer, BargeInMeasuresTheClear) {
    Harness h;
    BargeInStep b;
    b.speech = speech(800, 0x22);
    b.after = 200ms;
    b.clear_within = 300ms;
    h.steps = {{b, 9}};
    auto& p = h.start();
    for (int i = 0; i < 5; ++i) h.tick(i, false);
    p.bot_audio(h.at(95ms));
    for (int i = 5; i < 15; ++i) {  // the bot plays from 100 ms; the caller waits 200 ms
        h.tick(i, true);
        EXPECT_EQ(h.frame[0], 0xFF) << i;
    }
    h.tick(15, true);  // 300 ms: the caller starts to speak
    EXPECT_EQ(h.frame[0], 0x22);
    p.bot_clear(h.at(420ms));
    for (int i = 16; i < 21; ++i) h.tick(i, false);  // speech ends in frame 19; hang-up at 20
    EXPECT_TRUE(p.done());
    ASSERT_EQ(h.metrics.count(Metric::clear_latency), 1u);
    EXPECT_EQ(h.metrics.find(Metric::clear_latency)->second, 120000);
    EXPECT_TRUE(p.expectation_failures().empty());
}

TEST(ScriptPlayer, BargeInWithoutClearMissesTheExpectation) {
    Harness h;
    BargeInStep b;
    b.speech = speech(160);
    b.after = 0ms;
    b.clear_within = 300ms;
    h.steps = {{b, 9}, {SilenceStep{1s}, 10}};
    auto& p = h.start();
    for (int i = 0; i < 40; ++i) h.tick(i, true);
    EXPECT_THAT(p.expectation_failures(),
                ElementsAre("steps[0] (line 9): no clear within 300 ms of the barge-in"));
    EXPECT_EQ(h.metrics.count(Metric::clear_latency), 0u);
}

TEST(ScriptPlayer, WaitForANamedMark) {
    Harness h;
    WaitStep w;
    w.what = WaitStep::For::mark;
    w.mark = "greeting-done";
    w.timeout = 2s;
    h.steps = {{w, 1}};
    auto& p = h.start();
    h.tick(0);
    p.bot_mark(h.at(30ms), "other");
    EXPECT_FALSE(h.tick(2).hangup);
    p.bot_mark(h.at(50ms), "greeting-done");
    EXPECT_TRUE(h.tick(3).hangup);
    EXPECT_TRUE(p.failure().empty());
}

}  // namespace
