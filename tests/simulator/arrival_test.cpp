#include "simulator/arrival.hpp"

#include <gtest/gtest.h>

using namespace mediasim::sim;
using namespace std::chrono_literals;

namespace {
double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}
}  // namespace

TEST(Arrival, ConstantRateSpacesCallsEvenly) {
    LoadShape s;
    s.rate = 4;
    ArrivalSchedule a(s, 1);
    EXPECT_EQ(a.next(), 0ns);
    EXPECT_NEAR(seconds(a.next()), 0.25, 1e-9);
    EXPECT_NEAR(seconds(a.next()), 0.50, 1e-9);
}

TEST(Arrival, ConstantRateZeroStartsEverythingAtOnce) {
    LoadShape s;
    ArrivalSchedule a(s, 1);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(a.next(), 0ns);
}

TEST(Arrival, PoissonHasTheRequestedMeanRateAndVariance) {
    LoadShape s;
    s.arrival = LoadShape::Arrival::poisson;
    s.rate = 10;
    ArrivalSchedule a(s, 42);
    a.next();
    const int n = 20000;
    double prev = 0, sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
        const double t = seconds(a.next());
        const double gap = t - prev;
        prev = t;
        sum += gap;
        sum2 += gap * gap;
    }
    const double mean = sum / n;
    const double var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.1, 0.005);  // exponential gaps: mean 1/rate ...
    EXPECT_NEAR(var, 0.01, 0.001);  // ... and variance 1/rate²
}

TEST(Arrival, RampReachesTheRateAndCountsMatchTheIntegral) {
    LoadShape s;
    s.arrival = LoadShape::Arrival::ramp;
    s.ramp_from = 1;
    s.rate = 11;
    s.ramp_over = 10s;
    ArrivalSchedule a(s, 1);
    // Calls in the first 10 s: the integral of 1 + t over [0, 10] = 60 (plus the one at t=0).
    int in_ramp = 0;
    double t = 0, last_gap = 0;
    while (true) {
        const double next = seconds(a.next());
        if (next > 10.0) {
            last_gap = next - t;
            break;
        }
        last_gap = next - t;
        t = next;
        ++in_ramp;
    }
    EXPECT_NEAR(in_ramp, 61, 1);
    const double t1 = seconds(a.next());
    const double t2 = seconds(a.next());
    EXPECT_NEAR(t2 - t1, 1.0 / 11, 1e-6) << "after the ramp the rate holds";
    EXPECT_LT(last_gap, 0.2);
}
