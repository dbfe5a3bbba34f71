// Resampler (both engines: speexdsp at the VoIP quality, and the polyphase FIR) on tones:
// distortion, alias rejection, frame sizes, delay, streaming continuity and reset. The
// ResamplerFigures test prints the figures quoted in core/README.md:  build/bin/core_resample_test
// --gtest_filter='ResamplerFigures.*'
#include "core/resample.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace mediasim::core {
namespace {

struct RatePair {
    int in_hz;
    int out_hz;
};

constexpr RatePair kPairs[] = {{8000, 16000}, {16000, 8000}, {8000, 24000},
                               {24000, 8000}, {8000, 48000}, {48000, 8000}};
constexpr RatePair kDownPairs[] = {{16000, 8000}, {24000, 8000}, {48000, 8000}};

using Engine = Resampler::Engine;

// The resampler for `p` on `engine`; ratios the FIR does not cover stay on speexdsp.
Resampler make(RatePair p, Engine engine) {
    if (engine == Engine::kFir && !Resampler::fir_supports(p.in_hz, p.out_hz)) {
        engine = Engine::kSpeexdsp;
    }
    return Resampler(p.in_hz, p.out_hz, engine);
}

const char* name(Engine e) {
    return e == Engine::kFir ? "FIR" : e == Engine::kSpeexdsp ? "speexdsp" : "auto";
}

std::size_t frame_20ms(int rate_hz) {
    return static_cast<std::size_t>(rate_hz / 50);
}

// A sine at `amplitude` (linear, 1.0 = full scale), rounded to int16.
std::vector<std::int16_t> tone(double freq_hz, int rate_hz, std::size_t n, double amplitude) {
    std::vector<std::int16_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double x =
            amplitude * 32767.0 *
            std::sin(2.0 * std::numbers::pi * freq_hz * static_cast<double>(i) / rate_hz);
        v[i] = static_cast<std::int16_t>(std::lround(x));
    }
    return v;
}

// Speech-band noise plus a tone: a signal with content everywhere below the input Nyquist.
std::vector<std::int16_t> noisy_signal(int rate_hz, std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0.0, 3000.0);
    auto v = tone(440.0, rate_hz, n, 0.3);
    for (auto& s : v) {
        s = static_cast<std::int16_t>(std::clamp(s + std::lround(noise(rng)), -32768L, 32767L));
    }
    return v;
}

// Feeds `in` in blocks of `frame` samples (the last may be shorter) and concatenates the output.
std::vector<std::int16_t> run_frames(Resampler& rs, const std::vector<std::int16_t>& in,
                                     std::size_t frame) {
    std::vector<std::int16_t> out;
    std::vector<std::int16_t> buf(rs.max_output(frame));
    for (std::size_t pos = 0; pos < in.size(); pos += frame) {
        const std::size_t take = std::min(frame, in.size() - pos);
        const std::size_t n = rs.process({in.data() + pos, take}, buf.data());
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return out;
}

std::vector<std::int16_t> run_block(Resampler& rs, const std::vector<std::int16_t>& in) {
    std::vector<std::int16_t> out(rs.max_output(in.size()));
    out.resize(rs.process(in, out.data()));
    return out;
}

// THD+N in dB: over out[start, start + n), n a whole number of periods of freq_hz, fit the
// fundamental (cosine, sine and DC, which are orthogonal over whole periods), remove it, and
// compare the power of what is left with the power of the fundamental.
double thd_n_db(const std::vector<std::int16_t>& out, int rate_hz, double freq_hz,
                std::size_t start, std::size_t n) {
    double c = 0, s = 0, dc = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double w = 2.0 * std::numbers::pi * freq_hz * static_cast<double>(i) / rate_hz;
        const double x = out[start + i];
        c += x * std::cos(w);
        s += x * std::sin(w);
        dc += x;
    }
    c *= 2.0 / static_cast<double>(n);
    s *= 2.0 / static_cast<double>(n);
    dc /= static_cast<double>(n);
    double residual = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double w = 2.0 * std::numbers::pi * freq_hz * static_cast<double>(i) / rate_hz;
        const double r = out[start + i] - (c * std::cos(w) + s * std::sin(w) + dc);
        residual += r * r;
    }
    const double fundamental = (c * c + s * s) / 2.0 * static_cast<double>(n);
    return 10.0 * std::log10(residual / fundamental);
}

double rms(const std::vector<std::int16_t>& v, std::size_t start, std::size_t n) {
    double e = 0;
    for (std::size_t i = start; i < start + n; ++i) e += static_cast<double>(v[i]) * v[i];
    return std::sqrt(e / static_cast<double>(n));
}

