#include "core/wav.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "core/g711.hpp"

namespace fs = std::filesystem;
using namespace mediasim::core;
using namespace std::literals;

namespace {

// A temporary directory removed when the test ends.
struct TempDir {
    fs::path dir;
    TempDir() {
        std::random_device rd;
        dir = fs::temp_directory_path() /
              ("mediasim-wav-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    fs::path operator/(const std::string& name) const { return dir / name; }
};

std::vector<std::uint8_t> file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put_bytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> v(n);
    for (auto& x : v) x = static_cast<std::uint8_t>(rng());
    return v;
}

std::vector<std::uint8_t> pcm16_bytes(const std::vector<std::int16_t>& s) {
    std::vector<std::uint8_t> b(s.size() * 2);
    for (std::size_t i = 0; i < s.size(); ++i) {
        b[2 * i] = static_cast<std::uint8_t>(s[i] & 0xFF);
        b[2 * i + 1] = static_cast<std::uint8_t>((static_cast<std::uint16_t>(s[i]) >> 8) & 0xFF);
    }
    return b;
}

void set16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t x) {
    b[at] = static_cast<std::uint8_t>(x);
    b[at + 1] = static_cast<std::uint8_t>(x >> 8);
}
void set32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t x) {
    for (int i = 0; i < 4; ++i)
        b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(x >> (8 * i));
}
std::uint32_t get32(const std::vector<std::uint8_t>& b, std::size_t at) {
    return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
           (static_cast<std::uint32_t>(b[at + 2]) << 16) |
           (static_cast<std::uint32_t>(b[at + 3]) << 24);
}

// The canonical 44-byte PCM16 header, 8 kHz mono, with `n` data bytes.
std::vector<std::uint8_t> pcm_file(std::size_t n) {
    return make_wav({Encoding::pcm16, 8000, 1}, random_bytes(n, 7));
}

std::string error_of(const std::vector<std::uint8_t>& b, std::string_view name = "hello.wav") {
    auto r = parse_wav(b, name);
    if (r) return "(parsed)";
    return r.error().to_string();
}

}  // namespace

TEST(Encoding, NamesRoundTrip) {
    for (auto e : {Encoding::pcm16, Encoding::mulaw, Encoding::alaw}) {
        auto p = parse_encoding(to_string(e));
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, e);
    }
    EXPECT_EQ(*parse_encoding("ulaw"), Encoding::mulaw);
    auto bad = parse_encoding("flac");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().to_string(), "unknown encoding \"flac\" (expected mulaw, alaw or pcm16)");
}

// ---- round trips ----

class WavRoundTrip : public ::testing::TestWithParam<std::tuple<Encoding, int, int>> {};

TEST_P(WavRoundTrip, MakeParseAndFile) {
    const auto [enc, rate, channels] = GetParam();
    const AudioFormat f{enc, rate, channels};
    for (std::size_t frames :
         {std::size_t{0}, std::size_t{1}, std::size_t{161}, std::size_t{4000}}) {
        const auto data = random_bytes(frames * static_cast<std::size_t>(f.block_align()),
                                       static_cast<unsigned>(frames + 3));
        const auto bytes = make_wav(f, data);
        auto w = parse_wav(bytes);
        ASSERT_TRUE(w) << w.error().to_string();
        EXPECT_EQ(w->format, f);
        EXPECT_EQ(w->data, data);
        // RIFF size counts everything after the first 8 bytes (pad byte included).
        EXPECT_EQ(get32(bytes, 4), bytes.size() - 8);
        EXPECT_EQ(bytes.size() % 2, 0u);

        TempDir tmp;
        const auto p = tmp / "x.wav";
        ASSERT_TRUE(write_wav(p, f, data));
        EXPECT_EQ(file_bytes(p), bytes);
        auto r = read_wav(p);
        ASSERT_TRUE(r) << r.error().to_string();
        EXPECT_EQ(r->format, f);
        EXPECT_EQ(r->data, data);
    }
}

INSTANTIATE_TEST_SUITE_P(
    AllEncodings, WavRoundTrip,
    ::testing::Combine(::testing::Values(Encoding::pcm16, Encoding::mulaw, Encoding::alaw),
                       ::testing::Values(8000, 11025, 16000, 22050, 44100, 48000),
                       ::testing::Values(1, 2)));

TEST(Wav, HeaderLayoutMatchesTheSpecification) {
    // PCM16: the canonical 44 bytes.
    auto b = make_wav({Encoding::pcm16, 16000, 2}, std::vector<std::uint8_t>(8, 0));
    ASSERT_EQ(b.size(), 52u);
    EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "RIFF");
    EXPECT_EQ(std::string(b.begin() + 8, b.begin() + 16), "WAVEfmt ");
    EXPECT_EQ(get32(b, 16), 16u);
    EXPECT_EQ(b[20], 1);              // tag
    EXPECT_EQ(b[22], 2);              // channels
    EXPECT_EQ(get32(b, 24), 16000u);  // rate
    EXPECT_EQ(get32(b, 28), 64000u);  // byte rate
    EXPECT_EQ(b[32], 4);              // block align
    EXPECT_EQ(b[34], 16);             // bits
    EXPECT_EQ(std::string(b.begin() + 36, b.begin() + 40), "data");
    EXPECT_EQ(get32(b, 40), 8u);
    // μ-law: fmt with cbSize, and a fact chunk holding the frame count.
    auto u = make_wav({Encoding::mulaw, 8000, 1}, std::vector<std::uint8_t>(3, 0xFF));
    ASSERT_EQ(u.size(), 58u + 3 + 1);
    EXPECT_EQ(get32(u, 16), 18u);
    EXPECT_EQ(u[20], 7);
    EXPECT_EQ(std::string(u.begin() + 38, u.begin() + 42), "fact");
    EXPECT_EQ(get32(u, 46), 3u);
    EXPECT_EQ(std::string(u.begin() + 50, u.begin() + 54), "data");
    EXPECT_EQ(get32(u, 54), 3u);
    EXPECT_EQ(u.back(), 0);  // pad byte
    auto a = make_wav({Encoding::alaw, 8000, 1}, {});
    EXPECT_EQ(a[20], 6);
}

