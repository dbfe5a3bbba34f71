#include "core/wav.hpp"

// Decisions (see also wav.hpp):
// - Channels: 1 to 8 are read and written; decode_to_pcm's downmix averages all of them. More is
//   an error naming the count (those are studio exports, not telephony audio).
// - The RIFF size is not trusted (a writer that died leaves it stale): chunks are walked up to
//   the data chunk, skipping any others (LIST, fact, ...) with their odd-size pad byte.
// - A data chunk that runs past the end of the file is an error for parse_wav ("declares N
//   bytes but only M remain"), which repair_wav fixes; a data size of 0xFFFFFFFF (streamed
//   output) means "to the end of the file". A size that is not whole sample frames is an error.
// - byte_rate and block_align must agree with the channels, rate and encoding.
// - Written files: PCM16 gets the canonical 44-byte header; μ-law and A-law get an 18-byte fmt
//   (cbSize 0) and a fact chunk, as the WAV specification asks for non-PCM formats.

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <system_error>
#include <utility>

#include "core/g711.hpp"
#include "core/resample.hpp"

namespace mediasim::core {

namespace {

constexpr std::uint16_t kTagPcm = 1;
constexpr std::uint16_t kTagAlaw = 6;
constexpr std::uint16_t kTagMulaw = 7;
constexpr std::uint16_t kTagExtensible = 0xFFFE;
// The 14 bytes that follow the 2-byte format tag in a KSDATAFORMAT_SUBTYPE_* GUID
// (00000000-0000-0010-8000-00aa00389b71 with the tag in the first two bytes).
constexpr std::array<std::uint8_t, 14> kSubtypeTail = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                       0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
// Larger channel counts are refused with a message saying so (they are multichannel studio
// exports, not telephony audio).
constexpr int kMaxChannels = 8;
constexpr std::uint32_t kMaxRate = 1'000'000;
// Writers that stream to a pipe set the data size to this; it means "to the end of the file".
constexpr std::uint32_t kUnknownSize = 0xFFFFFFFF;

std::uint16_t le16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
void put16(std::vector<std::uint8_t>& v, std::uint16_t x) {
    v.push_back(static_cast<std::uint8_t>(x));
    v.push_back(static_cast<std::uint8_t>(x >> 8));
}
void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}
void put_id(std::vector<std::uint8_t>& v, const char* id) {
    v.insert(v.end(), id, id + 4);
}

// A chunk id (or any bytes) for a message: printable ASCII as is, the rest as \xNN.
std::string show_bytes(const std::uint8_t* p, std::size_t n) {
    std::string out = "\"";
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '"' && p[i] != '\\')
            out += static_cast<char>(p[i]);
        else
            out += fmt::format("\\x{:02X}", p[i]);
    }
    return out + "\"";
}

bool is_chunk_id(const std::uint8_t* p) {
    for (int i = 0; i < 4; ++i)
        if (p[i] < 0x20 || p[i] > 0x7E) return false;
    return true;
}

