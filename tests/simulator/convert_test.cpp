#include "simulator/commands.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/g711.hpp"
#include "core/wav.hpp"

namespace fs = std::filesystem;
using namespace mediasim;
using core::AudioFormat;
using core::Encoding;

namespace {

struct TempDir {
    fs::path dir;
    TempDir() {
        std::random_device rd;
        dir = fs::temp_directory_path() /
              ("mediasim-convert-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

std::vector<std::uint8_t> file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put_bytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<std::uint8_t> le_bytes(const std::vector<std::int16_t>& s) {
    std::vector<std::uint8_t> b(s.size() * 2);
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto u = static_cast<std::uint16_t>(s[i]);
        b[2 * i] = static_cast<std::uint8_t>(u & 0xFF);
        b[2 * i + 1] = static_cast<std::uint8_t>(u >> 8);
    }
    return b;
}

struct Run {
    int code = -1;
    std::string out, err;
};

// Runs cmd_convert in this process with stdout and stderr captured.
Run convert(std::vector<std::string> args) {
    TempDir tmp;
    const std::string out_path = tmp / "stdout", err_path = tmp / "stderr";
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::fflush(stdout);
    std::fflush(stderr);
    const int saved_out = ::dup(1), saved_err = ::dup(2);
    const int fo = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int fe = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    Run r;
    r.code = sim::cmd_convert(argv);
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    for (int fd : {fo, fe, saved_out, saved_err}) ::close(fd);
    auto text = [](const std::string& p) {
        auto b = file_bytes(p);
        return std::string(b.begin(), b.end());
    };
    r.out = text(out_path);
    r.err = text(err_path);
    return r;
}

std::vector<std::int16_t> every_int16();

// What CPython's audioop (the oracle the issue names) gives for every int16 value and for all
// 256 codes, computed once by one python3 run. Empty when python3 with audioop is missing.
struct Oracle {
    std::vector<std::uint8_t> lin2ulaw, lin2alaw, ulaw2lin, alaw2lin;
};
const Oracle& audioop() {
    static const Oracle o = [] {
        Oracle r;
        TempDir tmp;
        const std::string cmd =
            "python3 -W ignore -c 'import audioop,sys,os\n"
            "d=sys.argv[1]\n"
            "lin=b\"\".join(i.to_bytes(2,\"little\",signed=True) for i in range(-32768,32768))\n"
            "codes=bytes(range(256))\n"
            "for n,v in "
            "((\"lin2ulaw\",audioop.lin2ulaw(lin,2)),(\"lin2alaw\",audioop.lin2alaw(lin,2)),"
            "(\"ulaw2lin\",audioop.ulaw2lin(codes,2)),(\"alaw2lin\",audioop.alaw2lin(codes,2))):\n"
            " open(os.path.join(d,n),\"wb\").write(v)' " +
            tmp.dir.string() + " >/dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0) return r;
        r.lin2ulaw = file_bytes(tmp / "lin2ulaw");
        r.lin2alaw = file_bytes(tmp / "lin2alaw");
        r.ulaw2lin = file_bytes(tmp / "ulaw2lin");
        r.alaw2lin = file_bytes(tmp / "alaw2lin");
        return r;
    }();
    return o;
}
bool have_audioop() {
    return !audioop().lin2ulaw.empty();
}

std::vector<std::int16_t> every_int16() {
    std::vector<std::int16_t> s(65536);
    for (int i = 0; i < 65536; ++i)
        s[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(i - 32768);
    return s;
}

}  // namespace

// The done criterion: a WAV holding every int16 value gives audioop.lin2ulaw's bytes,
// and all 256 codes come back as audioop.ulaw2lin's samples.
TEST(Convert, EveryInt16ToMulawMatchesAudioop) {
    if (!have_audioop()) GTEST_SKIP() << "python3 with audioop is not available (the oracle)";
    TempDir tmp;
    const auto pcm = le_bytes(every_int16());
    ASSERT_TRUE(core::write_wav(tmp / "all.wav", {Encoding::pcm16, 8000, 1}, pcm));
    auto r = convert({tmp / "all.wav", tmp / "all-u.wav"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    auto u = core::read_wav(tmp / "all-u.wav");
    ASSERT_TRUE(u) << u.error().to_string();
    EXPECT_EQ(u->format, (AudioFormat{Encoding::mulaw, 8000, 1}));
    const auto& oracle = audioop().lin2ulaw;
    ASSERT_EQ(oracle.size(), 65536u);
    EXPECT_TRUE(u->data == oracle) << "mu-law bytes differ from audioop.lin2ulaw";
    for (std::size_t i = 0; i < oracle.size(); ++i)
        ASSERT_EQ(u->data[i], oracle[i]) << "sample " << static_cast<int>(i) - 32768;

    // A-law too.
    r = convert({tmp / "all.wav", tmp / "all-a.wav", "--encoding", "alaw"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto a = core::read_wav(tmp / "all-a.wav");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->format, (AudioFormat{Encoding::alaw, 8000, 1}));
    EXPECT_TRUE(a->data == audioop().lin2alaw) << "A-law bytes differ from audioop.lin2alaw";
}

TEST(Convert, Every256CodesBackToPcm16MatchesAudioop) {
    if (!have_audioop()) GTEST_SKIP() << "python3 with audioop is not available (the oracle)";
    TempDir tmp;
    std::vector<std::uint8_t> codes(256);
    for (int i = 0; i < 256; ++i) codes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    for (auto [enc, fn] :
         {std::pair{Encoding::mulaw, "ulaw2lin"}, std::pair{Encoding::alaw, "alaw2lin"}}) {
        ASSERT_TRUE(core::write_wav(tmp / "codes.wav", {enc, 8000, 1}, codes));
        auto r = convert({tmp / "codes.wav", tmp / "lin.wav", "--encoding", "pcm16"});
        ASSERT_EQ(r.code, 0) << r.err;
        auto w = core::read_wav(tmp / "lin.wav");
        ASSERT_TRUE(w);
        EXPECT_EQ(w->format, (AudioFormat{Encoding::pcm16, 8000, 1}));
        const auto& oracle = enc == Encoding::mulaw ? audioop().ulaw2lin : audioop().alaw2lin;
        ASSERT_EQ(oracle.size(), 512u);
        EXPECT_TRUE(w->data == oracle) << "PCM16 differs from audioop." << fn;

        // --raw: the same samples without a header.
        r = convert({tmp / "codes.wav", tmp / "lin.raw", "--encoding=pcm16", "--raw"});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_EQ(file_bytes(tmp / "lin.raw"), oracle);
    }
}

TEST(Convert, MulawPassesThroughUntouched) {
    TempDir tmp;
    std::vector<std::uint8_t> codes(256);
    for (int i = 0; i < 256; ++i) codes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    ASSERT_TRUE(core::write_wav(tmp / "u.wav", {Encoding::mulaw, 8000, 1}, codes));
    auto r = convert({tmp / "u.wav", tmp / "v.wav"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(core::read_wav(tmp / "v.wav")->data, codes);  // 0x7F included
}

TEST(Convert, StereoAnyRateBecomesTwilioFormat) {
    TempDir tmp;
    // 0.5 s of a 440 Hz tone at 22050 Hz stereo (left = right).
    const int rate = 22050;
    std::vector<std::int16_t> s(static_cast<std::size_t>(rate));
    for (std::size_t i = 0; i < s.size() / 2; ++i) {
        const auto v = static_cast<std::int16_t>(
            std::lround(12000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / rate)));
        s[2 * i] = v;
        s[2 * i + 1] = v;
    }
    ASSERT_TRUE(core::write_wav(tmp / "st.wav", {Encoding::pcm16, rate, 2}, le_bytes(s)));
    auto r = convert({tmp / "st.wav", tmp / "tw.wav"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, tmp / "st.wav" + " (pcm16, 22050 Hz, stereo, 0.50 s) -> " + tmp / "tw.wav" +
                         " (mulaw, 8000 Hz, mono, 0.50 s)\n");
    auto w = core::read_wav(tmp / "tw.wav");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->format, (AudioFormat{Encoding::mulaw, 8000, 1}));
    ASSERT_EQ(w->data.size(), 4000u);
    // The tone survives: compare with an ideal 440 Hz at 8 kHz (in phase, delay removed).
    double err = 0;
    for (std::size_t i = 500; i < 3500; ++i)
        err = std::max(err,
                       std::abs(core::ulaw_to_linear(w->data[i]) -
                                12000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / 8000)));
    EXPECT_LT(err, 300);  // mu-law steps are 512 near 12000

    // --rate 16000 --encoding pcm16 from the same input.
    r = convert({tmp / "st.wav", tmp / "w16.wav", "--rate", "16000", "--encoding", "pcm16"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto w16 = core::read_wav(tmp / "w16.wav");
    ASSERT_TRUE(w16);
    EXPECT_EQ(w16->format, (AudioFormat{Encoding::pcm16, 16000, 1}));
    EXPECT_EQ(w16->data.size(), 16000u);
}

TEST(Convert, SameRateDoesNotResample) {
    TempDir tmp;
    std::vector<std::int16_t> s(1000);
    std::mt19937 rng(1);
    for (auto& x : s) x = static_cast<std::int16_t>(rng());
    // Stereo 16 kHz with left = right, to 16 kHz mono PCM16: exactly the left channel.
    std::vector<std::int16_t> st;
    for (auto x : s) {
        st.push_back(x);
        st.push_back(x);
    }
    ASSERT_TRUE(core::write_wav(tmp / "in.wav", {Encoding::pcm16, 16000, 2}, le_bytes(st)));
    auto r = convert(
        {tmp / "in.wav", tmp / "out.raw", "--rate", "16000", "--encoding", "pcm16", "--raw"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(file_bytes(tmp / "out.raw"), le_bytes(s));
    EXPECT_EQ(r.out, tmp / "in.wav" + " (pcm16, 16000 Hz, stereo, 0.06 s) -> " + tmp / "out.raw" +
                         " (raw pcm16, 16000 Hz, mono, 0.06 s)\n");
}

TEST(Convert, HelpGoesToStdout) {
    auto r = convert({"--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.rfind("usage: mediasim convert", 0), 0u) << r.out;
    EXPECT_EQ(r.err, "");
}

TEST(Convert, BadInputIsOneLineAndExitTwo) {
    TempDir tmp;
    ASSERT_TRUE(core::write_wav(tmp / "ok.wav", {Encoding::pcm16, 8000, 1},
                                std::vector<std::uint8_t>(320, 0)));
    put_bytes(tmp / "id3.wav", {'I', 'D', '3', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    // A file cut short: the header claims 320 bytes, 100 are there.
    auto cut = file_bytes(tmp / "ok.wav");
    cut.resize(44 + 100);
    put_bytes(tmp / "cut.wav", cut);
    // 8-bit PCM.
    auto u8 = file_bytes(tmp / "ok.wav");
    u8[32] = 1;     // block align
    u8[34] = 8;     // bits
    u8[28] = 0x40;  // byte rate 8000 = 0x1F40
    u8[29] = 0x1F;
    put_bytes(tmp / "u8.wav", u8);

    const std::string ok = tmp / "ok.wav", out = tmp / "out.wav";
    struct Case {
        std::vector<std::string> args;
        std::string err;
    };
    const std::vector<Case> cases = {
        {{tmp / "missing.wav", out},
         tmp / "missing.wav" + ": cannot open: No such file or directory"},
        {{tmp / "id3.wav", out},
         tmp / "id3.wav" + ": not a WAV file: expected \"RIFF\" at offset 0, found \"ID3\\x03\""},
        {{tmp / "cut.wav", out},
         tmp / "cut.wav" + ": data chunk at offset 36: declares 320 bytes but only 100 remain (the "
                           "file was cut short; repair_wav fixes that)"},
        {{tmp / "u8.wav", out},
         tmp / "u8.wav" + ": fmt chunk at offset 12: 8-bit PCM is not supported (supported: "
                          "16-bit PCM, 8-bit mu-law and A-law)"},
        {{ok, out, "--encoding", "flac"},
         "--encoding: unknown encoding \"flac\" (expected mulaw, alaw or pcm16)"},
        {{ok, out, "--rate", "fast"},
         "--rate: \"fast\" is not a whole number (example: --rate HZ)"},
        {{ok, out, "--rate", "0"}, "--rate: 0 is below the minimum of 1"},
        {{ok, out, "--rate", "5000000"}, "--rate: 5000000 is above the maximum of 1000000"},
        {{ok, out, "--loud"}, "--loud: unknown option (see 'mediasim convert --help')"},
        {{ok}, "missing argument OUT (see 'mediasim convert --help')"},
        {{ok, out, "extra"}, "unexpected argument \"extra\" (see 'mediasim convert --help')"},
        {{ok, tmp / "no/dir.wav"},
         tmp / "no/dir.wav" + ": cannot create: No such file or directory"},
        {{ok, tmp / "no/dir.raw", "--raw"},
         tmp / "no/dir.raw" + ": cannot create: No such file or directory"},
    };
    for (const auto& c : cases) {
        auto r = convert(c.args);
        EXPECT_EQ(r.code, 2) << c.err;
        EXPECT_EQ(r.err, "mediasim convert: " + c.err + "\n");
        EXPECT_EQ(r.out, "");
    }
    EXPECT_FALSE(fs::exists(out));
}

// The built binary dispatches to the same command (when the test runs under ctest).
TEST(Convert, BinaryExitsTwoOnBadInput) {
    const char* bin_dir = std::getenv("MEDIASIM_BIN_DIR");
    if (!bin_dir || !fs::exists(fs::path(bin_dir) / "mediasim"))
        GTEST_SKIP() << "MEDIASIM_BIN_DIR/mediasim not built";
    TempDir tmp;
    const std::string cmd = (fs::path(bin_dir) / "mediasim").string() + " convert " +
                            (tmp / "nope.wav") + " " + (tmp / "out.wav") + " 2>" + (tmp / "err");
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 2);
    auto e = file_bytes(tmp / "err");
    EXPECT_EQ(std::string(e.begin(), e.end()), "mediasim convert: " + tmp / "nope.wav" +
                                                   ": cannot open: No such file or directory\n");
}

// The sample the shipped scenarios play (scenarios/audio/README.md says how it was made).
TEST(Convert, ShippedSampleIsTwilioFormat) {
    const fs::path p = fs::path(MEDIASIM_SOURCE_DIR) / "scenarios" / "audio" / "hello.wav";
    auto w = core::read_wav(p);
    ASSERT_TRUE(w) << w.error().to_string();
    EXPECT_EQ(w->format, (AudioFormat{Encoding::mulaw, 8000, 1}));
    EXPECT_GE(w->data.size(), 8000u);   // at least 1 s
    EXPECT_LE(w->data.size(), 16000u);  // at most 2 s
    EXPECT_LT(fs::file_size(p), 20000u);
    // Speech, not silence: a good part of the frames carry sound above -40 dBFS.
    std::size_t loud = 0;
    for (std::size_t i = 0; i + 160 <= w->data.size(); i += 160) {
        double e = 0;
        for (std::size_t k = i; k < i + 160; ++k) {
            const double x = core::ulaw_to_linear(w->data[k]);
            e += x * x;
        }
        if (std::sqrt(e / 160) > 327.68) ++loud;
    }
    EXPECT_GT(loud, w->data.size() / 160 / 3);
}