TEST(Wav, SkipsOtherChunksAndOddPadding) {
    const std::vector<std::uint8_t> audio = {1, 2, 3, 4, 5, 6};
    auto base = make_wav({Encoding::pcm16, 8000, 1}, audio);
    // RIFF/WAVE, fmt, then LIST (odd size, padded) and an empty "junk", then data.
    std::vector<std::uint8_t> b(base.begin(), base.begin() + 36);
    const std::string_view list = "LIST\x05\x00\x00\x00INFOx"sv;
    b.insert(b.end(), list.begin(), list.end());
    b.push_back(0);  // pad
    const std::string junk = std::string("junk\0\0\0\0", 8);
    b.insert(b.end(), junk.begin(), junk.end());
    b.insert(b.end(), base.begin() + 36, base.end());
    // and a LIST after the data
    b.insert(b.end(), list.begin(), list.end());
    b.push_back(0);
    set32(b, 4, static_cast<std::uint32_t>(b.size() - 8));
    auto w = parse_wav(b);
    ASSERT_TRUE(w) << w.error().to_string();
    EXPECT_EQ(w->data, audio);
}

TEST(Wav, ExtensibleFormat) {
    for (auto [enc, tag] :
         {std::pair{Encoding::pcm16, 1}, {Encoding::mulaw, 7}, {Encoding::alaw, 6}}) {
        const AudioFormat f{enc, 48000, 2};
        const auto audio = random_bytes(static_cast<std::size_t>(f.block_align()) * 10, 11);
        std::vector<std::uint8_t> b;
        auto id = [&](const char* s) { b.insert(b.end(), s, s + 4); };
        auto u16 = [&](std::uint16_t x) {
            b.push_back(static_cast<std::uint8_t>(x));
            b.push_back(static_cast<std::uint8_t>(x >> 8));
        };
        auto u32 = [&](std::uint32_t x) {
            u16(static_cast<std::uint16_t>(x));
            u16(static_cast<std::uint16_t>(x >> 16));
        };
        id("RIFF");
        u32(0);
        id("WAVE");
        id("fmt ");
        u32(40);
        u16(0xFFFE);
        u16(2);
        u32(48000);
        u32(48000u * static_cast<std::uint32_t>(f.block_align()));
        u16(static_cast<std::uint16_t>(f.block_align()));
        u16(static_cast<std::uint16_t>(f.bytes_per_sample() * 8));
        u16(22);                                                    // cbSize
        u16(static_cast<std::uint16_t>(f.bytes_per_sample() * 8));  // valid bits
        u32(3);                                                     // channel mask: FL | FR
        u16(static_cast<std::uint16_t>(tag));
        for (std::uint8_t x :
             {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71})
            b.push_back(x);
        id("data");
        u32(static_cast<std::uint32_t>(audio.size()));
        b.insert(b.end(), audio.begin(), audio.end());
        set32(b, 4, static_cast<std::uint32_t>(b.size() - 8));
        auto w = parse_wav(b);
        ASSERT_TRUE(w) << w.error().to_string();
        EXPECT_EQ(w->format, f);
        EXPECT_EQ(w->data, audio);

        // A subformat GUID that is not PCM/μ-law/A-law (e.g. a wrong tail byte).
        auto bad = b;
        bad[12 + 8 + 39] ^= 1;
        EXPECT_EQ(error_of(bad),
                  "hello.wav: fmt chunk at offset 12: WAVE_FORMAT_EXTENSIBLE "
                  "subformat is not a PCM, mu-law or A-law GUID");
        // Subformat float (3).
        bad = b;
        bad[12 + 8 + 24] = 3;
        EXPECT_EQ(error_of(bad),
                  "hello.wav: fmt chunk at offset 12: 32-bit float audio is not "
                  "supported (supported: 16-bit PCM, mu-law, A-law)");
        // Too short for the extension.
        bad = b;
        set32(bad, 16, 18);
        EXPECT_EQ(error_of(bad),
                  "hello.wav: fmt chunk at offset 12: WAVE_FORMAT_EXTENSIBLE "
                  "needs 40 bytes, the chunk has 18");
    }
}

// ---- malformed files: every one gets its exact message ----