// A 1 kHz tone at -6 dBFS, 1 s long, streamed in 20 ms frames; THD+N over the middle half second
// of the output (whole periods, well clear of the start-up transient).
double measure_thd_n(RatePair p, Engine engine) {
    Resampler rs = make(p, engine);
    const auto in = tone(1000.0, p.in_hz, static_cast<std::size_t>(p.in_hz), 0.5);
    const auto out = run_frames(rs, in, frame_20ms(p.in_hz));
    return thd_n_db(out, p.out_hz, 1000.0, static_cast<std::size_t>(p.out_hz / 4),
                    static_cast<std::size_t>(p.out_hz / 2));
}

// Attenuation in dB of a tone at freq_hz through a down conversion (aliasing ones are above the
// output's Nyquist frequency): input RMS over output RMS, both over the middle half second.
double measure_rejection_db(RatePair p, double freq_hz, Engine engine) {
    Resampler rs = make(p, engine);
    const auto in = tone(freq_hz, p.in_hz, static_cast<std::size_t>(p.in_hz), 0.5);
    const auto out = run_frames(rs, in, frame_20ms(p.in_hz));
    const double in_rms =
        rms(in, static_cast<std::size_t>(p.in_hz / 4), static_cast<std::size_t>(p.in_hz / 2));
    const double out_rms =
        rms(out, static_cast<std::size_t>(p.out_hz / 4), static_cast<std::size_t>(p.out_hz / 2));
    // An output of exact zeros would be infinite rejection; count it as one LSB of noise.
    return 20.0 * std::log10(in_rms / std::max(out_rms, 1.0 / std::sqrt(12.0)));
}

// The least rejection over tones from 4.05 to 7.95 kHz in 100 Hz steps (they alias to 3.95 down
// to 0.05 kHz), for a conversion down to 8 kHz.
double worst_rejection_db(RatePair p, Engine engine) {
    double worst = 1e9;
    for (double f = 4050.0; f < 8000.0; f += 100.0) {
        worst = std::min(worst, measure_rejection_db(p, f, engine));
    }
    return worst;
}

// The delay measured on a band-limited pulse: a windowed burst of a 500 Hz tone whose envelope
// peak is at a known input time; the output envelope's centroid gives the delay in output samples.
double measure_delay_samples(RatePair p, Engine engine) {
    Resampler rs = make(p, engine);
    const std::size_t n = static_cast<std::size_t>(p.in_hz) / 5;  // 200 ms
    const double center_s = 0.1;
    const double width_s = 0.01;
    std::vector<std::int16_t> in(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / p.in_hz;
        const double env = std::exp(-0.5 * std::pow((t - center_s) / width_s, 2));
        in[i] = static_cast<std::int16_t>(std::lround(16000.0 * env));  // a smooth bump (low-pass)
    }
    const auto out = run_frames(rs, in, frame_20ms(p.in_hz));
    double sum = 0, weighted = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        sum += out[i];
        weighted += static_cast<double>(i) * out[i];
    }
    return weighted / sum - center_s * p.out_hz;
}

class ResamplerEngine : public ::testing::TestWithParam<Engine> {};

TEST_P(ResamplerEngine, UsesTheEngineAskedFor) {
    for (const auto p : kPairs) {
        EXPECT_EQ(make(p, GetParam()).engine(), GetParam()) << p.in_hz << " -> " << p.out_hz;
    }
    // Ratios the FIR does not cover go to speexdsp, or are refused when the FIR is required.
    EXPECT_EQ(Resampler(44100, 8000).engine(), Engine::kSpeexdsp);
    EXPECT_EQ(Resampler(8000, 16000).engine(), Engine::kFir);  // the default for 2:1
    EXPECT_EQ(Resampler(16000, 8000).engine(), Engine::kFir);
    EXPECT_EQ(Resampler(8000, 48000).engine(), Engine::kSpeexdsp);
    EXPECT_THROW(Resampler(16000, 24000, Engine::kFir), std::invalid_argument);
}

TEST_P(ResamplerEngine, EveryTwentyMsInGivesExactlyTwentyMsOutFor500Frames) {
    for (const auto p : kPairs) {
        Resampler rs = make(p, GetParam());
        const std::size_t in_frame = frame_20ms(p.in_hz);
        const std::size_t out_frame = frame_20ms(p.out_hz);
        ASSERT_GE(rs.max_output(in_frame), out_frame);
        const auto in = noisy_signal(p.in_hz, in_frame * 500, 7);
        std::vector<std::int16_t> out(rs.max_output(in_frame));
        for (std::size_t f = 0; f < 500; ++f) {
            const std::size_t n = rs.process({in.data() + f * in_frame, in_frame}, out.data());
            ASSERT_EQ(n, out_frame) << p.in_hz << " -> " << p.out_hz << ", frame " << f;
        }
    }
}

