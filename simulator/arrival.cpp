#include "simulator/arrival.hpp"

#include <algorithm>
#include <cmath>

namespace mediasim::sim {

ArrivalSchedule::ArrivalSchedule(const LoadShape& shape, std::uint64_t seed)
    : shape_(shape), rng_(seed) {}

std::chrono::nanoseconds ArrivalSchedule::next() {
    using Arrival = LoadShape::Arrival;
    if (first_) {
        first_ = false;  // the first call starts at once
    } else if (shape_.arrival == Arrival::constant) {
        if (shape_.rate > 0) t_ += 1.0 / shape_.rate;
    } else if (shape_.arrival == Arrival::poisson) {
        std::exponential_distribution<double> gap(shape_.rate);
        t_ += gap(rng_);
    } else {
        // Ramp: the rate grows linearly from ramp_from to rate over ramp_over, then holds. The
        // next arrival is where the integral of the rate from t_ reaches 1.
        const double T = std::chrono::duration<double>(shape_.ramp_over).count();
        const double r0 = std::max(shape_.ramp_from, 1e-6);
        const double r1 = shape_.rate;
        if (t_ >= T) {
            t_ += 1.0 / r1;
        } else {
            const double a = (r1 - r0) / T;  // rate(t) = r0 + a t
            const double rt = r0 + a * t_;
            double dt;
            if (std::abs(a) < 1e-12) {
                dt = 1.0 / rt;
            } else {
                // rt·dt + a/2·dt² = 1
                dt = (-rt + std::sqrt(rt * rt + 2 * a)) / a;
            }
            if (t_ + dt > T) {  // crosses the end of the ramp: finish at the held rate
                const double used = rt * (T - t_) + a / 2 * (T - t_) * (T - t_);
                dt = (T - t_) + (1 - used) / r1;
            }
            t_ += dt;
        }
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(t_ * 1e9));
}

}  // namespace mediasim::sim
