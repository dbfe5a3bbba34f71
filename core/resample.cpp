#include "core/resample.hpp"

#include <speex/speex_resampler.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace mediasim::core {

// Design: the resampler is created without speex_resampler_skip_zeros(), so its history starts
// as zeros (silence before the stream began) and speexdsp outputs from the first call: every
// block of N input samples gives N * out / in outputs (exactly, for the integer ratios between
// 8 kHz and 16/24/48 kHz), at the price of a fixed delay of half the filter, about 3 ms at the
// VoIP quality. skip_zeros would remove that delay but make the first frame short (272 instead
// of 320 samples for 8k->16k), which a 20 ms frame pipeline cannot take.
struct Resampler::Impl {
    SpeexResamplerState* state = nullptr;  // null when the rates are equal (a plain copy)
    std::uint64_t num = 1;                 // out_rate / in_rate in lowest terms
    std::uint64_t den = 1;

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        if (state != nullptr) speex_resampler_destroy(state);
    }
};

Resampler::Resampler(int in_rate_hz, int out_rate_hz, int quality)
    : impl_(std::make_unique<Impl>()), in_rate_(in_rate_hz), out_rate_(out_rate_hz) {
    // Constructor arguments come from code, not from a stream: bad ones are a programming error.
    if (in_rate_hz <= 0 || out_rate_hz <= 0) {
        throw std::invalid_argument("Resampler: sample rates must be positive, got " +
                                    std::to_string(in_rate_hz) + " and " +
                                    std::to_string(out_rate_hz));
    }
    if (quality < 0 || quality > 10) {
        throw std::invalid_argument("Resampler: quality must be 0..10, got " +
                                    std::to_string(quality));
    }
    const auto g = std::gcd(in_rate_hz, out_rate_hz);
    impl_->num = static_cast<std::uint64_t>(out_rate_hz / g);
    impl_->den = static_cast<std::uint64_t>(in_rate_hz / g);
    if (in_rate_hz == out_rate_hz) return;
    int err = RESAMPLER_ERR_SUCCESS;
    impl_->state = speex_resampler_init(1, static_cast<spx_uint32_t>(in_rate_hz),
                                        static_cast<spx_uint32_t>(out_rate_hz), quality, &err);
    if (impl_->state == nullptr || err != RESAMPLER_ERR_SUCCESS) {
        throw std::invalid_argument(std::string("Resampler: speexdsp: ") +
                                    speex_resampler_strerror(err));
    }
}

Resampler::~Resampler() = default;
Resampler::Resampler(Resampler&&) noexcept = default;
Resampler& Resampler::operator=(Resampler&&) noexcept = default;

std::size_t Resampler::max_output(std::size_t in_samples) const {
    // The carried fraction adds at most one sample to the exact quotient.
    return static_cast<std::size_t>(
        (static_cast<std::uint64_t>(in_samples) * impl_->num + impl_->den - 1) / impl_->den + 1);
}

std::size_t Resampler::process(std::span<const std::int16_t> in, std::int16_t* out) {
    Impl& im = *impl_;
    if (im.state == nullptr) {
        if (!in.empty()) std::memcpy(out, in.data(), in.size_bytes());
        return in.size();
    }
    const std::size_t capacity = max_output(in.size());
    std::size_t used = 0;
    std::size_t written = 0;
    // speexdsp counts in 32-bit lengths; feed very long blocks in pieces.
    constexpr std::size_t kChunk = std::size_t{1} << 24;
    while (used < in.size()) {
        const std::size_t take = std::min(in.size() - used, kChunk);
        auto in_len = static_cast<spx_uint32_t>(take);
        auto out_len = static_cast<spx_uint32_t>(
            std::min<std::size_t>(capacity - written, std::numeric_limits<spx_uint32_t>::max()));
        speex_resampler_process_int(im.state, 0, in.data() + used, &in_len, out + written,
                                    &out_len);
        used += in_len;
        written += out_len;
        if (in_len == 0 && out_len == 0) break;  // no progress: out of room (cannot happen)
    }
    return written;
}

int Resampler::delay_samples() const {
    if (impl_->state == nullptr) return 0;
    return speex_resampler_get_output_latency(impl_->state);
}

int Resampler::input_delay_samples() const {
    if (impl_->state == nullptr) return 0;
    return speex_resampler_get_input_latency(impl_->state);
}

void Resampler::reset() {
    if (impl_->state != nullptr) speex_resampler_reset_mem(impl_->state);
}

}  // namespace mediasim::core