// A chunk id for messages, bare and without trailing spaces: "fmt", "LIST".
std::string chunk_name(const std::uint8_t* p) {
    std::string s(reinterpret_cast<const char*>(p), 4);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

const char* encoding_words(Encoding e) {
    switch (e) {
        case Encoding::pcm16:
            return "16-bit PCM";
        case Encoding::mulaw:
            return "8-bit mu-law";
        case Encoding::alaw:
            return "8-bit A-law";
    }
    return "?";
}

Diagnostic wav_error(std::string_view name, std::string message) {
    Diagnostic d;
    d.file = std::string(name);
    d.message = std::move(message);
    return d;
}

// Where the parts of a WAV header are. Found by walking the RIFF chunks up to the data chunk.
struct Layout {
    AudioFormat format;
    std::size_t fact_offset = 0;  // 0: no fact chunk (it can never be at offset 0)
    std::size_t data_offset = 0;  // offset of the data chunk's header
    std::uint32_t data_declared = 0;
    std::size_t data_present = 0;  // bytes after the data chunk header, up to the end
};

std::optional<std::string> check_format(const AudioFormat& f) {
    if (f.channels < 1 || f.channels > kMaxChannels)
        return fmt::format("{} channels are not supported (1 to {})", f.channels, kMaxChannels);
    if (f.sample_rate_hz < 1 || static_cast<std::uint32_t>(f.sample_rate_hz) > kMaxRate)
        return fmt::format("a sample rate of {} Hz is not supported (1 to {} Hz)", f.sample_rate_hz,
                           kMaxRate);
    return std::nullopt;
}

// Reads the fmt chunk body (size bytes at p, chunk header at offset `at`).
Result<AudioFormat> parse_fmt(const std::uint8_t* p, std::uint32_t size, std::size_t at,
                              std::string_view name) {
    auto fail = [&](std::string what) {
        return wav_error(name, fmt::format("fmt chunk at offset {}: {}", at, what));
    };
    if (size < 16) return fail(fmt::format("is {} bytes, at least 16 are needed", size));
    std::uint16_t tag = le16(p);
    const std::uint16_t channels = le16(p + 2);
    const std::uint32_t rate = le32(p + 4);
    const std::uint32_t byte_rate = le32(p + 8);
    const std::uint16_t block_align = le16(p + 12);
    const std::uint16_t bits = le16(p + 14);
    std::uint16_t valid_bits = bits;
    if (tag == kTagExtensible) {
        if (size < 40)
            return fail(
                fmt::format("WAVE_FORMAT_EXTENSIBLE needs 40 bytes, the chunk has {}", size));
        const std::uint16_t cb_size = le16(p + 16);
        if (cb_size < 22)
            return fail(fmt::format(
                "WAVE_FORMAT_EXTENSIBLE extension is {} bytes, at least 22 are needed", cb_size));
        valid_bits = le16(p + 18);
        if (!std::equal(kSubtypeTail.begin(), kSubtypeTail.end(), p + 26))
            return fail("WAVE_FORMAT_EXTENSIBLE subformat is not a PCM, mu-law or A-law GUID");
        tag = le16(p + 24);
        if (valid_bits == 0) valid_bits = bits;
    }
    AudioFormat f;
    std::uint16_t want_bits = 8;
    switch (tag) {
        case kTagPcm:
            f.encoding = Encoding::pcm16;
            want_bits = 16;
            break;
        case kTagMulaw:
            f.encoding = Encoding::mulaw;
            break;
        case kTagAlaw:
            f.encoding = Encoding::alaw;
            break;
        case 3:
            return fail(
                "32-bit float audio is not supported (supported: 16-bit PCM, mu-law, A-law)");
        default:
            return fail(
                fmt::format("format tag {} (0x{:04X}) is not supported (supported: 1 PCM, "
                            "6 A-law, 7 mu-law, 0xFFFE extensible)",
                            tag, tag));
    }
    if (bits != want_bits || valid_bits > bits)
        return fail(
            fmt::format("{}-bit {} is not supported (supported: 16-bit PCM, 8-bit mu-law "
                        "and A-law)",
                        bits, tag == kTagPcm ? "PCM" : to_string(f.encoding)));
    if (channels == 0) return fail("declares 0 channels");
    if (rate == 0) return fail("declares a sample rate of 0 Hz");
    if (channels > kMaxChannels)
        return fail(
            fmt::format("{} channels are not supported (1 to {}; mono and stereo are "
                        "usual)",
                        channels, kMaxChannels));
    if (rate > kMaxRate)
        return fail(
            fmt::format("a sample rate of {} Hz is not supported (at most {} Hz)", rate, kMaxRate));
    f.channels = channels;
    f.sample_rate_hz = static_cast<int>(rate);
    if (block_align != f.block_align())
        return fail(fmt::format("block align is {} but {} channel(s) of {} need {}", block_align,
                                channels, encoding_words(f.encoding), f.block_align()));
    // 64-bit: rate * block_align cannot overflow (rate <= 1e6, block_align <= 16).
    const std::uint64_t want_rate = std::uint64_t{rate} * block_align;
    if (byte_rate != want_rate)
        return fail(fmt::format("byte rate is {} but {} Hz x {}-byte frames make {}", byte_rate,
                                rate, block_align, want_rate));
    return f;
}

// Walks the chunks from offset 12 until the fmt and data chunks are found. The data chunk may
// run past the end (the caller decides what that means); every other chunk must be whole.
Result<Layout> scan(std::span<const std::uint8_t> b, std::string_view name) {
    const std::size_t n = b.size();
    if (n == 0) return wav_error(name, "not a WAV file: the file is empty");
    if (n < 4 || std::memcmp(b.data(), "RIFF", 4) != 0) {
        if (n >= 4 && std::memcmp(b.data(), "RIFX", 4) == 0)
            return wav_error(name, "big-endian WAV (RIFX) is not supported");
        if (n >= 4 && std::memcmp(b.data(), "RF64", 4) == 0)
            return wav_error(name, "RF64 (WAV over 4 GiB) is not supported");
        return wav_error(name, fmt::format("not a WAV file: expected \"RIFF\" at offset 0, "
                                           "found {}",
                                           show_bytes(b.data(), std::min<std::size_t>(n, 4))));
    }
    if (n < 12)
        return wav_error(name, fmt::format("RIFF header at offset 0: needs 12 bytes but the file "
                                           "has {}",
                                           n));
    if (std::memcmp(b.data() + 8, "WAVE", 4) != 0)
        return wav_error(name,
                         fmt::format("not a WAV file: expected \"WAVE\" at offset 8, found {}",
                                     show_bytes(b.data() + 8, 4)));
    // The RIFF size is not trusted: a writer that died leaves it stale. Chunks are walked to
    // the end of the bytes instead.
    Layout l;
    bool have_fmt = false;
    std::size_t fmt_offset = 0;
    std::size_t off = 12;
    while (true) {
        if (off >= n) {
            if (!have_fmt)
                return wav_error(name, fmt::format("no fmt chunk before the end of the "
                                                   "file (offset {})",
                                                   n));
            return wav_error(name, fmt::format("no data chunk before the end of the file (offset "
                                               "{})",
                                               n));
        }
        const std::size_t left = n - off;
        if (left < 8)
            return wav_error(name, fmt::format("chunk header at offset {}: needs 8 bytes but only "
                                               "{} remain",
                                               off, left));
        const std::uint8_t* h = b.data() + off;
        if (!is_chunk_id(h))
            return wav_error(name, fmt::format("chunk at offset {}: {} is not a chunk id (corrupt "
                                               "file?)",
                                               off, show_bytes(h, 4)));
        const std::uint32_t size = le32(h + 4);
        const std::size_t body_left = left - 8;
        const bool is_data = std::memcmp(h, "data", 4) == 0;
        if (is_data) {
            if (!have_fmt)
                return wav_error(name, fmt::format("data chunk at offset {} comes before any fmt "
                                                   "chunk",
                                                   off));
            l.data_offset = off;
            l.data_declared = size;
            l.data_present = body_left;
            return l;
        }
        if (size > body_left)
            return wav_error(name, fmt::format("{} chunk at offset {}: declares {} bytes but only "
                                               "{} remain",
                                               chunk_name(h), off, size, body_left));
        if (std::memcmp(h, "fmt ", 4) == 0) {
            if (have_fmt)
                return wav_error(name, fmt::format("fmt chunk at offset {}: a second fmt chunk "
                                                   "(the first is at offset {})",
                                                   off, fmt_offset));
            auto f = parse_fmt(h + 8, size, off, name);
            if (!f) return f.error();
            l.format = *f;
            have_fmt = true;
            fmt_offset = off;
        } else if (std::memcmp(h, "fact", 4) == 0 && size >= 4) {
            l.fact_offset = off;
        }
        // size <= body_left < n, so this cannot overflow; odd sizes are followed by a pad byte.
        off += 8 + std::size_t{size} + (size & 1u);
    }
}

std::uint32_t header_size(const AudioFormat& f) {
    // PCM: the canonical 44 bytes. Non-PCM formats carry cbSize in fmt (18 bytes) and a fact
    // chunk, as the WAV specification asks for them.
    return f.encoding == Encoding::pcm16 ? 44 : 58;
}

std::vector<std::uint8_t> make_header(const AudioFormat& f, std::uint64_t data_bytes) {
    const std::uint64_t pad = data_bytes & 1u;
    const std::uint64_t riff = header_size(f) - 8 + data_bytes + pad;
    std::vector<std::uint8_t> h;
    h.reserve(58);
    put_id(h, "RIFF");
    put32(h, static_cast<std::uint32_t>(std::min<std::uint64_t>(riff, 0xFFFFFFFFu)));
    put_id(h, "WAVE");
    put_id(h, "fmt ");
    const bool pcm = f.encoding == Encoding::pcm16;
    put32(h, pcm ? 16 : 18);
    put16(h, pcm ? kTagPcm : f.encoding == Encoding::mulaw ? kTagMulaw : kTagAlaw);
    put16(h, static_cast<std::uint16_t>(f.channels));
    put32(h, static_cast<std::uint32_t>(f.sample_rate_hz));
    put32(h, static_cast<std::uint32_t>(f.sample_rate_hz) *
                 static_cast<std::uint32_t>(f.block_align()));
    put16(h, static_cast<std::uint16_t>(f.block_align()));
    put16(h, static_cast<std::uint16_t>(f.bytes_per_sample() * 8));
    if (!pcm) {
        put16(h, 0);  // cbSize
        put_id(h, "fact");
        put32(h, 4);
        put32(h,
              static_cast<std::uint32_t>(data_bytes / static_cast<std::uint64_t>(f.block_align())));
    }
    put_id(h, "data");
    put32(h, static_cast<std::uint32_t>(std::min<std::uint64_t>(data_bytes, 0xFFFFFFFFu)));
    return h;
}

// The largest data size a WAV can declare with this header (RIFF size is 32 bits).
std::uint64_t max_data_bytes(const AudioFormat& f) {
    std::uint64_t m = 0xFFFFFFFFull - (header_size(f) - 8) - 1;
    return m - m % static_cast<std::uint64_t>(f.block_align());
}

std::string errno_text(int e) {
    return std::generic_category().message(e);
}

Result<std::vector<std::uint8_t>> slurp(const std::filesystem::path& path) {
    const std::string name = path.string();
    std::FILE* f = std::fopen(name.c_str(), "rb");
    if (!f) return wav_error(name, fmt::format("cannot open: {}", errno_text(errno)));
    std::vector<std::uint8_t> out;
    std::array<std::uint8_t, 65536> buf;
    while (true) {
        const std::size_t got = std::fread(buf.data(), 1, buf.size(), f);
        out.insert(out.end(), buf.data(), buf.data() + got);
        if (got < buf.size()) break;
    }
    const bool err = std::ferror(f) != 0;
    const int e = errno;
    std::fclose(f);
    if (err) return wav_error(name, fmt::format("cannot read: {}", errno_text(e)));
    return out;
}

void decode_samples(const WavFile& wav, std::vector<std::int16_t>& out) {
    const auto& d = wav.data;
    switch (wav.format.encoding) {
        case Encoding::pcm16:
            out.resize(d.size() / 2);
            for (std::size_t i = 0; i < out.size(); ++i)
                out[i] = static_cast<std::int16_t>(le16(&d[2 * i]));
            break;
        case Encoding::mulaw:
            out.resize(d.size());
            ulaw_decode(d, out.data());
            break;
        case Encoding::alaw:
            out.resize(d.size());
            alaw_decode(d, out.data());
            break;
    }
}

// One channel, whole file: floor(n * out / in) samples, aligned to the sample with the input
// (the filter's delay is removed: the file starts where it started, and its end comes out).
std::vector<std::int16_t> resample_all(std::span<const std::int16_t> in, int in_rate,
                                       int out_rate) {
    Resampler rs(in_rate, out_rate);
    const auto g = static_cast<std::uint64_t>(std::gcd(in_rate, out_rate));
    const std::uint64_t num = static_cast<std::uint64_t>(out_rate) / g;
    const std::uint64_t den = static_cast<std::uint64_t>(in_rate) / g;
    const std::size_t want = static_cast<std::size_t>(in.size() * num / den);
    // The delay is exact in input samples; lead with k zeros so that delay + k input samples
    // is a whole number of output samples, and drop those outputs.
    const auto in_delay = static_cast<std::uint64_t>(std::max(0, rs.input_delay_samples()));
    const std::uint64_t lead = (den - in_delay % den) % den;
    const auto drop = static_cast<std::size_t>((in_delay + lead) * num / den);

    std::vector<std::int16_t> out;
    out.reserve(want + drop + 64);
    constexpr std::size_t kBlock = 4096;
    std::vector<std::int16_t> buf(rs.max_output(kBlock));
    auto feed = [&](std::span<const std::int16_t> block) {
        const std::size_t got = rs.process(block, buf.data());
        out.insert(out.end(), buf.data(), buf.data() + got);
    };
    const std::vector<std::int16_t> zeros(kBlock, 0);
    auto feed_zeros = [&](std::uint64_t n) {
        for (std::uint64_t fed = 0; fed < n; fed += kBlock)
            feed(std::span<const std::int16_t>(zeros).first(
                static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, n - fed))));
    };
    feed_zeros(lead);
    for (std::size_t i = 0; i < in.size(); i += kBlock)
        feed(in.subspan(i, std::min(kBlock, in.size() - i)));
    // Trailing zeros push the delayed end of the input out (the delay plus a margin for the
    // carried fraction).
    feed_zeros(in_delay + lead + 2 * den / num + 2);
    std::vector<std::int16_t> aligned(want, 0);
    if (out.size() > drop)
        std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(drop),
                    std::min(want, out.size() - drop), aligned.begin());
    return aligned;
}

}  // namespace

