// The network impairments' frame gate: when each frame leaves, as pure logic.
#include "simulator/impairment.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace mediasim::sim;
using namespace std::chrono_literals;
using Clock = FrameGate::Clock;

namespace {

// Release times (ms since the origin) of n frames due every 20 ms from 20 ms.
std::vector<std::int64_t> releases(const Impairments& imp, int n, std::uint64_t seed = 1) {
    const auto origin = Clock::time_point{} + 1h;
    FrameGate g(imp, origin, seed);
    std::vector<std::int64_t> out;
    for (int i = 1; i <= n; ++i)
        out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                          g.release(origin + 20ms * i) - origin)
                          .count());
    return out;
}

}  // namespace

TEST(FrameGate, NothingHeldWithoutImpairments) {
    auto r = releases(Impairments{}, 5);
    EXPECT_EQ(r, (std::vector<std::int64_t>{20, 40, 60, 80, 100}));
}

TEST(FrameGate, APauseHoldsFiftyFramesAndReleasesThemAtOnce) {
    Impairments imp;
    imp.pause_for = 1s;
    imp.pause_every = 3s;
    auto r = releases(imp, 250);  // 5 s
    // Frames due in [3000, 4000) leave at 4000 together: 50 of them.
    int burst = 0;
    for (int i = 0; i < 250; ++i) {
        const auto due = 20 * (i + 1);
        if (due >= 3000 && due < 4000) {
            EXPECT_EQ(r[i], 4000) << due;
            ++burst;
        } else {
            EXPECT_EQ(r[i], due);
        }
    }
    EXPECT_EQ(burst, 50);
}

TEST(FrameGate, JitterNeverReordersAndMakesBursts) {
    for (auto dist : {Impairments::Distribution::exponential, Impairments::Distribution::uniform}) {
        Impairments imp;
        imp.jitter = 40ms;
        imp.distribution = dist;
        auto r = releases(imp, 5000, 7);
        double held = 0;
        int same_as_previous = 0;
        for (int i = 0; i < 5000; ++i) {
            const auto due = 20 * (i + 1);
            EXPECT_GE(r[i], due);
            if (i > 0) {
                EXPECT_GE(r[i], r[i - 1]);
                if (r[i] - r[i - 1] <= 1) ++same_as_previous;
            }
            held += static_cast<double>(r[i] - due);
        }
        // In order, so holds add up beyond the mean; frames arrive together (bursts).
        EXPECT_GT(held / 5000, 35.0);
        EXPECT_LT(held / 5000, 200.0);
        EXPECT_GT(same_as_previous, 250);
        // The same seed gives the same schedule.
        EXPECT_EQ(r, releases(imp, 5000, 7));
        EXPECT_NE(r, releases(imp, 5000, 8));
    }
}

TEST(Impairments, FlagsParseAndOverride) {
    ImpairmentFlags f;
    f.jitter = "30ms:uniform";
    f.pause = "500ms/5s";
    f.slow_read = "20ms";
    f.drop_at = "0s";
    f.webhook_delay = "1s";
    auto imp = impairments_from_flags(f);
    ASSERT_TRUE(imp.ok()) << imp.error().to_string();
    EXPECT_EQ(imp->jitter, 30ms);
    EXPECT_EQ(imp->distribution, Impairments::Distribution::uniform);
    EXPECT_EQ(imp->pause_for, 500ms);
    EXPECT_EQ(imp->pause_every, 5s);
    EXPECT_EQ(imp->slow_read, 20ms);
    EXPECT_EQ(imp->drop_at, std::optional<std::chrono::milliseconds>(0ms));
    EXPECT_EQ(imp->webhook_delay, 1s);
    EXPECT_EQ(imp->describe(),
              "jitter 30ms uniform, pause 500ms every 5000ms, slow read 20ms, drop at 0ms, "
              "webhook delay 1000ms");

    Impairments base;
    base.jitter = 10ms;
    base.slow_read = 5ms;
    Impairments over;
    over.jitter = 50ms;
    base.override_with(over);
    EXPECT_EQ(base.jitter, 50ms);
    EXPECT_EQ(base.slow_read, 5ms);

    for (auto [flag, value, want] :
         {std::tuple{"jitter", "fast", "--jitter: \"fast\" is not a duration > 0"},
          {"jitter", "40ms:gaussian", "the distribution must be uniform or exponential"},
          {"pause", "10s/1s", "--pause: \"10s/1s\" is not FOR/EVERY with FOR < EVERY"},
          {"slow-read", "0s", "--slow-read: \"0s\" is not a duration > 0"}}) {
        ImpairmentFlags b;
        if (std::string(flag) == "jitter") b.jitter = value;
        if (std::string(flag) == "pause") b.pause = value;
        if (std::string(flag) == "slow-read") b.slow_read = value;
        auto r = impairments_from_flags(b);
        ASSERT_FALSE(r.ok()) << flag;
        EXPECT_NE(r.error().to_string().find(want), std::string::npos) << r.error().to_string();
    }
}