TEST(WavErrors, ExactMessages) {
    const auto good = pcm_file(8);  // 44-byte header + 8 bytes
    ASSERT_EQ(error_of(good), "(parsed)");

    EXPECT_EQ(error_of({}), "hello.wav: not a WAV file: the file is empty");
    EXPECT_EQ(error_of({'I', 'D', '3', 3, 0, 0, 0, 0}),
              "hello.wav: not a WAV file: expected \"RIFF\" at offset 0, found \"ID3\\x03\"");
    EXPECT_EQ(error_of({'R', 'I'}),
              "hello.wav: not a WAV file: expected \"RIFF\" at offset 0, found \"RI\"");
    EXPECT_EQ(error_of({'R', 'I', 'F', 'X', 0, 0, 0, 0, 'W', 'A', 'V', 'E'}),
              "hello.wav: big-endian WAV (RIFX) is not supported");
    EXPECT_EQ(error_of({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A'}),
              "hello.wav: RIFF header at offset 0: needs 12 bytes but the file has 10");
    {
        auto b = good;
        std::memcpy(b.data() + 8, "AVI ", 4);
        EXPECT_EQ(error_of(b),
                  "hello.wav: not a WAV file: expected \"WAVE\" at offset 8, found \"AVI \"");
    }
    {
        // fmt declares 16 bytes but the file ends 9 bytes after its header.
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 12 + 8 + 9);
        EXPECT_EQ(error_of(b),
                  "hello.wav: fmt chunk at offset 12: declares 16 bytes but only 9 remain");
    }
    {
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 12 + 5);
        EXPECT_EQ(error_of(b),
                  "hello.wav: chunk header at offset 12: needs 8 bytes but only 5 remain");
    }
    {
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 12);
        EXPECT_EQ(error_of(b), "hello.wav: no fmt chunk before the end of the file (offset 12)");
    }
    {
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 36);
        EXPECT_EQ(error_of(b), "hello.wav: no data chunk before the end of the file (offset 36)");
    }
    {
        // A data chunk cut short (a crash before the writer closed).
        auto b = good;
        set32(b, 40, 88200);
        EXPECT_EQ(error_of(b),
                  "hello.wav: data chunk at offset 36: declares 88200 bytes but only 8 remain "
                  "(the file was cut short; repair_wav fixes that)");
    }
    {
        auto b = good;
        set32(b, 40, 7);
        EXPECT_EQ(error_of(b),
                  "hello.wav: data chunk at offset 36: 7 bytes is not a whole "
                  "number of 2-byte sample frames");
    }
    {
        auto b = good;
        std::memcpy(b.data() + 12, "\x00\x01\x02\x03", 4);
        EXPECT_EQ(error_of(b),
                  "hello.wav: chunk at offset 12: \"\\x00\\x01\\x02\\x03\" is not "
                  "a chunk id (corrupt file?)");
    }
    {
        // data before fmt
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 12);
        b.insert(b.end(), good.begin() + 36, good.end());
        b.insert(b.end(), good.begin() + 12, good.begin() + 36);
        EXPECT_EQ(error_of(b), "hello.wav: data chunk at offset 12 comes before any fmt chunk");
    }
    {
        // a second fmt
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 36);
        b.insert(b.end(), good.begin() + 12, good.end());
        EXPECT_EQ(error_of(b),
                  "hello.wav: fmt chunk at offset 36: a second fmt chunk (the first "
                  "is at offset 12)");
    }
    {
        // a LIST chunk that runs past the end
        std::vector<std::uint8_t> b(good.begin(), good.begin() + 36);
        const std::string_view list = "LIST\xFF\xFF\xFF\xFFINFO"sv;
        b.insert(b.end(), list.begin(), list.end());
        EXPECT_EQ(error_of(b),
                  "hello.wav: LIST chunk at offset 36: declares 4294967295 bytes but "
                  "only 4 remain");
    }
    auto fmt_err = [&](auto edit) {
        auto b = good;
        edit(b);
        return error_of(b);
    };
    EXPECT_EQ(fmt_err([](auto& b) { set32(b, 16, 14); }),
              "hello.wav: fmt chunk at offset 12: is 14 bytes, at least 16 are needed");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 20, 3); }),
              "hello.wav: fmt chunk at offset 12: 32-bit float audio is not supported (supported: "
              "16-bit PCM, mu-law, A-law)");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 20, 0x55); }),
              "hello.wav: fmt chunk at offset 12: format tag 85 (0x0055) is not supported "
              "(supported: 1 PCM, 6 A-law, 7 mu-law, 0xFFFE extensible)");
    EXPECT_EQ(fmt_err([](auto& b) {
                  set16(b, 34, 8);
                  set16(b, 32, 1);
                  set32(b, 28, 8000);
              }),
              "hello.wav: fmt chunk at offset 12: 8-bit PCM is not supported (supported: 16-bit "
              "PCM, 8-bit mu-law and A-law)");
    EXPECT_EQ(fmt_err([](auto& b) {
                  set16(b, 20, 7);
                  set16(b, 34, 16);
              }),
              "hello.wav: fmt chunk at offset 12: 16-bit mulaw is not supported (supported: 16-bit "
              "PCM, 8-bit mu-law and A-law)");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 22, 0); }),
              "hello.wav: fmt chunk at offset 12: declares 0 channels");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 22, 9); }),
              "hello.wav: fmt chunk at offset 12: 9 channels are not supported (1 to 8; mono and "
              "stereo are usual)");
    EXPECT_EQ(fmt_err([](auto& b) { set32(b, 24, 0); }),
              "hello.wav: fmt chunk at offset 12: declares a sample rate of 0 Hz");
    EXPECT_EQ(fmt_err([](auto& b) { set32(b, 24, 0xFFFFFFFF); }),
              "hello.wav: fmt chunk at offset 12: a sample rate of 4294967295 Hz is not supported "
              "(at most 1000000 Hz)");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 32, 3); }),
              "hello.wav: fmt chunk at offset 12: block align is 3 but 1 channel(s) of 16-bit PCM "
              "need 2");
    EXPECT_EQ(fmt_err([](auto& b) { set16(b, 32, 0xFFFF); }),
              "hello.wav: fmt chunk at offset 12: block align is 65535 but 1 channel(s) of 16-bit "
              "PCM need 2");
    EXPECT_EQ(fmt_err([](auto& b) { set32(b, 28, 0xFFFFFFFF); }),
              "hello.wav: fmt chunk at offset 12: byte rate is 4294967295 but 8000 Hz x 2-byte "
              "frames make 16000");
}