const char* to_string(Encoding e) {
    switch (e) {
        case Encoding::pcm16:
            return "pcm16";
        case Encoding::mulaw:
            return "mulaw";
        case Encoding::alaw:
            return "alaw";
    }
    return "?";
}

Result<Encoding> parse_encoding(std::string_view name) {
    if (name == "mulaw" || name == "ulaw" || name == "pcmu") return Encoding::mulaw;
    if (name == "alaw" || name == "pcma") return Encoding::alaw;
    if (name == "pcm16" || name == "pcm" || name == "s16le") return Encoding::pcm16;
    return make_error(fmt::format("unknown encoding \"{}\" (expected mulaw, alaw or pcm16)", name));
}

Result<WavFile> parse_wav(std::span<const std::uint8_t> bytes, std::string_view name) {
    auto l = scan(bytes, name);
    if (!l) return l.error();
    std::size_t size = l->data_declared;
    if (l->data_declared == kUnknownSize) {
        // Streamed output whose writer never came back to fill in the size: to the end.
        size =
            l->data_present - l->data_present % static_cast<std::size_t>(l->format.block_align());
    } else if (l->data_declared > l->data_present) {
        return wav_error(name, fmt::format("data chunk at offset {}: declares {} bytes but only {} "
                                           "remain (the file was cut short; repair_wav fixes "
                                           "that)",
                                           l->data_offset, l->data_declared, l->data_present));
    }
    if (size % static_cast<std::size_t>(l->format.block_align()) != 0)
        return wav_error(name,
                         fmt::format("data chunk at offset {}: {} bytes is not a whole number "
                                     "of {}-byte sample frames",
                                     l->data_offset, size, l->format.block_align()));
    WavFile w;
    w.format = l->format;
    const auto* start = bytes.data() + l->data_offset + 8;
    w.data.assign(start, start + size);
    return w;
}

