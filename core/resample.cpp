#include "core/resample.hpp"

#include <speex/speex_resampler.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace mediasim::core {

namespace {

// Fixed-ratio polyphase FIR for 8 kHz <-> 16/24/48 kHz (ratio F = 2, 3 or 6).
//
// One linear-phase low-pass of N = 2 * F * kHalfLen8k + 1 taps is designed at the high rate
// (Kaiser-windowed sinc, cut-off kCutoffHz), so its delay (N - 1) / 2 is kHalfLen8k samples at
// 8 kHz whatever F is (4.375 ms), a whole number of input and of output samples both ways.
// Up by F: output F*n + p is the dot product of the last K inputs with row p, the taps
// h[p], h[p + F], ... reversed (the polyphase branches); down by F: output n is the dot product
// of the K inputs ending at input F*n with the reversed filter. Rows are padded with leading zero
// taps to K, a multiple of 8, hold int16 taps (make_design()) and are summed 8 taps per
// instruction (SSE2 pmaddwd) into int32 lanes over segments short enough that no input can
// overflow them; the segment sums are added in float, scaled by one factor for every row (the
// DC gain exactly 1), rounded to nearest and saturated to int16. The history (K - 1 inputs) is kept
// per stream so that blocks join exactly.
constexpr int kHalfLen8k = 35;        // half the filter, in 8 kHz samples: the delay
constexpr double kCutoffHz = 3690.0;  // -6 dB point, between the 3.4 kHz band edge and 4 kHz
// Fraction of the int16 range given to the largest tap. Chosen by measurement (core/README.md):
// 0.42, 0.6, 0.8 and 1.0 give a worst alias rejection (4.05 to 7.95 kHz, 16k -> 8k) of 75.0,
// 79.9, 81.4 and 79.9 dB; the refinement, not the scale, decides at these levels.
constexpr double kTapScale = 0.8;
constexpr double kKaiserBeta = 8.2;  // about 83 dB stop-band for the window alone

double bessel_i0(double x) {
    double sum = 1.0, term = 1.0;
    for (int k = 1; k < 60; ++k) {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

// The integer filter for ratio F: N = 2 * F * kHalfLen8k + 1 symmetric int16 taps and their sum.
// Designed in double, then quantised with the largest tap at kTapScale of the int16 range. Plain
// rounding leaves the stop band at about -70 dB (the rounding errors add up); the rounded taps
// are then refined, one symmetric pair at a time by +-1 (at most 3 from the rounded value), to
// minimise the energy of the response over a grid of the stop band (4 kHz up to half the high
// rate). Designed once per ratio, and shared by both directions.
struct FirDesign {
    std::vector<std::int16_t> taps;
    std::int64_t sum = 0;
};

FirDesign make_design(int factor) {
    const int n_taps = 2 * factor * kHalfLen8k + 1;
    const int center = factor * kHalfLen8k;
    const double high_rate = 8000.0 * factor;
    const double fc = kCutoffHz / high_rate;  // cycles per high-rate sample
    const double i0_beta = bessel_i0(kKaiserBeta);
    // Half of the symmetric filter: h[center + j], j = 0..center.
    std::vector<double> half(static_cast<std::size_t>(center) + 1);
    double sum = 0, max_abs = 0;
    for (int j = 0; j <= center; ++j) {
        const double t = j;
        const double sinc =
            j == 0 ? 2.0 * fc : std::sin(2.0 * std::numbers::pi * fc * t) / (std::numbers::pi * t);
        const double r = t / center;
        const double v =
            sinc * bessel_i0(kKaiserBeta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta;
        half[static_cast<std::size_t>(j)] = v;
        const double w = j == 0 ? 1.0 : 2.0;
        sum += w * v;
        max_abs = std::max(max_abs, std::abs(v));
    }
    // The largest tap at kTapScale of 32767 less the refinement's room (+-3). The int32 sums are
    // kept from overflowing by summing in segments (PolyphaseFir::seg_blocks_).
    const double scale = kTapScale * (32767.0 - 3.0) / (max_abs / sum);
    std::vector<int> q(half.size());
    for (std::size_t j = 0; j < half.size(); ++j) {
        q[j] = static_cast<int>(std::lround(half[j] / sum * scale));
    }
    // Stop-band grid and the amplitude response A(f) = q0 + 2 sum_j qj cos(2 pi f j / rate).
    std::vector<double> grid;
    for (double f = 4000.0; f <= high_rate / 2; f += 20.0) grid.push_back(f);
    const std::size_t g = grid.size();
    std::vector<double> basis(half.size() * g);
    for (std::size_t j = 0; j < half.size(); ++j) {
        for (std::size_t i = 0; i < g; ++i) {
            basis[j * g + i] = (j == 0 ? 1.0 : 2.0) * std::cos(2.0 * std::numbers::pi * grid[i] /
                                                               high_rate * static_cast<double>(j));
        }
    }
    std::vector<double> amp(g, 0.0);
    for (std::size_t j = 0; j < half.size(); ++j) {
        for (std::size_t i = 0; i < g; ++i) amp[i] += q[j] * basis[j * g + i];
    }
    const std::vector<int> start = q;
    const auto fits = [&](std::size_t j, int v) {
        return std::abs(v) <= 32767 && std::abs(v - start[j]) <= 3;
    };
    for (int pass = 0; pass < 40; ++pass) {
        bool improved = false;
        for (std::size_t j = 0; j < half.size(); ++j) {
            const double* bj = basis.data() + j * g;
            double best_gain = 0;
            int best_d = 0;
            for (const int d : {-1, 1}) {
                if (!fits(j, q[j] + d)) continue;
                double delta = 0;  // change of sum(amp^2)
                for (std::size_t i = 0; i < g; ++i) delta += d * bj[i] * (2.0 * amp[i] + d * bj[i]);
                if (delta < best_gain) {
                    best_gain = delta;
                    best_d = d;
                }
            }
            if (best_d != 0) {
                q[j] += best_d;
                for (std::size_t i = 0; i < g; ++i) amp[i] += best_d * bj[i];
                improved = true;
            }
        }
        if (!improved) break;
    }
    FirDesign d;
    d.taps.resize(static_cast<std::size_t>(n_taps));
    for (int i = 0; i < n_taps; ++i) {
        const int v = q[static_cast<std::size_t>(std::abs(i - center))];
        d.taps[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(v);
        d.sum += v;
    }
    return d;
}

const FirDesign& design_for(int factor) {
    static const FirDesign d2 = make_design(2);
    if (factor == 2) return d2;
    static const FirDesign d3 = make_design(3);
    if (factor == 3) return d3;
    static const FirDesign d6 = make_design(6);
    return d6;
}

class PolyphaseFir {
  public:
    PolyphaseFir(int factor, bool up) : factor_(factor), up_(up) {
        const FirDesign& d = design_for(factor);
        const int n_taps = static_cast<int>(d.taps.size());
        const int rows = up ? factor : 1;
        const int step = up ? factor : 1;
        const int row_len = up ? (n_taps + factor - 1) / factor : n_taps;
        taps_ = static_cast<std::size_t>((row_len + 7) / 8 * 8);
        coef_.assign(taps_ * static_cast<std::size_t>(rows), 0);
        for (int p = 0; p < rows; ++p) {
            // Row p reversed and right-aligned: coef[K - 1 - k] = h[p + step * k]. Going up, the
            // output scale has a factor F (each output sees one input in F).
            for (int k = 0; p + step * k < n_taps; ++k) {
                coef_[static_cast<std::size_t>(p) * taps_ + taps_ - 1 -
                      static_cast<std::size_t>(k)] = d.taps[static_cast<std::size_t>(p + step * k)];
            }
        }
        // Each int32 lane sums taps k with k % 8 in {2l, 2l + 1} over a segment of seg_blocks_
        // blocks of 8 taps; segments are short enough that no int16 input can overflow a lane:
        // 32768 * sum |tap| < 2^31 over the lane's taps of every segment of every row. (At the
        // scale chosen in make_design() a lane holds a few blocks at most.)
        seg_blocks_ = taps_ / 8;
        const auto fits = [&](std::size_t blocks) {
            for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) {
                for (std::size_t k0 = 0; k0 < taps_; k0 += blocks * 8) {
                    std::int64_t lane[4] = {0, 0, 0, 0};
                    for (std::size_t k = k0; k < std::min(taps_, k0 + blocks * 8); ++k) {
                        lane[(k % 8) / 2] += std::abs(coef_[r * taps_ + k]);
                    }
                    for (const auto a : lane) {
                        if (a * 32768 > std::numeric_limits<std::int32_t>::max()) return false;
                    }
                }
            }
            return true;
        };
        while (seg_blocks_ > 1 && !fits(seg_blocks_)) --seg_blocks_;
        // One scale for every row, so that the rows stay matched (no images from gain mismatch).
        scale_ = static_cast<float>(static_cast<double>(step) / static_cast<double>(d.sum));
        reset();
    }

    std::size_t taps() const { return taps_; }
    // The filter's delay in high-rate samples.
    int high_rate_delay() const { return factor_ * kHalfLen8k; }

    void reset() {
        buf_.assign(taps_ - 1, 0);
        next_ = 0;
    }

    std::size_t process(std::span<const std::int16_t> in, std::int16_t* out) {
        std::size_t written = 0;
        constexpr std::size_t kChunk = 4096;  // bounds the buffer for long blocks
        for (std::size_t pos = 0; pos < in.size(); pos += kChunk) {
            const std::size_t take = std::min(kChunk, in.size() - pos);
            written += process_chunk(in.subspan(pos, take), out + written);
        }
        return written;
    }

  private:
    std::size_t process_chunk(std::span<const std::int16_t> in, std::int16_t* out) {
        const std::size_t hist = taps_ - 1;
        buf_.resize(hist + in.size());
        std::memcpy(buf_.data() + hist, in.data(), in.size_bytes());
        std::size_t count = 0;
        const auto f = static_cast<std::size_t>(factor_);
        if (up_) {
            // Output F*n + p: window buf[n .. n + K), row p; four inputs at a time per row.
            count = in.size() * f;
            std::size_t n = 0;
            for (; n + 4 <= in.size(); n += 4) {
                for (std::size_t p = 0; p < f; ++p) {
                    std::int16_t r[4];
                    dot4(buf_.data() + n, 1, coef_.data() + p * taps_, r);
                    for (std::size_t i = 0; i < 4; ++i) out[f * (n + i) + p] = r[i];
                }
            }
            for (; n < in.size(); ++n) {
                for (std::size_t p = 0; p < f; ++p) {
                    out[f * n + p] = dot1(buf_.data() + n, coef_.data() + p * taps_);
                }
            }
        } else {
            // Output j: window ending at input next_ + F*j.
            if (next_ < in.size()) count = (in.size() - next_ + f - 1) / f;
            const std::int16_t* x = buf_.data() + next_;
            std::size_t j = 0;
            for (; j + 4 <= count; j += 4) dot4(x + f * j, f, coef_.data(), out + j);
            for (; j < count; ++j) out[j] = dot1(x + f * j, coef_.data());
            next_ = next_ + f * count - in.size();
        }
        std::memmove(buf_.data(), buf_.data() + in.size(), hist * sizeof(std::int16_t));
        buf_.resize(hist);
        return count;
    }

    // One output: the window x[0 .. K) against the row c, scaled, rounded to nearest (ties to
    // even, as the SSE2 conversion does) and saturated.
    std::int16_t dot1(const std::int16_t* x, const std::int16_t* c) const {
        std::int64_t acc = 0;
        for (std::size_t k = 0; k < taps_; ++k) acc += std::int32_t{x[k]} * c[k];
        const float y = std::nearbyint(static_cast<float>(acc) * scale_);
        return static_cast<std::int16_t>(std::clamp(y, -32768.0f, 32767.0f));
    }

    // Four outputs: the windows x + i * stride (i = 0..3) against the same row c, into r[0..3].
    void dot4(const std::int16_t* x, std::size_t stride, const std::int16_t* c,
              std::int16_t* r) const {
#ifdef __SSE2__
        const std::int16_t* x0 = x;
        const std::int16_t* x1 = x + stride;
        const std::int16_t* x2 = x + 2 * stride;
        const std::int16_t* x3 = x + 3 * stride;
        __m128 total = _mm_setzero_ps();
        for (std::size_t k0 = 0; k0 < taps_; k0 += seg_blocks_ * 8) {
            const std::size_t k1 = std::min(taps_, k0 + seg_blocks_ * 8);
            __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
            for (std::size_t k = k0; k < k1; k += 8) {
                const auto ld = [k](const std::int16_t* p) {
                    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
                };
                const __m128i cv = ld(c);
                a0 = _mm_add_epi32(a0, _mm_madd_epi16(ld(x0), cv));
                a1 = _mm_add_epi32(a1, _mm_madd_epi16(ld(x1), cv));
                a2 = _mm_add_epi32(a2, _mm_madd_epi16(ld(x2), cv));
                a3 = _mm_add_epi32(a3, _mm_madd_epi16(ld(x3), cv));
            }
            // To float, then transpose-add: lane i = the segment's sum for output i.
            const __m128 f0 = _mm_cvtepi32_ps(a0), f1 = _mm_cvtepi32_ps(a1);
            const __m128 f2 = _mm_cvtepi32_ps(a2), f3 = _mm_cvtepi32_ps(a3);
            const __m128 s01 = _mm_add_ps(_mm_unpacklo_ps(f0, f1), _mm_unpackhi_ps(f0, f1));
            const __m128 s23 = _mm_add_ps(_mm_unpacklo_ps(f2, f3), _mm_unpackhi_ps(f2, f3));
            total = _mm_add_ps(total, _mm_add_ps(_mm_movelh_ps(s01, s23), _mm_movehl_ps(s23, s01)));
        }
        const __m128i v = _mm_cvtps_epi32(_mm_mul_ps(total, _mm_set1_ps(scale_)));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(r), _mm_packs_epi32(v, v));
#else
        for (std::size_t i = 0; i < 4; ++i) r[i] = dot1(x + i * stride, c);
#endif
    }

    int factor_;
    bool up_;
    std::size_t taps_ = 0;            // K, a multiple of 8
    std::vector<std::int16_t> coef_;  // rows of K reversed taps
    std::size_t seg_blocks_ = 1;      // 8-tap blocks per int32 sum
    float scale_ = 0;                 // int32 sum -> output sample
    std::vector<std::int16_t> buf_;   // K - 1 samples of history, then the current chunk
    std::size_t next_ = 0;            // down: offset in the next block of the next output
};

}  // namespace

bool Resampler::fir_supports(int in_rate_hz, int out_rate_hz) {
    const auto ok = [](int hi) { return hi == 16000 || hi == 24000 || hi == 48000; };
    return (in_rate_hz == 8000 && ok(out_rate_hz)) || (out_rate_hz == 8000 && ok(in_rate_hz));
}

// Design: the resampler is created without speex_resampler_skip_zeros(), so its history starts
// as zeros (silence before the stream began) and speexdsp outputs from the first call: every
// block of N input samples gives N * out / in outputs (exactly, for the integer ratios between
// 8 kHz and 16/24/48 kHz), at the price of a fixed delay of half the filter, about 3 ms at the
// VoIP quality. skip_zeros would remove that delay but make the first frame short (272 instead
// of 320 samples for 8k->16k), which a 20 ms frame pipeline cannot take.
struct Resampler::Impl {
    SpeexResamplerState* state = nullptr;  // speexdsp converts
    std::unique_ptr<PolyphaseFir> fir;     // the FIR converts (neither: equal rates, a copy)
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
    : Resampler(in_rate_hz, out_rate_hz, Engine::kAuto, quality) {}

Resampler::Resampler(int in_rate_hz, int out_rate_hz, Engine engine, int quality)
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
    if (engine == Engine::kFir && !fir_supports(in_rate_hz, out_rate_hz)) {
        throw std::invalid_argument("Resampler: no FIR for " + std::to_string(in_rate_hz) +
                                    " Hz -> " + std::to_string(out_rate_hz) +
                                    " Hz (only 8000 <-> 16000, 24000, 48000)");
    }
    // kAuto takes the FIR where it beats speexdsp on both speed and quality (core/README.md,
    // "Resampling figures"): 8k <-> 16k. Going up to 24k and 48k its THD+N (-86 dB) is below
    // speexdsp's, so those stay on speexdsp unless the FIR is asked for.
    const bool fir_by_default = (in_rate_hz == 8000 && out_rate_hz == 16000) ||
                                (in_rate_hz == 16000 && out_rate_hz == 8000);
    if (engine == Engine::kFir || (engine == Engine::kAuto && fir_by_default)) {
        const bool up = out_rate_hz > in_rate_hz;
        impl_->fir = std::make_unique<PolyphaseFir>(
            up ? out_rate_hz / in_rate_hz : in_rate_hz / out_rate_hz, up);
        return;
    }
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
    if (im.fir) return im.fir->process(in, out);
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

Resampler::Engine Resampler::engine() const {
    return impl_->fir ? Engine::kFir : Engine::kSpeexdsp;
}

int Resampler::delay_samples() const {
    if (impl_->fir) {
        const int d = impl_->fir->high_rate_delay();
        return out_rate_ > in_rate_ ? d : d * out_rate_ / in_rate_;
    }
    if (impl_->state == nullptr) return 0;
    return speex_resampler_get_output_latency(impl_->state);
}

int Resampler::input_delay_samples() const {
    if (impl_->fir) {
        const int d = impl_->fir->high_rate_delay();
        return in_rate_ > out_rate_ ? d : d * in_rate_ / out_rate_;
    }
    if (impl_->state == nullptr) return 0;
    return speex_resampler_get_input_latency(impl_->state);
}

void Resampler::reset() {
    if (impl_->fir) impl_->fir->reset();
    if (impl_->state != nullptr) speex_resampler_reset_mem(impl_->state);
}

}  // namespace mediasim::core