TEST(WavErrors, ReadWavNamesTheFile) {
    TempDir tmp;
    auto r = read_wav(tmp / "missing.wav");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().to_string(),
              (tmp / "missing.wav").string() + ": cannot open: No such file or directory");
    put_bytes(tmp / "id3.wav", {'I', 'D', '3', 3});
    auto r2 = read_wav_pcm(tmp / "id3.wav");
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().to_string(), (tmp / "id3.wav").string() +
                                          ": not a WAV file: expected \"RIFF\" at offset 0, "
                                          "found \"ID3\\x03\"");
}

TEST(WavErrors, DataSizeUnknownMeansToTheEnd) {
    auto b = pcm_file(10);
    set32(b, 40, 0xFFFFFFFF);
    b.push_back(9);  // a partial frame at the end is left out
    auto w = parse_wav(b);
    ASSERT_TRUE(w) << w.error().to_string();
    EXPECT_EQ(w->data.size(), 10u);
}

TEST(WavErrors, TruncatedAtEveryOffsetNeverCrashes) {
    // A μ-law file with a LIST chunk, cut at every length and with every single byte of its
    // header corrupted: each either parses or gives a message naming the file.
    auto base = make_wav({Encoding::mulaw, 8000, 2}, random_bytes(40, 5));
    std::vector<std::uint8_t> b(base.begin(), base.begin() + 50);
    const std::string_view list =
        "LIST\x03\x00\x00\x00"
        "abc"sv;
    b.insert(b.end(), list.begin(), list.end());
    b.push_back(0);
    b.insert(b.end(), base.begin() + 50, base.end());
    ASSERT_TRUE(parse_wav(b));
    int parsed = 0;
    for (std::size_t n = 0; n <= b.size(); ++n) {
        // Copy into an exact-size buffer so that ASan catches any read past the end.
        std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        auto r = parse_wav(cut, "cut.wav");
        if (r) {
            ++parsed;
            EXPECT_EQ(r->format.block_align(), 2);
        } else {
            EXPECT_EQ(r.error().to_string().rfind("cut.wav: ", 0), 0u) << r.error().to_string();
        }
    }
    // Only the whole file (with or without its final pad byte) parses; the data is 40 bytes.
    EXPECT_EQ(parsed, 1);
    for (std::size_t i = 0; i < 70; ++i)
        for (std::uint8_t x : {0x00, 0x7F, 0x80, 0xFF}) {
            auto bad = b;
            bad[i] = x;
            auto r = parse_wav(bad, "bad.wav");
            if (!r) {
                EXPECT_EQ(r.error().to_string().rfind("bad.wav: ", 0), 0u);
            }
        }
}

// ---- decoding ----

TEST(WavDecode, MulawAndAlawGoThroughG711) {
    std::vector<std::uint8_t> codes(256);
    for (int i = 0; i < 256; ++i) codes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    for (auto enc : {Encoding::mulaw, Encoding::alaw}) {
        WavFile w{{enc, 8000, 1}, codes};
        auto pcm = decode_to_pcm(w);
        ASSERT_EQ(pcm.samples.size(), 256u);
        for (int i = 0; i < 256; ++i)
            EXPECT_EQ(pcm.samples[static_cast<std::size_t>(i)],
                      enc == Encoding::mulaw ? ulaw_to_linear(static_cast<std::uint8_t>(i))
                                             : alaw_to_linear(static_cast<std::uint8_t>(i)));
    }
}

TEST(WavDecode, Pcm16IsLittleEndianAndDownmixAverages) {
    const std::vector<std::int16_t> s = {1000, -1000, 32767, 32767, -32768, -32768, 3, 0, -3, 0};
    WavFile w{{Encoding::pcm16, 16000, 2}, pcm16_bytes(s)};
    auto stereo = decode_to_pcm(w);
    EXPECT_EQ(stereo.channels, 2);
    EXPECT_EQ(stereo.sample_rate_hz, 16000);
    EXPECT_EQ(stereo.samples, s);
    ReadOptions o;
    o.downmix = true;
    auto mono = decode_to_pcm(w, o);
    EXPECT_EQ(mono.channels, 1);
    EXPECT_EQ(mono.samples, (std::vector<std::int16_t>{0, 32767, -32768, 1, -1}));
}

TEST(WavDecode, SameRateDoesNotResample) {
    std::vector<std::int16_t> s(801);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::int16_t>(i * 37 % 20000);
    WavFile w{{Encoding::pcm16, 8000, 1}, pcm16_bytes(s)};
    ReadOptions o;
    o.sample_rate_hz = 8000;
    EXPECT_EQ(decode_to_pcm(w, o).samples, s);
}

namespace {
// Amplitude of `hz` in x (a single-bin DFT), as a fraction of full scale.
double tone_level(const std::vector<std::int16_t>& x, double hz, int rate, std::size_t from) {
    double re = 0, im = 0;
    std::size_t n = 0;
    for (std::size_t i = from; i < x.size(); ++i, ++n) {
        const double ph = 2 * M_PI * hz * static_cast<double>(i) / rate;
        re += x[i] * std::cos(ph);
        im += x[i] * std::sin(ph);
    }
    return 2 * std::sqrt(re * re + im * im) / static_cast<double>(n) / 32768.0;
}
}  // namespace