Result<WavFile> read_wav(const std::filesystem::path& path) {
    auto bytes = slurp(path);
    if (!bytes) return bytes.error();
    return parse_wav(*bytes, path.string());
}

Pcm decode_to_pcm(const WavFile& wav, const ReadOptions& opts) {
    Pcm pcm;
    pcm.sample_rate_hz = wav.format.sample_rate_hz;
    pcm.channels = wav.format.channels;
    decode_samples(wav, pcm.samples);
    const auto ch = static_cast<std::size_t>(std::max(1, pcm.channels));
    if (opts.downmix && ch > 1) {
        const std::size_t frames = pcm.samples.size() / ch;
        for (std::size_t i = 0; i < frames; ++i) {
            std::int32_t sum = 0;
            for (std::size_t c = 0; c < ch; ++c) sum += pcm.samples[i * ch + c];
            // Truncates toward zero; the average of int16 values is always in range.
            pcm.samples[i] = static_cast<std::int16_t>(sum / static_cast<std::int32_t>(ch));
        }
        pcm.samples.resize(frames);
        pcm.channels = 1;
    }
    if (opts.sample_rate_hz > 0 && pcm.sample_rate_hz > 0 &&
        opts.sample_rate_hz != pcm.sample_rate_hz) {
        const auto c = static_cast<std::size_t>(std::max(1, pcm.channels));
        const std::size_t frames = pcm.samples.size() / c;
        std::vector<std::int16_t> out;
        std::vector<std::int16_t> one(frames);
        for (std::size_t k = 0; k < c; ++k) {
            for (std::size_t i = 0; i < frames; ++i) one[i] = pcm.samples[i * c + k];
            auto conv = resample_all(one, pcm.sample_rate_hz, opts.sample_rate_hz);
            if (k == 0) out.assign(conv.size() * c, 0);
            for (std::size_t i = 0; i < conv.size(); ++i) out[i * c + k] = conv[i];
        }
        pcm.samples = std::move(out);
        pcm.sample_rate_hz = opts.sample_rate_hz;
    }
    return pcm;
}

