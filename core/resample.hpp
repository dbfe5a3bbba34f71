// Streaming sample-rate conversion between 8 kHz and 16/24/48 kHz, with the filter state kept per
// stream so that 20 ms frames join without clicks. The integer ratios 8k <-> 16k, 24k and 48k
// can go through a fixed-ratio polyphase FIR of our own (Kaiser-windowed sinc, int16 taps, SSE2),
// the default for 8k <-> 16k; every other ratio goes through speexdsp. Every block of N input
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

    // Which implementation converts. kAuto: the polyphase FIR for 8k <-> 16k (where it beats
    // speexdsp on speed and quality), else speexdsp. kFir for a ratio it does not support is
    // std::invalid_argument. Equal rates are a plain copy whatever the engine.
    enum class Engine { kAuto, kSpeexdsp, kFir };
    // True for 8000 -> 16000/24000/48000 and back.
    static bool fir_supports(int in_rate_hz, int out_rate_hz);

    // Rates must be positive and quality 0..10, else std::invalid_argument (the arguments come
    // from code or from an already validated file, so a bad one is a programming error).
    // Engine::kAuto; quality applies when speexdsp converts.
    Resampler(int in_rate_hz, int out_rate_hz, int quality = kVoipQuality);
    Resampler(int in_rate_hz, int out_rate_hz, Engine engine, int quality = kVoipQuality);
    ~Resampler();
    Resampler(Resampler&&) noexcept;
    Resampler& operator=(Resampler&&) noexcept;
    Resampler(const Resampler&) = delete;
    Resampler& operator=(const Resampler&) = delete;

    int in_rate_hz() const { return in_rate_; }
    int out_rate_hz() const { return out_rate_; }
    // The engine in use: kFir or kSpeexdsp (kSpeexdsp also for equal rates, a plain copy).
    Engine engine() const;

    // Output samples that process() writes for in_samples input samples, at most.
    std::size_t max_output(std::size_t in_samples) const;
    // Converts one block; out must hold max_output(in.size()). Returns samples written.
    std::size_t process(std::span<const std::int16_t> in, std::int16_t* out);
    // Delay of the filter, in output samples. Exact for the ratios between 8 kHz and 16/24/48 kHz
    // (3 ms for speexdsp at the VoIP quality, 4.375 ms for the FIR); for ratios where it is not a
    // whole number of output samples (22.05 kHz -> 8 kHz: 24.67) it is rounded to the nearest one.
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