TEST(WavDecode, ResamplesWhenAskedKeepingLengthAndAlignment) {
    // 1 s of a 440 Hz tone at 22050 Hz, stereo (like espeak-ng output, doubled), read as 8 kHz
    // mono: 8000 samples, the tone kept, and no shift in time.
    const int in_rate = 22050;
    std::vector<std::int16_t> s(static_cast<std::size_t>(in_rate) * 2);
    for (std::size_t i = 0; i < s.size() / 2; ++i) {
        const auto v = static_cast<std::int16_t>(
            std::lround(16000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / in_rate)));
        s[2 * i] = v;
        s[2 * i + 1] = v;
    }
    WavFile w{{Encoding::pcm16, in_rate, 2}, pcm16_bytes(s)};
    ReadOptions o;
    o.sample_rate_hz = 8000;
    o.downmix = true;
    auto out = decode_to_pcm(w, o);
    EXPECT_EQ(out.sample_rate_hz, 8000);
    EXPECT_EQ(out.channels, 1);
    ASSERT_EQ(out.samples.size(), 8000u);
    EXPECT_NEAR(tone_level(out.samples, 440, 8000, 400), 16000.0 / 32768, 0.02);
    // Alignment: in phase with the input to within a few LSB (the delay removed), from 6 ms
    // after the start to 6 ms before the end (so the tail came out too).
    double err = 0;
    for (std::size_t i = 50; i < 7950; ++i)
        err = std::max(err,
                       std::abs(out.samples[i] -
                                16000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / 8000)));
    EXPECT_LT(err, 4) << "output is not aligned with the input";

    // Stereo kept when not downmixing: both channels resampled alike.
    o.downmix = false;
    auto st = decode_to_pcm(w, o);
    EXPECT_EQ(st.channels, 2);
    ASSERT_EQ(st.samples.size(), 16000u);
    for (std::size_t i = 0; i < 8000; ++i) ASSERT_EQ(st.samples[2 * i], st.samples[2 * i + 1]);
    EXPECT_EQ(st.samples[2 * 5000], out.samples[5000]);
}

TEST(WavDecode, ResamplingIsAlignedForEveryRatio) {
    for (auto [in_rate, out_rate] :
         {std::pair{8000, 16000}, std::pair{16000, 8000}, std::pair{8000, 48000},
          std::pair{48000, 8000}, std::pair{44100, 8000}, std::pair{11025, 16000},
          std::pair{8000, 24000}, std::pair{24000, 8000}}) {
        const std::size_t n = static_cast<std::size_t>(in_rate) / 2 + 7;  // 0.5 s and a bit
        std::vector<std::int16_t> s(n);
        for (std::size_t i = 0; i < n; ++i)
            s[i] = static_cast<std::int16_t>(
                std::lround(16000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / in_rate)));
        ReadOptions o;
        o.sample_rate_hz = out_rate;
        auto out = decode_to_pcm({{Encoding::pcm16, in_rate, 1}, pcm16_bytes(s)}, o);
        const auto want =
            static_cast<std::size_t>(std::uint64_t{n} * static_cast<std::uint64_t>(out_rate) /
                                     static_cast<std::uint64_t>(in_rate));
        ASSERT_EQ(out.samples.size(), want) << in_rate << " -> " << out_rate;
        const auto edge = static_cast<std::size_t>(out_rate / 160);  // 6 ms
        double err = 0;
        for (std::size_t i = edge; i + edge < want; ++i)
            err = std::max(err, std::abs(out.samples[i] -
                                         16000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) /
                                                          out_rate)));
        EXPECT_LT(err, 4) << in_rate << " -> " << out_rate;
    }
}

TEST(WavDecode, ReadWavPcmFromFile) {
    TempDir tmp;
    std::vector<std::uint8_t> u(1600, 0xFF);
    u[10] = 0x00;
    ASSERT_TRUE(write_wav(tmp / "u.wav", {Encoding::mulaw, 8000, 1}, u));
    ReadOptions o;
    o.sample_rate_hz = 16000;
    auto p = read_wav_pcm(tmp / "u.wav", o);
    ASSERT_TRUE(p) << p.error().to_string();
    EXPECT_EQ(p->sample_rate_hz, 16000);
    EXPECT_EQ(p->samples.size(), 3200u);
}

TEST(WavWrite, RefusesPartialFramesAndBadFormats) {
    TempDir tmp;
    auto st = write_wav(tmp / "a.wav", {Encoding::pcm16, 8000, 2}, std::vector<std::uint8_t>(6));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "6 bytes is not a whole number of 4-byte sample frames");
    st = write_wav(tmp / "b.wav", {Encoding::pcm16, 0, 1}, {});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "a sample rate of 0 Hz is not supported (1 to 1000000 Hz)");
    st = write_wav(tmp / "nodir" / "c.wav", {Encoding::mulaw, 8000, 1}, {});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "cannot create: No such file or directory");
}

// ---- WavWriter ----