Result<Pcm> read_wav_pcm(const std::filesystem::path& path, const ReadOptions& opts) {
    auto w = read_wav(path);
    if (!w) return w.error();
    return decode_to_pcm(*w, opts);
}

std::vector<std::uint8_t> make_wav(const AudioFormat& format, std::span<const std::uint8_t> data) {
    auto out = make_header(format, data.size());
    out.insert(out.end(), data.begin(), data.end());
    if (data.size() & 1u) out.push_back(0);
    return out;
}

Status write_wav(const std::filesystem::path& path, const AudioFormat& format,
                 std::span<const std::uint8_t> data) {
    const std::string name = path.string();
    if (auto bad = check_format(format)) return wav_error(name, *bad);
    if (data.size() % static_cast<std::size_t>(format.block_align()) != 0)
        return wav_error(name, fmt::format("{} bytes is not a whole number of {}-byte sample "
                                           "frames",
                                           data.size(), format.block_align()));
    if (data.size() > max_data_bytes(format))
        return wav_error(name, fmt::format("{} bytes of audio do not fit in a WAV file (4 GiB "
                                           "limit)",
                                           data.size()));
    std::FILE* f = std::fopen(name.c_str(), "wb");
    if (!f) return wav_error(name, fmt::format("cannot create: {}", errno_text(errno)));
    const auto header = make_header(format, data.size());
    bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
    if (ok && !data.empty()) ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    if (ok && (data.size() & 1u)) ok = std::fputc(0, f) != EOF;
    const int e = errno;
    if (std::fclose(f) != 0 && ok)
        return wav_error(name, fmt::format("cannot write: {}", errno_text(errno)));
    if (!ok) return wav_error(name, fmt::format("cannot write: {}", errno_text(e)));
    return Ok{};
}

