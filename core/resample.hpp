// Streaming sample-rate conversion between 8 kHz and 16/24/48 kHz through speexdsp, with the
// filter state kept per stream so that 20 ms frames join without clicks. Every block of N input
// samples gives exactly N * out_rate / in_rate output samples when that is an integer (20 ms in
// gives 20 ms out); fractional remainders are carried between calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace mediasim::core {

class Resampler {
  public:
    // speexdsp quality 0..10; 3 is its VoIP setting.
    static constexpr int kVoipQuality = 3;

    // Rates must be positive and quality 0..10, else std::invalid_argument (the arguments come
    // from code or from an already validated file, so a bad one is a programming error).
    Resampler(int in_rate_hz, int out_rate_hz, int quality = kVoipQuality);
    ~Resampler();
    Resampler(Resampler&&) noexcept;
    Resampler& operator=(Resampler&&) noexcept;
    Resampler(const Resampler&) = delete;
    Resampler& operator=(const Resampler&) = delete;

    int in_rate_hz() const { return in_rate_; }
    int out_rate_hz() const { return out_rate_; }

    // Output samples that process() writes for in_samples input samples, at most.
    std::size_t max_output(std::size_t in_samples) const;
    // Converts one block; out must hold max_output(in.size()). Returns samples written.
    std::size_t process(std::span<const std::int16_t> in, std::int16_t* out);
    // Delay of the filter, in output samples. Exact for the ratios between 8 kHz and 16/24/48 kHz
    // (3 ms at the VoIP quality); for ratios where it is not a whole number of output samples
    // (22.05 kHz -> 8 kHz: 24.67) it is rounded to the nearest one.
    int delay_samples() const;
    // The same delay in input samples, which is exact for every ratio (half the filter length):
    // a caller that must align to the sample can feed k leading zeros such that
    // (input_delay_samples() + k) * out_rate / in_rate is whole, and drop that many outputs.
    int input_delay_samples() const;
    // Forgets the stream's history (a new stream).
    void reset();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int in_rate_ = 0;
    int out_rate_ = 0;
};

}  // namespace mediasim::core