TEST(WavWriter, ReadableAfterEveryWritePastTheInterval) {
    TempDir tmp;
    const auto p = tmp / "grow.wav";
    const AudioFormat f{Encoding::mulaw, 8000, 1};
    WavWriter w;
    ASSERT_TRUE(w.open(p, f, std::chrono::milliseconds(0)));
    EXPECT_TRUE(w.is_open());
    // Right after open: a valid, empty file.
    auto r0 = read_wav(p);
    ASSERT_TRUE(r0) << r0.error().to_string();
    EXPECT_TRUE(r0->data.empty());
    std::vector<std::uint8_t> all;
    for (int i = 0; i < 20; ++i) {
        auto frame = random_bytes(static_cast<std::size_t>(160 + i), static_cast<unsigned>(i));
        ASSERT_TRUE(w.write(frame));
        all.insert(all.end(), frame.begin(), frame.end());
        // interval 0: every write rewrites the header, so a reader sees everything so far.
        auto r = read_wav(p);
        ASSERT_TRUE(r) << "after write " << i << ": " << r.error().to_string();
        EXPECT_EQ(r->data, all);
    }
    EXPECT_EQ(w.data_bytes(), all.size());
    ASSERT_TRUE(w.close());
    EXPECT_FALSE(w.is_open());
    auto r = read_wav(p);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data, all);
    EXPECT_EQ(file_bytes(p), make_wav(f, all));
}

TEST(WavWriter, BetweenHeaderRewritesTheFileStaysValid) {
    TempDir tmp;
    const auto p = tmp / "grow.wav";
    const AudioFormat f{Encoding::pcm16, 8000, 2};
    WavWriter w;
    ASSERT_TRUE(w.open(p, f, std::chrono::hours(1)));  // no rewrite by time
    std::vector<std::uint8_t> all;
    for (int i = 0; i < 10; ++i) {
        auto frame = random_bytes(640, static_cast<unsigned>(i));
        ASSERT_TRUE(w.write(frame));
        all.insert(all.end(), frame.begin(), frame.end());
        auto r = read_wav(p);
        ASSERT_TRUE(r) << r.error().to_string();
        // The header still says what it said at the last rewrite (open: nothing).
        EXPECT_TRUE(r->data.empty());
    }
    ASSERT_TRUE(w.flush());
    auto r = read_wav(p);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data, all);
    // Moving keeps the file open and the count.
    WavWriter moved = std::move(w);
    EXPECT_FALSE(w.is_open());
    EXPECT_EQ(moved.data_bytes(), all.size());
    ASSERT_TRUE(moved.write(std::vector<std::uint8_t>(4, 1)));
    ASSERT_TRUE(moved.close());
    EXPECT_EQ(read_wav(p)->data.size(), all.size() + 4);
}

TEST(WavWriter, IntervalElapsesThenHeaderIsRewritten) {
    TempDir tmp;
    const auto p = tmp / "grow.wav";
    WavWriter w;
    ASSERT_TRUE(w.open(p, {Encoding::mulaw, 8000, 1}, std::chrono::milliseconds(20)));
    ASSERT_TRUE(w.write(std::vector<std::uint8_t>(160, 0xFF)));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_TRUE(w.write(std::vector<std::uint8_t>(160, 0xFF)));
    auto r = read_wav(p);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data.size(), 320u);  // at least 20 ms passed since the last rewrite
}

TEST(WavWriter, WholeFramesOnlyAndOddSizesGetAPad) {
    TempDir tmp;
    WavWriter w;
    ASSERT_TRUE(w.open(tmp / "s.wav", {Encoding::pcm16, 8000, 2}));
    auto st = w.write(std::vector<std::uint8_t>(6));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "write of 6 bytes is not a whole number of 4-byte sample frames");
    ASSERT_TRUE(w.close());

    WavWriter u;
    ASSERT_TRUE(u.open(tmp / "u.wav", {Encoding::mulaw, 8000, 1}));
    ASSERT_TRUE(u.write(std::vector<std::uint8_t>(3, 0x55)));
    ASSERT_TRUE(u.close());
    const auto b = file_bytes(tmp / "u.wav");
    EXPECT_EQ(b.size(), 58u + 4);
    EXPECT_EQ(get32(b, 4), b.size() - 8);
    EXPECT_EQ(read_wav(tmp / "u.wav")->data, std::vector<std::uint8_t>(3, 0x55));

    WavWriter closed;
    EXPECT_FALSE(closed.write(std::vector<std::uint8_t>(2)));
    EXPECT_TRUE(closed.close());
}