// ---- WavWriter ----

WavWriter::~WavWriter() {
    (void)close();
}

WavWriter::WavWriter(WavWriter&& o) noexcept
    : file_(std::exchange(o.file_, nullptr)),
      path_(std::move(o.path_)),
      format_(o.format_),
      data_bytes_(std::exchange(o.data_bytes_, 0)),
      last_header_(o.last_header_),
      header_interval_(o.header_interval_) {}

WavWriter& WavWriter::operator=(WavWriter&& o) noexcept {
    if (this != &o) {
        (void)close();
        file_ = std::exchange(o.file_, nullptr);
        path_ = std::move(o.path_);
        format_ = o.format_;
        data_bytes_ = std::exchange(o.data_bytes_, 0);
        last_header_ = o.last_header_;
        header_interval_ = o.header_interval_;
    }
    return *this;
}

Status WavWriter::open(const std::filesystem::path& path, const AudioFormat& format,
                       std::chrono::milliseconds header_interval) {
    if (auto st = close(); !st) return st;
    const std::string name = path.string();
    if (auto bad = check_format(format)) return wav_error(name, *bad);
    // Read and write: overwrite_channel reads back the frames it changes.
    std::FILE* f = std::fopen(name.c_str(), "w+b");
    if (!f) return wav_error(name, fmt::format("cannot create: {}", errno_text(errno)));
    file_ = f;
    path_ = path;
    format_ = format;
    data_bytes_ = 0;
    header_interval_ = header_interval;
    // The empty file is already a valid WAV (no samples).
    if (auto st = rewrite_header(); !st) {
        std::fclose(file_);
        file_ = nullptr;
        return st;
    }
    return Ok{};
}

Status WavWriter::write(std::span<const std::uint8_t> bytes) {
    const std::string& name = path_.native();  // no copy on the per-frame path
    if (!file_) return wav_error(name, "write on a WavWriter that is not open");
    const auto align = static_cast<std::size_t>(format_.block_align());
    if (bytes.size() % align != 0)
        return wav_error(name, fmt::format("write of {} bytes is not a whole number of {}-byte "
                                           "sample frames",
                                           bytes.size(), align));
    if (bytes.size() > max_data_bytes(format_) - data_bytes_)
        return wav_error(name, "the recording reached the 4 GiB WAV limit");
    if (bytes.empty()) return Ok{};
    if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
        return wav_error(name, fmt::format("cannot write: {}", errno_text(errno)));
    data_bytes_ += bytes.size();
    if (std::chrono::steady_clock::now() - last_header_ >= header_interval_)
        return rewrite_header();
    return Ok{};
}

