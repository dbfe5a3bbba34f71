// bench_core: the transcoding core and the per-frame paths a voice bot runs on every message.
// Run: build/bin/bench_core   (bench/compare_python.sh puts these next to the Python paths)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/base64.hpp"
#include "core/g711.hpp"
#include "core/protocol.hpp"
#include "core/resample.hpp"

namespace core = mediasim::core;

namespace {

constexpr const char* kStreamSid = "MZ0123456789abcdef0123456789abcdef";

std::vector<std::int16_t> speechlike(std::size_t n, int rate_hz) {
    std::vector<std::int16_t> pcm(n);
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0, 600);
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate_hz;
        pcm[i] = static_cast<std::int16_t>(6000 * std::sin(2 * M_PI * 220 * t) +
                                           3000 * std::sin(2 * M_PI * 1250 * t) + noise(rng));
    }
    return pcm;
}

std::vector<std::uint8_t> mulaw_frame() {
    auto pcm = speechlike(160, 8000);
    std::vector<std::uint8_t> out(160);
    core::ulaw_encode(pcm, out.data());
    return out;
}

// A media message exactly as Twilio sends it.
std::string twilio_media_text() {
    std::string s;
    auto f = mulaw_frame();
    core::append_media_json(s, kStreamSid, 1234, core::Track::inbound, 1233, 24660, f);
    return s;
}

void BM_UlawDecode(benchmark::State& st) {
    const std::size_t n = 64 * 1024;
    std::vector<std::uint8_t> in(n);
    std::mt19937 rng(1);
    for (auto& b : in) b = static_cast<std::uint8_t>(rng());
    std::vector<std::int16_t> out(n);
    for (auto _ : st) {
        core::ulaw_decode(in, out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(std::int16_t)));
    st.SetLabel("bytes/s of PCM16 output");
}
BENCHMARK(BM_UlawDecode);

void BM_UlawEncode(benchmark::State& st) {
    const std::size_t n = 64 * 1024;
    auto in = speechlike(n, 8000);
    std::vector<std::uint8_t> out(n);
    for (auto _ : st) {
        core::ulaw_encode(in, out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n * sizeof(std::int16_t)));
    st.SetLabel("bytes/s of PCM16 input");
}
BENCHMARK(BM_UlawEncode);

void BM_Base64Encode(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    std::vector<std::uint8_t> in(n, 0x5a);
    std::string out(core::base64_encoded_size(n), '\0');
    for (auto _ : st) {
        benchmark::DoNotOptimize(core::base64_encode(in, out.data()));
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n));
}
BENCHMARK(BM_Base64Encode)->Arg(160)->Arg(64 * 1024);

void BM_Base64Decode(benchmark::State& st) {
    const auto n = static_cast<std::size_t>(st.range(0));
    std::vector<std::uint8_t> raw(n, 0xa5);
    const std::string text = core::base64_encode(raw);
    std::vector<std::uint8_t> out(core::base64_decoded_max_size(text.size()));
    for (auto _ : st) {
        auto r = core::base64_decode(text, out.data());
        benchmark::DoNotOptimize(r);
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * n));
}
BENCHMARK(BM_Base64Decode)->Arg(160)->Arg(64 * 1024);

// One 20 ms frame through the resampler (state kept across frames, as on a stream), on each
// engine: BM_Resample (the default: the FIR for 8k <-> 16k, else speexdsp), BM_ResampleSpeex
// (speexdsp quality 3) and BM_ResampleFir (the polyphase FIR).
void resample_frames(benchmark::State& st, core::Resampler::Engine engine) {
    const int in_rate = static_cast<int>(st.range(0));
    const int out_rate = static_cast<int>(st.range(1));
    core::Resampler rs(in_rate, out_rate, engine);
    const auto in = speechlike(static_cast<std::size_t>(in_rate / 50), in_rate);
    std::vector<std::int16_t> out(rs.max_output(in.size()));
    for (auto _ : st) {
        benchmark::DoNotOptimize(rs.process(in, out.data()));
        benchmark::ClobberMemory();
    }
    st.SetLabel("per 20 ms frame");
}
void BM_Resample(benchmark::State& st) {
    resample_frames(st, core::Resampler::Engine::kAuto);
}
void BM_ResampleSpeex(benchmark::State& st) {
    resample_frames(st, core::Resampler::Engine::kSpeexdsp);
}
void BM_ResampleFir(benchmark::State& st) {
    resample_frames(st, core::Resampler::Engine::kFir);
}
#define MEDIASIM_RESAMPLE_PAIRS(bm) \
    BENCHMARK(bm)                   \
        ->Args({8000, 16000})       \
        ->Args({16000, 8000})       \
        ->Args({8000, 24000})       \
        ->Args({24000, 8000})       \
        ->Args({8000, 48000})       \
        ->Args({48000, 8000})