// No clicks at frame boundaries: streaming in 20 ms frames gives the same samples as converting
// the whole signal in one call (within 1 LSB), so frame edges leave no trace.
TEST_P(ResamplerEngine, TwentyMsFramesGiveTheSameOutputAsOneBlock) {
    for (const auto p : kPairs) {
        const auto in = noisy_signal(p.in_hz, static_cast<std::size_t>(p.in_hz), 11);
        Resampler framed = make(p, GetParam());
        Resampler whole = make(p, GetParam());
        const auto a = run_frames(framed, in, frame_20ms(p.in_hz));
        const auto b = run_block(whole, in);
        ASSERT_EQ(a.size(), b.size()) << p.in_hz << " -> " << p.out_hz;
        ASSERT_EQ(a.size(), static_cast<std::size_t>(p.out_hz));
        int worst = 0;
        for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
        EXPECT_LE(worst, 1) << p.in_hz << " -> " << p.out_hz;
    }
}

// Blocks of any size carry their fractional remainder: irregular blocks, and a ratio that does
// not divide (44.1 kHz -> 8 kHz), still join up with the one-block output.
TEST_P(ResamplerEngine, IrregularBlocksAndFractionalRatiosJoinUp) {
    const RatePair pairs[] = {
        {16000, 8000}, {8000, 48000}, {44100, 8000}, {8000, 44100}, {16000, 24000}};
    std::mt19937 rng(3);
    for (const auto p : pairs) {
        const auto in = noisy_signal(p.in_hz, static_cast<std::size_t>(p.in_hz), 5);
        Resampler chunked = make(p, GetParam());
        Resampler whole = make(p, GetParam());
        std::vector<std::int16_t> a;
        std::uniform_int_distribution<std::size_t> size(1, 700);
        for (std::size_t pos = 0; pos < in.size();) {
            const std::size_t take = std::min(size(rng), in.size() - pos);
            std::vector<std::int16_t> buf(chunked.max_output(take));
            const std::size_t n = chunked.process({in.data() + pos, take}, buf.data());
            ASSERT_LE(n, buf.size());
            a.insert(a.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            pos += take;
        }
        const auto b = run_block(whole, in);
        ASSERT_EQ(a.size(), b.size()) << p.in_hz << " -> " << p.out_hz;
        // One second in gives one second out.
        EXPECT_NEAR(static_cast<double>(a.size()), p.out_hz, 1.0) << p.in_hz << " -> " << p.out_hz;
        int worst = 0;
        for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
        EXPECT_LE(worst, 1) << p.in_hz << " -> " << p.out_hz;
    }
}

TEST_P(ResamplerEngine, OneKilohertzToneThdPlusNoise) {
    for (const auto p : {RatePair{8000, 16000}, RatePair{16000, 8000}}) {
        const double thd = measure_thd_n(p, GetParam());
        EXPECT_LT(thd, -60.0) << p.in_hz << " -> " << p.out_hz;
    }
}

TEST_P(ResamplerEngine, TonesAboveFourKilohertzAreRejectedGoingDownTo8k) {
    for (const auto p : kDownPairs) {
        EXPECT_GT(measure_rejection_db(p, 5000.0, GetParam()), 40.0)
            << p.in_hz << " -> 8000, 5 kHz";
        EXPECT_GT(measure_rejection_db(p, 4500.0, GetParam()), 40.0)
            << p.in_hz << " -> 8000, 4.5 kHz";
    }
    // The test itself: a tone inside the band passes (about 0 dB).
    EXPECT_LT(std::abs(measure_rejection_db({16000, 8000}, 1000.0, GetParam())), 0.5);
}

// The FIR's design target going 16 kHz -> 8 kHz: flat to 3.4 kHz (within 0.5 dB) and at least
// 80 dB below everything from 4.05 kHz up (speexdsp at quality 3 has -1 dB at 3.4 kHz and 82.5 dB
// at 5 kHz, so this holds for the FIR only).
TEST(ResamplerFir, FlatPassBandAndEightyDecibelStopBandGoingDownTo8k) {
    for (double f = 100.0; f <= 3400.0; f += 100.0) {
        EXPECT_LT(std::abs(measure_rejection_db({16000, 8000}, f, Engine::kFir)), 0.5) << f;
    }
    EXPECT_GT(worst_rejection_db({16000, 8000}, Engine::kFir), 80.0);
}

// Full-scale input cannot overflow the FIR's integer sums: a +-32767 square wave (whose ringing
// overshoots full scale) comes out saturated at the plateaus, never wrapped to the other sign.
TEST(ResamplerFir, FullScaleSquareWaveSaturatesWithoutWrapping) {
    for (const auto p : kPairs) {
        Resampler rs(p.in_hz, p.out_hz, Engine::kFir);
        const std::size_t period_in = static_cast<std::size_t>(p.in_hz / 250);  // 250 Hz
        std::vector<std::int16_t> in(static_cast<std::size_t>(p.in_hz) / 5);
        for (std::size_t i = 0; i < in.size(); ++i) {
            in[i] = (i % period_in) < period_in / 2 ? 32767 : -32767;
        }
        const auto out = run_frames(rs, in, frame_20ms(p.in_hz));
        const std::size_t period_out = static_cast<std::size_t>(p.out_hz / 250);
        const auto delay = static_cast<std::size_t>(rs.delay_samples());
        // Middle of each half period (after the delay): deep in the plateau of the right sign.
        for (std::size_t i = period_out + delay; i + 1 < out.size(); ++i) {
            const std::size_t phase = (i - delay) % period_out;
            if (phase == period_out / 4) {
                EXPECT_GT(out[i], 30000) << p.in_hz << " -> " << p.out_hz << " at " << i;
            } else if (phase == 3 * period_out / 4) {
                EXPECT_LT(out[i], -30000) << p.in_hz << " -> " << p.out_hz << " at " << i;
            }
        }
        // The overshoot next to each edge saturates at full scale instead of wrapping around.
        EXPECT_EQ(*std::max_element(out.begin(), out.end()), 32767)
            << p.in_hz << " -> " << p.out_hz;
        EXPECT_EQ(*std::min_element(out.begin(), out.end()), -32768)
            << p.in_hz << " -> " << p.out_hz;
    }
}

TEST_P(ResamplerEngine, DelayIsAFewMillisecondsAndMatchesTheMeasuredDelay) {
    for (const auto p : kPairs) {
        Resampler rs = make(p, GetParam());
        const double delay_ms = 1000.0 * rs.delay_samples() / p.out_hz;
        EXPECT_GT(delay_ms, 0.5) << p.in_hz << " -> " << p.out_hz;
        EXPECT_LT(delay_ms, 5.0) << p.in_hz << " -> " << p.out_hz;
        EXPECT_NEAR(measure_delay_samples(p, GetParam()), rs.delay_samples(), 1.0)
            << p.in_hz << " -> " << p.out_hz;
        EXPECT_EQ(static_cast<std::int64_t>(rs.input_delay_samples()) * p.out_hz,
                  static_cast<std::int64_t>(rs.delay_samples()) * p.in_hz)
            << p.in_hz << " -> " << p.out_hz;
    }
}

// For ratios where the filter's delay is not a whole number of output samples (22.05 kHz -> 8 kHz:
// 68 input samples, 24.67 output samples), delay_samples() is rounded to the nearest one.
TEST(Resampler, DelayOfFractionalRatiosIsRoundedToTheNearestSample) {
    const RatePair pairs[] = {
        {22050, 8000}, {44100, 8000}, {8000, 44100}, {8000, 22050}, {11025, 8000}};
    for (const auto p : pairs) {
        Resampler rs(p.in_hz, p.out_hz);
        const double measured = measure_delay_samples(p, Engine::kSpeexdsp);
        std::printf("%5d -> %5d: delay_samples() %d, measured %.2f\n", p.in_hz, p.out_hz,
                    rs.delay_samples(), measured);
        EXPECT_NEAR(measured, rs.delay_samples(), 0.51) << p.in_hz << " -> " << p.out_hz;
        // In input samples the delay is exact.
        EXPECT_NEAR(measured, static_cast<double>(rs.input_delay_samples()) * p.out_hz / p.in_hz,
                    0.05)
            << p.in_hz << " -> " << p.out_hz;
    }
}

TEST_P(ResamplerEngine, ResetForgetsTheHistory) {
    for (const auto p : kPairs) {
        const auto first = noisy_signal(p.in_hz, frame_20ms(p.in_hz) * 10, 1);
        const auto second = noisy_signal(p.in_hz, frame_20ms(p.in_hz) * 10, 2);
        Resampler used = make(p, GetParam());
        Resampler fresh = make(p, GetParam());
        run_frames(used, first, frame_20ms(p.in_hz));
        Resampler not_reset = make(p, GetParam());
        run_frames(not_reset, first, frame_20ms(p.in_hz));
        used.reset();
        const auto after_reset = run_frames(used, second, frame_20ms(p.in_hz));
        EXPECT_EQ(after_reset, run_frames(fresh, second, frame_20ms(p.in_hz)))
            << p.in_hz << " -> " << p.out_hz;
        // Without reset the first signal's tail shows in the start of the output.
        EXPECT_NE(run_frames(not_reset, second, frame_20ms(p.in_hz)), after_reset);
    }
}

TEST(Resampler, SameRateIsAPlainCopy) {
    Resampler rs(8000, 8000);
    const auto in = noisy_signal(8000, 160, 4);
    EXPECT_EQ(run_frames(rs, in, 160), in);
    EXPECT_EQ(rs.delay_samples(), 0);
    EXPECT_EQ(rs.input_delay_samples(), 0);
}

TEST_P(ResamplerEngine, MovedToObjectKeepsTheStream) {
    const auto in = noisy_signal(8000, 1600, 9);
    Resampler a = make({8000, 16000}, GetParam());
    Resampler reference = make({8000, 16000}, GetParam());
    const auto expected = run_frames(reference, in, 160);
    std::vector<std::int16_t> first(in.begin(), in.begin() + 800);
    std::vector<std::int16_t> rest(in.begin() + 800, in.end());
    auto out = run_frames(a, first, 160);
    Resampler b(std::move(a));
    Resampler c = make({16000, 8000}, GetParam());
    c = std::move(b);
    EXPECT_EQ(c.in_rate_hz(), 8000);
    EXPECT_EQ(c.out_rate_hz(), 16000);
    const auto tail = run_frames(c, rest, 160);
    out.insert(out.end(), tail.begin(), tail.end());
    EXPECT_EQ(out, expected);
}

INSTANTIATE_TEST_SUITE_P(Engines, ResamplerEngine,
                         ::testing::Values(Engine::kSpeexdsp, Engine::kFir),
                         [](const ::testing::TestParamInfo<Engine>& param) {
                             return std::string(name(param.param));
                         });

TEST(Resampler, BadArgumentsAreRejected) {
    EXPECT_THROW(Resampler(0, 8000), std::invalid_argument);
    EXPECT_THROW(Resampler(8000, -1), std::invalid_argument);
    EXPECT_THROW(Resampler(8000, 16000, 11), std::invalid_argument);
}

// Prints the figures for core/README.md: THD+N of a 1 kHz tone, the reported and the measured
// delay, and for conversions down to 8 kHz the attenuation of a tone at the top of the phone band
// (3.4 kHz) and of tones above 4 kHz that would alias (to 3.9, 3.5 and 3 kHz). Bounds are the same
// as above; the numbers themselves are measured, never written into the test.
TEST(ResamplerFigures, Table) {
    std::printf("1 kHz at -6 dBFS for THD+N; tones at -6 dBFS for rejection\n");
    std::printf("%-14s %-12s %9s %9s %9s %11s %11s %11s %11s %11s %13s\n", "pair", "engine",
                "THD+N dB", "delay ms", "meas. ms", "att 3.4k dB", "rej 4.05k dB", "rej 4.1k dB",
                "rej 4.5k dB", "rej 5k dB", "worst 4-8k dB");
    for (const auto p : kPairs) {
        for (const auto e : {Engine::kSpeexdsp, Engine::kFir}) {
            Resampler rs = make(p, e);
            const double thd = measure_thd_n(p, e);
            const double delay_ms = 1000.0 * rs.delay_samples() / p.out_hz;
            const double measured_ms = 1000.0 * measure_delay_samples(p, e) / p.out_hz;
            char label[32];
            std::snprintf(label, sizeof label, "%s%s", name(e),
                          e == Engine::kSpeexdsp ? " q3" : "");
            std::printf("%5d->%-7d %-12s %9.1f %9.2f %9.2f", p.in_hz, p.out_hz, label, thd,
                        delay_ms, measured_ms);
            EXPECT_LT(thd, -60.0);
            if (p.out_hz == 8000) {
                for (const double f : {3400.0, 4050.0, 4100.0, 4500.0, 5000.0}) {
                    std::printf(" %11.1f", measure_rejection_db(p, f, e));
                }
                std::printf(" %13.1f", worst_rejection_db(p, e));
            }
            std::printf("\n");
        }
    }
}

}  // namespace
}  // namespace mediasim::core