Status WavWriter::overwrite_channel(std::uint64_t first_frame, int channel,
                                    std::span<const std::uint8_t> samples) {
    const std::string& name = path_.native();  // no copy on the per-frame path
    if (!file_) return wav_error(name, "overwrite on a WavWriter that is not open");
    const auto width = static_cast<std::size_t>(format_.bytes_per_sample());
    const auto align = static_cast<std::size_t>(format_.block_align());
    if (channel < 0 || channel >= format_.channels || samples.size() % width != 0)
        return wav_error(name, fmt::format("overwrite of {} bytes in channel {} does not fit {} "
                                           "channel(s) of {}-byte samples",
                                           samples.size(), channel, format_.channels, width));
    const std::uint64_t frames = samples.size() / width;
    if (first_frame > data_bytes_ / align || frames > data_bytes_ / align - first_frame)
        return wav_error(name, fmt::format("overwrite of frames {}..{} beyond the {} written",
                                           first_frame, first_frame + frames, data_bytes_ / align));
    if (frames == 0) return Ok{};
    // The stdio buffer first, so the file holds every frame; then read, patch, write back at
    // explicit offsets (the stream's own position, at the end, is untouched).
    if (std::fflush(file_) != 0)
        return wav_error(name, fmt::format("cannot write: {}", errno_text(errno)));
    const int fd = ::fileno(file_);
    const auto at = static_cast<off_t>(header_size(format_) + first_frame * align);
    std::vector<std::uint8_t> region(static_cast<std::size_t>(frames) * align);
    if (::pread(fd, region.data(), region.size(), at) != static_cast<ssize_t>(region.size()))
        return wav_error(name, fmt::format("cannot read back frames: {}", errno_text(errno)));
    for (std::size_t i = 0; i < frames; ++i)
        std::copy_n(samples.data() + i * width, width,
                    region.data() + i * align + static_cast<std::size_t>(channel) * width);
    if (::pwrite(fd, region.data(), region.size(), at) != static_cast<ssize_t>(region.size()))
        return wav_error(name, fmt::format("cannot overwrite frames: {}", errno_text(errno)));
    return Ok{};
}

Status WavWriter::rewrite_header() {
    const std::string& name = path_.native();  // no copy on the per-frame path
    // Data first, then the header that covers it: the header never claims bytes that are not
    // in the file yet, so a reader at any moment sees a valid file.
    if (std::fflush(file_) != 0)
        return wav_error(name, fmt::format("cannot write: {}", errno_text(errno)));
    const auto h = make_header(format_, data_bytes_);
    if (std::fseek(file_, 0, SEEK_SET) != 0 ||
        std::fwrite(h.data(), 1, h.size(), file_) != h.size() || std::fflush(file_) != 0 ||
        std::fseek(file_, 0, SEEK_END) != 0)
        return wav_error(name, fmt::format("cannot rewrite the header: {}", errno_text(errno)));
    last_header_ = std::chrono::steady_clock::now();
    return Ok{};
}

Status WavWriter::flush() {
    if (!file_) return wav_error(path_.string(), "flush on a WavWriter that is not open");
    return rewrite_header();
}

Status WavWriter::close() {
    if (!file_) return Ok{};
    const std::string& name = path_.native();  // no copy on the per-frame path
    Status st = Ok{};
    // The RIFF rule: an odd-sized chunk is followed by a pad byte (the header counts it).
    if ((data_bytes_ & 1u) && std::fputc(0, file_) == EOF)
        st = wav_error(name, fmt::format("cannot write: {}", errno_text(errno)));
    if (st) st = rewrite_header();
    if (std::fclose(file_) != 0 && st)
        st = wav_error(name, fmt::format("cannot close: {}", errno_text(errno)));
    file_ = nullptr;
    return st;
}

// ---- repair ----

namespace {

// A file opened for repair, read and written in place with pread/pwrite: only the header and
// the chunk headers after the data are read, so repairing a long recording costs no memory.
class RepairFile {
  public:
    explicit RepairFile(std::string name) : name_(std::move(name)) {}
    ~RepairFile() {
        if (fd_ >= 0) ::close(fd_);
    }
    RepairFile(const RepairFile&) = delete;
    RepairFile& operator=(const RepairFile&) = delete;

