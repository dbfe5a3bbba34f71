// mediasim convert: audio files to and from Twilio's format (μ-law, 8 kHz, mono WAV).
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/cli.hpp"
#include "core/g711.hpp"
#include "core/wav.hpp"
#include "simulator/commands.hpp"

namespace mediasim::sim {

namespace {

constexpr int kMaxRateHz = 1'000'000;

int fail(const std::string& what) {
    std::fprintf(stderr, "mediasim convert: %s\n", what.c_str());
    return 2;
}

std::string channels_words(int n) {
    if (n == 1) return "mono";
    if (n == 2) return "stereo";
    return fmt::format("{} channels", n);
}

std::string describe(const core::AudioFormat& f, std::size_t data_bytes) {
    const auto frames = data_bytes / static_cast<std::size_t>(f.block_align());
    return fmt::format("{}, {} Hz, {}, {:.2f} s", core::to_string(f.encoding), f.sample_rate_hz,
                       channels_words(f.channels), static_cast<double>(frames) / f.sample_rate_hz);
}

std::vector<std::uint8_t> encode(const std::vector<std::int16_t>& s, core::Encoding e) {
    std::vector<std::uint8_t> out;
    switch (e) {
        case core::Encoding::pcm16:
            out.resize(s.size() * 2);
            for (std::size_t i = 0; i < s.size(); ++i) {
                const auto u = static_cast<std::uint16_t>(s[i]);
                out[2 * i] = static_cast<std::uint8_t>(u & 0xFF);
                out[2 * i + 1] = static_cast<std::uint8_t>(u >> 8);
            }
            break;
        case core::Encoding::mulaw:
            out.resize(s.size());
            core::ulaw_encode(s, out.data());
            break;
        case core::Encoding::alaw:
            out.resize(s.size());
            core::alaw_encode(s, out.data());
            break;
    }
    return out;
}

bool write_raw(const std::string& path, const std::vector<std::uint8_t>& bytes, std::string& err) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) {
        err = fmt::format("{}: cannot create: {}", path, std::strerror(errno));
        return false;
    }
    bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const int e = errno;
    if (std::fclose(f) != 0) ok = false;
    if (!ok) err = fmt::format("{}: cannot write: {}", path, std::strerror(e ? e : errno));
    return ok;
}

}  // namespace

int cmd_convert(Args args) {
    std::string in_path, out_path, encoding_name = "mulaw";
    int rate = 8000;
    bool raw = false;
    core::ArgParser cli("mediasim convert",
                        "Converts a PCM16, mu-law or A-law WAV (any rate, mono or stereo) to\n"
                        "Twilio's format, mu-law 8 kHz mono WAV, unless told otherwise. Stereo is\n"
                        "downmixed (average); the rate is converted only when it differs.");
    cli.positional("IN", &in_path, "input WAV file")
        .positional("OUT", &out_path, "output file (WAV, or headerless samples with --raw)")
        .option("encoding", &encoding_name, "ENC",
                "output encoding: mulaw (default), alaw or pcm16")
        .option("rate", &rate, "HZ", "output sample rate in Hz (default 8000)", 1)
        .flag("raw", &raw, "write the samples only, without a WAV header");
    if (auto st = cli.parse(args); !st) return fail(st.error().to_string());
    if (cli.help_requested()) {
        std::fputs(cli.help().c_str(), stdout);
        return 0;
    }
    auto enc = core::parse_encoding(encoding_name);
    if (!enc) return fail("--encoding: " + enc.error().to_string());
    if (rate > kMaxRateHz)
        return fail(fmt::format("--rate: {} is above the maximum of {}", rate, kMaxRateHz));

    auto in = core::read_wav(in_path);
    if (!in) return fail(in.error().to_string());
    const core::AudioFormat out_format{*enc, rate, 1};

    std::vector<std::uint8_t> out_bytes;
    if (in->format == out_format) {
        // Nothing to convert: the samples pass through untouched (a μ-law decode/encode would
        // turn 0x7F into 0xFF).
        out_bytes = in->data;
    } else {
        core::ReadOptions ro;
        ro.sample_rate_hz = rate;  // decode_to_pcm leaves equal rates alone
        ro.downmix = true;
        const auto pcm = core::decode_to_pcm(*in, ro);
        out_bytes = encode(pcm.samples, *enc);
    }

    if (raw) {
        std::string err;
        if (!write_raw(out_path, out_bytes, err)) return fail(err);
    } else if (auto st = core::write_wav(out_path, out_format, out_bytes); !st) {
        return fail(st.error().to_string());
    }
    std::printf("%s (%s) -> %s (%s%s)\n", in_path.c_str(),
                describe(in->format, in->data.size()).c_str(), out_path.c_str(), raw ? "raw " : "",
                describe(out_format, out_bytes.size()).c_str());
    return 0;
}

}  // namespace mediasim::sim
