// When calls arrive: constant rate, a Poisson process, or a linear ramp of the rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "simulator/scenario.hpp"

namespace mediasim::sim {

class ArrivalSchedule {
  public:
    ArrivalSchedule(const LoadShape& shape, std::uint64_t seed);
    // Offset from the start of the run at which the next call arrives. With a constant rate of 0
    // every call is due at once (the concurrency limit paces them).
    std::chrono::nanoseconds next();

  private:
    LoadShape shape_;
    std::mt19937_64 rng_;
    double t_ = 0;  // seconds since the start of the run
    bool first_ = true;
};

}  // namespace mediasim::sim