    Status open() {
        fd_ = ::open(name_.c_str(), O_RDWR | O_CLOEXEC);
        if (fd_ < 0) return fail("cannot open for repair");
        struct stat st {};
        if (::fstat(fd_, &st) != 0) return fail("cannot stat");
        size_ = static_cast<std::uint64_t>(st.st_size);
        return Ok{};
    }
    std::uint64_t size() const { return size_; }
    // Reads up to n bytes at `at` (fewer at the end of the file).
    Result<std::vector<std::uint8_t>> read(std::uint64_t at, std::size_t n) {
        std::vector<std::uint8_t> out(n);
        std::size_t got = 0;
        while (got < n) {
            const ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(at + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return fail("cannot read");
            if (r == 0) break;
            got += static_cast<std::size_t>(r);
        }
        out.resize(got);
        return out;
    }
    Status write(std::uint64_t at, std::span<const std::uint8_t> b) {
        std::size_t done = 0;
        while (done < b.size()) {
            const ssize_t r =
                ::pwrite(fd_, b.data() + done, b.size() - done, static_cast<off_t>(at + done));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return fail("cannot write");
            done += static_cast<std::size_t>(r);
        }
        return Ok{};
    }
    Status truncate(std::uint64_t n) {
        if (::ftruncate(fd_, static_cast<off_t>(n)) != 0) return fail("cannot truncate");
        return Ok{};
    }
    // True when the chunks from `off` run exactly to the end of the file (a valid file with
    // trailing chunks such as LIST), rather than being audio past a stale data size.
    Result<bool> tail_is_chunks(std::uint64_t off) {
        while (off < size_) {
            auto h = read(off, 8);
            if (!h) return h.error();
            if (h->size() < 8 || !is_chunk_id(h->data())) return false;
            const std::uint32_t n = le32(h->data() + 4);
            if (n > size_ - off - 8) return false;
            off += 8 + std::uint64_t{n} + (n & 1u);
        }
        return true;
    }

  private:
    Diagnostic fail(const char* what) const {
        return wav_error(name_, fmt::format("{}: {}", what, errno_text(errno)));
    }
    std::string name_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

void set32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t x) {
    for (int i = 0; i < 4; ++i)
        b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(x >> (8 * i));
}

}  // namespace

Result<RepairReport> repair_wav(const std::filesystem::path& path) {
    const std::string name = path.string();
    RepairFile f(name);
    if (auto st = f.open(); !st) return st.error();
    const std::uint64_t n = f.size();
    // The header: the first 64 KiB hold it in any file seen in practice; when they do not (a
    // huge chunk before the data), read the whole file.
    constexpr std::size_t kHead = 64 * 1024;
    auto head = f.read(0, static_cast<std::size_t>(std::min<std::uint64_t>(n, kHead)));
    if (!head) return head.error();
    auto l = scan(*head, name);
    if (!l && head->size() < n) {
        head = f.read(0, static_cast<std::size_t>(n));
        if (!head) return head.error();
        l = scan(*head, name);
    }
    if (!l) return l.error();
    auto& b = *head;
    const std::uint64_t align = static_cast<std::uint64_t>(l->format.block_align());
    const std::uint64_t data_start = l->data_offset + 8;
    const std::uint64_t present = n - data_start;
    RepairReport rep;

    // A whole data chunk (declared size fits, whole frames) followed by whole chunks or by
    // nothing: only the RIFF size may need fixing.
    const std::uint64_t declared = l->data_declared;
    if (l->data_declared != kUnknownSize && declared <= present && declared % align == 0) {
        const std::uint64_t after = data_start + declared + (declared & 1u);
        const bool pad_missing = after == n + 1;  // a last odd chunk without its pad: tolerated
        bool whole = pad_missing;
        if (!whole) {
            auto t = f.tail_is_chunks(after);
            if (!t) return t.error();
            whole = *t;
        }
        if (whole) {
            const std::uint64_t riff = n - 8 + (pad_missing ? 1 : 0);
            rep.data_bytes = declared;
            if (le32(b.data() + 4) != riff && riff <= 0xFFFFFFFFu) {
                set32(b, 4, static_cast<std::uint32_t>(riff));
                if (auto st = f.write(0, std::span(b).first(8)); !st) return st.error();
                rep.changed = true;
            }
            return rep;
        }
    }

    // Otherwise the data chunk is the last one and runs to the end of the file (what a writer
    // that died leaves): its audio is everything after its header, cut to whole sample frames.
    std::uint64_t keep = std::min(present - present % align, max_data_bytes(l->format));
    rep.data_bytes = keep;
    rep.dropped_bytes = present - keep;
    rep.changed = true;
    const std::uint64_t pad = keep & 1u;
    set32(b, l->data_offset + 4, static_cast<std::uint32_t>(keep));
    set32(b, 4, static_cast<std::uint32_t>(data_start + keep + pad - 8));
    if (l->fact_offset != 0) set32(b, l->fact_offset + 8, static_cast<std::uint32_t>(keep / align));
    // Header first, then the cut: a repair that is itself interrupted leaves a valid file.
    if (auto st = f.write(0, std::span(b).first(static_cast<std::size_t>(data_start))); !st)
        return st.error();
    if (pad) {
        const std::uint8_t zero = 0;
        if (auto st = f.write(data_start + keep, std::span(&zero, 1)); !st) return st.error();
    }
    if (auto st = f.truncate(data_start + keep + pad); !st) return st.error();
    return rep;
}

}  // namespace mediasim::core