MEDIASIM_RESAMPLE_PAIRS(BM_Resample);
MEDIASIM_RESAMPLE_PAIRS(BM_ResampleSpeex);
MEDIASIM_RESAMPLE_PAIRS(BM_ResampleFir);
#undef MEDIASIM_RESAMPLE_PAIRS

// The text of a Twilio media message → 160 PCM16 samples at 8 kHz.
void BM_InboundFrame(benchmark::State& st) {
    const std::string text = twilio_media_text();
    core::FastParser parser;
    std::uint8_t mulaw[512];
    std::int16_t pcm[512];
    for (auto _ : st) {
        if (parser.parse_twilio(text) != core::FastParser::Kind::media) st.SkipWithError("parse");
        auto n = parser.decode_payload(mulaw);
        core::ulaw_decode({mulaw, *n}, pcm);
        benchmark::DoNotOptimize(pcm);
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_InboundFrame);

// 160 PCM16 samples at 8 kHz → the text of a media message to Twilio.
void BM_OutboundFrame(benchmark::State& st) {
    const auto pcm = speechlike(160, 8000);
    std::uint8_t mulaw[160];
    std::string out;
    out.reserve(512);
    for (auto _ : st) {
        out.clear();
        core::ulaw_encode(pcm, mulaw);
        core::append_server_media_json(out, kStreamSid, mulaw);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_OutboundFrame);

// The text of a Twilio media message → 320 PCM16 samples at 16 kHz, with the Resampler's default
// engine (the FIR for 8k -> 16k); BM_InboundFrame16kSpeex forces speexdsp for comparison.
void inbound_frame_16k(benchmark::State& st, core::Resampler::Engine engine) {
    const std::string text = twilio_media_text();
    core::FastParser parser;
    core::Resampler up(8000, 16000, engine);
    std::uint8_t mulaw[512];
    std::int16_t pcm8[512];
    std::int16_t pcm16[1024];
    for (auto _ : st) {
        if (parser.parse_twilio(text) != core::FastParser::Kind::media) st.SkipWithError("parse");
        auto n = parser.decode_payload(mulaw);
        core::ulaw_decode({mulaw, *n}, pcm8);
        benchmark::DoNotOptimize(up.process({pcm8, *n}, pcm16));
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
void BM_InboundFrame16k(benchmark::State& st) {
    inbound_frame_16k(st, core::Resampler::Engine::kAuto);
}
BENCHMARK(BM_InboundFrame16k);
void BM_InboundFrame16kSpeex(benchmark::State& st) {
    inbound_frame_16k(st, core::Resampler::Engine::kSpeexdsp);
}
BENCHMARK(BM_InboundFrame16kSpeex);

// 320 PCM16 samples at 16 kHz → the text of a media message to Twilio (default engine: the FIR);
// BM_OutboundFrame16kSpeex forces speexdsp.
void outbound_frame_16k(benchmark::State& st, core::Resampler::Engine engine) {
    const auto pcm16 = speechlike(320, 16000);
    core::Resampler down(16000, 8000, engine);
    std::int16_t pcm8[512];
    std::uint8_t mulaw[512];
    std::string out;
    out.reserve(512);
    for (auto _ : st) {
        out.clear();
        const auto n = down.process(pcm16, pcm8);
        core::ulaw_encode({pcm8, n}, mulaw);
        core::append_server_media_json(out, kStreamSid, {mulaw, n});
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
void BM_OutboundFrame16k(benchmark::State& st) {
    outbound_frame_16k(st, core::Resampler::Engine::kAuto);
}
BENCHMARK(BM_OutboundFrame16k);
void BM_OutboundFrame16kSpeex(benchmark::State& st) {
    outbound_frame_16k(st, core::Resampler::Engine::kSpeexdsp);
}
BENCHMARK(BM_OutboundFrame16kSpeex);

}  // namespace

BENCHMARK_MAIN();