TEST(WavWriter, OverwriteChannelReplacesOneChannelOfWrittenFrames) {
    TempDir tmp;
    // Stereo μ-law: frames 2..4 of the right channel replaced, the left one untouched, and the
    // file still growing at its end afterwards (buffered bytes included).
    WavWriter w;
    const auto p = tmp / "s.wav";
    ASSERT_TRUE(w.open(p, {Encoding::mulaw, 8000, 2}, std::chrono::hours(1)));
    auto all = random_bytes(16, 1);  // 8 frames
    ASSERT_TRUE(w.write(all));
    const std::vector<std::uint8_t> late = {0xA1, 0xA2, 0xA3};
    ASSERT_TRUE(w.overwrite_channel(2, 1, late));
    for (std::size_t i = 0; i < late.size(); ++i) all[2 * (2 + i) + 1] = late[i];
    const auto more = random_bytes(4, 2);
    ASSERT_TRUE(w.write(more));
    all.insert(all.end(), more.begin(), more.end());
    ASSERT_TRUE(w.overwrite_channel(9, 0, std::vector<std::uint8_t>{0x11}));  // the last frame
    all[18] = 0x11;
    EXPECT_EQ(w.data_bytes(), all.size());
    // Only frames already written, whole samples of an existing channel.
    auto st = w.overwrite_channel(9, 0, std::vector<std::uint8_t>{1, 2});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "overwrite of frames 9..11 beyond the 10 written");
    st = w.overwrite_channel(0, 2, std::vector<std::uint8_t>{1});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message,
              "overwrite of 1 bytes in channel 2 does not fit 2 channel(s) of 1-byte samples");
    ASSERT_TRUE(w.close());
    EXPECT_EQ(read_wav(p)->data, all);

    // PCM16 mono: 2-byte samples.
    WavWriter m;
    ASSERT_TRUE(m.open(tmp / "m.wav", {Encoding::pcm16, 8000, 1}));
    ASSERT_TRUE(m.write(std::vector<std::uint8_t>(8, 0)));
    st = m.overwrite_channel(1, 0, std::vector<std::uint8_t>{1, 2, 3});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message,
              "overwrite of 3 bytes in channel 0 does not fit 1 channel(s) of 2-byte samples");
    ASSERT_TRUE(m.overwrite_channel(1, 0, std::vector<std::uint8_t>{1, 2, 3, 4}));
    ASSERT_TRUE(m.close());
    EXPECT_EQ(read_wav(tmp / "m.wav")->data, (std::vector<std::uint8_t>{0, 0, 1, 2, 3, 4, 0, 0}));
    EXPECT_FALSE(WavWriter().overwrite_channel(0, 0, std::vector<std::uint8_t>{1}));
}

// ---- repair ----

TEST(WavRepair, AfterACrashAllWholeFramesComeBackBitExact) {
    for (const AudioFormat f :
         {AudioFormat{Encoding::pcm16, 8000, 2}, AudioFormat{Encoding::mulaw, 8000, 1},
          AudioFormat{Encoding::alaw, 16000, 2}}) {
        TempDir tmp;
        const auto p = tmp / "crash.wav";
        const auto align = static_cast<std::size_t>(f.block_align());
        const auto audio = random_bytes(align * 20001, 3);
        // A real crash: a child process writes, flushes once, writes more and dies without
        // close() (what stdio had buffered is lost, as it would be).
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            WavWriter w;
            if (!w.open(p, f, std::chrono::hours(1))) ::_exit(3);
            if (!w.write(std::span(audio).first(align * 100))) ::_exit(4);
            if (!w.flush()) ::_exit(5);
            if (!w.write(std::span(audio).subspan(align * 100))) ::_exit(6);
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
        const std::size_t hdr = f.encoding == Encoding::pcm16 ? 44 : 58;
        auto b = file_bytes(p);
        ASSERT_GT(b.size(), hdr + align * 100);
        // The header says 100 frames; a reader sees those.
        auto before = read_wav(p);
        ASSERT_TRUE(before) << before.error().to_string();
        EXPECT_EQ(before->data.size(), align * 100);
        // Cut mid-frame (as a crash inside a write would), unless frames are one byte.
        std::size_t present = std::min(b.size() - hdr, audio.size());
        present -= present % align;
        if (align > 1) present -= align / 2;  // then half a frame less
        b.resize(hdr + present);
        put_bytes(p, b);

        auto rep = repair_wav(p);
        ASSERT_TRUE(rep) << rep.error().to_string();
        const std::size_t whole = present / align * align;
        EXPECT_TRUE(rep->changed);
        EXPECT_EQ(rep->data_bytes, whole);
        EXPECT_EQ(rep->dropped_bytes, present - whole);
        auto after = read_wav(p);
        ASSERT_TRUE(after) << after.error().to_string();
        EXPECT_EQ(after->format, f);
        const std::vector<std::uint8_t> expect(audio.begin(),
                                               audio.begin() + static_cast<std::ptrdiff_t>(whole));
        EXPECT_EQ(after->data, expect);
        EXPECT_EQ(file_bytes(p), make_wav(f, expect));  // header, sizes, fact, pad: all as new

        // Repairing a valid file changes nothing.
        auto again = repair_wav(p);
        ASSERT_TRUE(again);
        EXPECT_FALSE(again->changed);
        EXPECT_EQ(again->data_bytes, whole);
        EXPECT_EQ(file_bytes(p), make_wav(f, expect));
    }
}

TEST(WavRepair, DataSizeRunningPastTheEnd) {
    TempDir tmp;
    const auto p = tmp / "cut.wav";
    const AudioFormat f{Encoding::pcm16, 8000, 1};
    const auto audio = random_bytes(200, 9);
    auto b = make_wav(f, audio);
    b.resize(44 + 151);  // cut mid-frame; header still says 200
    put_bytes(p, b);
    auto bad = read_wav(p);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message,
              "data chunk at offset 36: declares 200 bytes but only 151 remain "
              "(the file was cut short; repair_wav fixes that)");
    auto rep = repair_wav(p);
    ASSERT_TRUE(rep) << rep.error().to_string();
    EXPECT_TRUE(rep->changed);
    EXPECT_EQ(rep->data_bytes, 150u);
    EXPECT_EQ(rep->dropped_bytes, 1u);
    auto ok = read_wav(p);
    ASSERT_TRUE(ok) << ok.error().to_string();
    EXPECT_EQ(ok->data, std::vector<std::uint8_t>(audio.begin(), audio.begin() + 150));
}

TEST(WavRepair, EveryCutOfAWriterFileRepairsToItsWholeFrames) {
    TempDir tmp;
    const AudioFormat f{Encoding::pcm16, 8000, 2};
    const auto audio = random_bytes(64, 21);
    const auto full = make_wav(f, audio);
    const auto p = tmp / "x.wav";
    for (std::size_t n = 0; n <= full.size(); ++n) {
        // A writer that died right after open (header says 0 bytes) and got n bytes out.
        auto b = make_wav(f, {});
        if (n > 44)
            b.insert(b.end(), audio.begin(), audio.begin() + static_cast<std::ptrdiff_t>(n - 44));
        b.resize(std::min(b.size(), n));
        put_bytes(p, b);
        auto rep = repair_wav(p);
        if (n < 44) {
            ASSERT_FALSE(rep) << n;  // the header itself is unreadable
            continue;
        }
        ASSERT_TRUE(rep) << n << ": " << rep.error().to_string();
        const std::size_t whole = (n - 44) / 4 * 4;
        EXPECT_EQ(rep->data_bytes, whole);
        EXPECT_EQ(rep->dropped_bytes, n - 44 - whole);
        EXPECT_EQ(rep->changed, whole > 0 || n - 44 > 0);
        auto r = read_wav(p);
        ASSERT_TRUE(r) << r.error().to_string();
        EXPECT_EQ(r->data, std::vector<std::uint8_t>(
                               audio.begin(), audio.begin() + static_cast<std::ptrdiff_t>(whole)));
    }
}

TEST(WavRepair, KeepsTrailingChunksAndFixesAStaleRiffSize) {
    TempDir tmp;
    const auto p = tmp / "list.wav";
    auto b = make_wav({Encoding::pcm16, 8000, 1}, random_bytes(20, 4));
    const std::string_view list = "LIST\x04\x00\x00\x00INFO"sv;
    b.insert(b.end(), list.begin(), list.end());
    set32(b, 4, 36);  // stale
    put_bytes(p, b);
    auto rep = repair_wav(p);
    ASSERT_TRUE(rep) << rep.error().to_string();
    EXPECT_TRUE(rep->changed);
    EXPECT_EQ(rep->data_bytes, 20u);
    EXPECT_EQ(rep->dropped_bytes, 0u);
    const auto after = file_bytes(p);
    EXPECT_EQ(after.size(), b.size());
    EXPECT_EQ(get32(after, 4), b.size() - 8);

    put_bytes(p, {'I', 'D', '3', 3});
    auto bad = repair_wav(p);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message,
              "not a WAV file: expected \"RIFF\" at offset 0, found \"ID3\\x03\"");
}

TEST(WavRepair, HeaderBeyondTheFirst64KiBAndMissingFiles) {
    TempDir tmp;
    const auto p = tmp / "biglist.wav";
    const AudioFormat f{Encoding::mulaw, 8000, 1};
    const auto audio = random_bytes(1001, 8);
    // fmt + fact, a 100 KB LIST chunk, then the data chunk (header saying 0 bytes) + audio.
    auto b = make_wav(f, {});
    std::vector<std::uint8_t> list = {'L', 'I', 'S', 'T'};
    list.resize(8 + 100000, 'x');
    set32(list, 4, 100000);
    b.insert(b.begin() + 50, list.begin(), list.end());
    b.insert(b.end(), audio.begin(), audio.end());
    put_bytes(p, b);
    auto rep = repair_wav(p);
    ASSERT_TRUE(rep) << rep.error().to_string();
    EXPECT_TRUE(rep->changed);
    EXPECT_EQ(rep->data_bytes, audio.size());
    auto r = read_wav(p);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->data, audio);
    const auto after = file_bytes(p);
    EXPECT_EQ(after.size(), b.size() + 1);  // pad byte after the odd data
    EXPECT_EQ(get32(after, 4), after.size() - 8);
    EXPECT_EQ(get32(after, 46), 1001u);  // fact: frames

    auto missing = repair_wav(tmp / "missing.wav");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "cannot open for repair: No such file or directory");
}

TEST(WavRepair, RandomDamageEitherErrorsOrLeavesAReadableFile) {
    // Property: after repair_wav succeeds, read_wav succeeds. Damage: random cuts and random
    // bytes in the first 80 (header and chunk headers), on files with and without a LIST chunk.
    TempDir tmp;
    const auto p = tmp / "d.wav";
    std::mt19937 rng(12345);
    int repaired = 0, refused = 0;
    for (int iter = 0; iter < 600; ++iter) {
        const AudioFormat f{iter % 3 == 0 ? Encoding::pcm16 : Encoding::mulaw, 8000, 1 + iter % 2};
        auto b = make_wav(f, random_bytes(static_cast<std::size_t>(f.block_align()) * 50,
                                          static_cast<unsigned>(iter)));
        if (iter % 4 == 0) {
            const std::string_view list = "LIST\x02\x00\x00\x00ab"sv;
            b.insert(b.end(), list.begin(), list.end());
        }
        const int hits = static_cast<int>(rng() % 4);
        for (int h = 0; h < hits; ++h)
            b[rng() % std::min<std::size_t>(80, b.size())] = static_cast<std::uint8_t>(rng());
        if (rng() % 2) b.resize(rng() % (b.size() + 1));
        put_bytes(p, b);
        auto rep = repair_wav(p);
        if (!rep) {
            ++refused;
            EXPECT_EQ(rep.error().file, p.string());
            continue;
        }
        ++repaired;
        auto r = read_wav(p);
        ASSERT_TRUE(r) << "iteration " << iter
                       << ": repaired but unreadable: " << r.error().to_string();
        EXPECT_EQ(r->data.size(), rep->data_bytes) << iter;
    }
    EXPECT_GT(repaired, 50);
    EXPECT_GT(refused, 50);
}
