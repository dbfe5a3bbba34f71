#include "core/histogram.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

// Oracle: hdr-histogram-js 3.0.1 (a port of Gil Tene's Java HdrHistogram, independent of this
// code). tests/core/data/hdr_vectors.json holds its layouts, encodings, percentiles and
// percentile distributions for deterministic value lists; hdr_vectors.mjs says how it was made.
// The reverse direction (hdr-histogram-js decodes our strings and reads our logs) is the e2e
// test core_histogram_hdr_js, fed by HdrJs.WritesOurEncodingsForTheJsCheck below.

using mediasim::core::Histogram;
using mediasim::core::HistogramLogWriter;
using mediasim::core::read_histogram_log;
using ::testing::HasSubstr;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kHour = 3'600'000'000LL;

json load_vectors() {
    std::ifstream in(std::string(MEDIASIM_SOURCE_DIR) + "/tests/core/data/hdr_vectors.json");
    EXPECT_TRUE(in) << "missing tests/core/data/hdr_vectors.json";
    return json::parse(in);
}

// The same generator as hdr_vectors.mjs (xorshift32).
struct XorShift32 {
    std::uint32_t x;
    std::uint32_t next() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x;
    }
};

std::vector<std::int64_t> make_values(const json& spec) {
    XorShift32 g{spec.at("seed").get<std::uint32_t>()};
    const int n = spec.at("n").get<int>();
    const std::string kind = spec.at("kind").get<std::string>();
    std::vector<std::int64_t> out;
    for (int i = 0; i < n; ++i) {
        const std::uint32_t r1 = g.next();
        if (kind == "wide") {
            const std::uint32_t r2 = g.next();
            out.push_back(
                std::min<std::int64_t>(r1 >> (r2 % 28), spec.at("cap").get<std::int64_t>()));
        } else {
            out.push_back(r1 % spec.at("modulus").get<std::uint32_t>());
        }
    }
    return out;
}

Histogram layout_of(const json& v) {
    return Histogram(v.at("lowest").get<std::int64_t>(), v.at("highest").get<std::int64_t>(),
                     v.at("digits").get<int>());
}

Histogram record_vector(const json& v) {
    Histogram h = layout_of(v);
    for (auto x : make_values(v.at("values"))) h.record(x);
    if (v.contains("extra")) {
        for (const auto& e : v.at("extra"))
            h.record(e[0].get<std::int64_t>(), e[1].get<std::int64_t>());
    }
    return h;
}

// HdrHistogram's highestEquivalentValue, from the public layout.
std::int64_t highest_equivalent(const Histogram& h, std::int64_t v) {
    return h.value_from_index(h.index_for(v) + 1) - 1;
}

// --- helpers to build encodings by hand (for the malformed cases) --------------------------------

void put32(std::string& s, std::uint32_t v) {
    for (int i = 24; i >= 0; i -= 8) s.push_back(static_cast<char>(v >> i));
}
void put64(std::string& s, std::uint64_t v) {
    for (int i = 56; i >= 0; i -= 8) s.push_back(static_cast<char>(v >> i));
}

std::string b64(const std::string& in) {
    static const char* A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const std::uint32_t n = (std::uint32_t{static_cast<std::uint8_t>(in[i])} << 16) |
                                (std::uint32_t{static_cast<std::uint8_t>(in[i + 1])} << 8) |
                                static_cast<std::uint8_t>(in[i + 2]);
        for (int k = 18; k >= 0; k -= 6) out.push_back(A[(n >> k) & 63]);
    }
    if (i < in.size()) {
        std::uint32_t n = std::uint32_t{static_cast<std::uint8_t>(in[i])} << 16;
        if (i + 1 < in.size()) n |= std::uint32_t{static_cast<std::uint8_t>(in[i + 1])} << 8;
        out.push_back(A[(n >> 18) & 63]);
        out.push_back(A[(n >> 12) & 63]);
        out.push_back(i + 1 < in.size() ? A[(n >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::string zlib(const std::string& in) {
    uLongf n = compressBound(static_cast<uLong>(in.size()));
    std::string out(n, '\0');
    compress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(in.data()),
             static_cast<uLong>(in.size()));
    out.resize(n);
    return out;
}

// A V2 payload (uncompressed) with the given header fields and raw counts bytes.
std::string v2_raw(std::uint32_t cookie, std::int32_t digits, std::int64_t lowest,
                   std::int64_t highest, const std::string& counts, std::int64_t payload_len = -1) {
    std::string s;
    put32(s, cookie);
    put32(s, static_cast<std::uint32_t>(payload_len < 0 ? static_cast<std::int64_t>(counts.size())
                                                        : payload_len));
    put32(s, 0);
    put32(s, static_cast<std::uint32_t>(digits));
    put64(s, static_cast<std::uint64_t>(lowest));
    put64(s, static_cast<std::uint64_t>(highest));
    put64(s, 0x3ff0000000000000ULL);
    return s + counts;
}

std::string wrap(const std::string& raw, std::uint32_t cookie = 0x1c849314) {
    const std::string z = zlib(raw);
    std::string s;
    put32(s, cookie);
    put32(s, static_cast<std::uint32_t>(z.size()));
    return b64(s + z);
}

std::string zigzag(std::int64_t v) {
    std::uint64_t u = (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
    std::string s;
    for (int i = 0; i < 8 && u >= 0x80; ++i) {
        s.push_back(static_cast<char>((u & 0x7f) | 0x80));
        u >>= 7;
    }
    s.push_back(static_cast<char>(u));
    return s;
}

std::string decode_error(std::string_view text) {
    auto r = Histogram::decode_compressed_base64(text);
    EXPECT_FALSE(r.ok()) << "decoded unexpectedly: " << text;
    return r.ok() ? std::string() : r.error().to_string();
}

}  // namespace

// --- Layout
// ---------------------------------------------------------------------------------------

TEST(HistogramLayout, KnownHdrHistogramSizes) {
    // Known HdrHistogram layouts: 1 µs..1 h at 3 digits has 2048 sub-buckets and 22 buckets,
    // (22 + 1) * 1024 = 23552 counts; 1..1e6 at 2 digits: 256 sub-buckets, 13 buckets, 1792.
    EXPECT_EQ(Histogram(1, kHour, 3).counts_length(), 23552u);
    EXPECT_EQ(Histogram(1, 1'000'000, 2).counts_length(), 1792u);
    EXPECT_EQ(Histogram(1, 2, 0).counts_length(), 3u);  // 2 sub-buckets, 2 buckets: (2 + 1) * 1
    EXPECT_EQ(Histogram(1000, 1'000'000'000, 3).counts_length(), 12288u);

    Histogram h(1, kHour, 3);
    // Bucket 0 resolves every value below 2048; each later bucket doubles the width.
    EXPECT_EQ(h.index_for(0), 0u);
    EXPECT_EQ(h.index_for(2047), 2047u);
    EXPECT_EQ(h.index_for(2048), 2048u);
    EXPECT_EQ(h.index_for(2049), 2048u);  // width 2 from 2048
    EXPECT_EQ(h.index_for(4095), 3071u);
    EXPECT_EQ(h.value_from_index(3071), 4094);
    EXPECT_EQ(h.index_for(4096), 3072u);
    EXPECT_EQ(h.value_from_index(3072), 4096);
    EXPECT_EQ(h.index_for(kHour), 23220u);
    EXPECT_EQ(h.value_from_index(23220), 3'598'712'832LL);
    for (std::size_t i = 0; i < h.counts_length(); ++i) {
        ASSERT_EQ(h.index_for(h.value_from_index(i)), i) << "index " << i;
    }
}

TEST(HistogramLayout, MatchesHdrHistogramJsAtBucketEdges) {
    const json vectors = load_vectors();
    for (const auto& v : vectors.at("vectors")) {
        SCOPED_TRACE(v.at("name").get<std::string>());
        const Histogram h = layout_of(v);
        const auto& l = v.at("layout");
        EXPECT_EQ(h.counts_length(), l.at("counts_length").get<std::size_t>());
        for (const auto& p : l.at("probes")) {
            const auto value = p[0].get<std::int64_t>();
            const auto index = p[1].get<std::size_t>();
            ASSERT_EQ(h.index_for(value), index) << "value " << value;
            ASSERT_EQ(h.value_from_index(index), p[2].get<std::int64_t>()) << "index " << index;
            ASSERT_EQ(h.value_from_index(h.index_for(value)), p[3].get<std::int64_t>());
            ASSERT_EQ(highest_equivalent(h, value), p[4].get<std::int64_t>()) << "value " << value;
        }
    }
}

TEST(HistogramLayout, RejectsBadParameters) {
    EXPECT_THROW(Histogram(0, 100, 3), std::invalid_argument);
    EXPECT_THROW(Histogram(10, 19, 3), std::invalid_argument);
    EXPECT_THROW(Histogram(1, 100, 6), std::invalid_argument);
    EXPECT_THROW(Histogram(1, 100, -1), std::invalid_argument);
    EXPECT_THROW(Histogram(std::int64_t{1} << 50, INT64_MAX, 5), std::invalid_argument);
}

// --- Recording and statistics
// ---------------------------------------------------------------------

TEST(Histogram, PercentilesOfOneToTenThousand) {
    Histogram h;
    for (int v = 1; v <= 10000; ++v) h.record(v);
    EXPECT_EQ(h.total_count(), 10000);
    EXPECT_EQ(h.min(), 1);
    EXPECT_EQ(h.max(), 10007);  // 10000 sits in [10000, 10007] (width 8 above 8192)
    EXPECT_EQ(h.value_at_percentile(0), 1);
    EXPECT_EQ(h.value_at_percentile(10), 1000);  // unit resolution below 2048
    EXPECT_EQ(h.value_at_percentile(50), 5003);  // [5000, 5003]
    EXPECT_EQ(h.value_at_percentile(99), 9903);  // [9896, 9903]
    EXPECT_EQ(h.value_at_percentile(100), 10007);
    EXPECT_EQ(h.value_at_percentile(150), 10007);
    EXPECT_EQ(h.value_at_percentile(-5), 1);
    EXPECT_NEAR(h.mean(), 5000.5, 1.0);
    EXPECT_NEAR(h.stddev(), 2886.75, 1.0);
    EXPECT_EQ(h.count_at_value(5001), 4);
}

TEST(Histogram, UnitResolutionDistributionIsExact) {
    Histogram h(1, 1'000'000, 3);
    for (int v = 0; v < 2000; ++v) h.record(v, 2);
    EXPECT_EQ(h.total_count(), 4000);
    EXPECT_EQ(h.min(), 0);
    EXPECT_EQ(h.max(), 1999);
    EXPECT_EQ(h.value_at_percentile(50), 999);
    EXPECT_EQ(h.value_at_percentile(25), 499);
    EXPECT_EQ(h.value_at_percentile(99.9), 1997);  // count 3996 reached at 1997
    EXPECT_DOUBLE_EQ(h.mean(), 999.5);
}

TEST(Histogram, EmptyHistogram) {
    Histogram h;
    EXPECT_EQ(h.total_count(), 0);
    EXPECT_EQ(h.min(), 0);
    EXPECT_EQ(h.max(), 0);
    EXPECT_EQ(h.mean(), 0.0);
    EXPECT_EQ(h.stddev(), 0.0);
    EXPECT_EQ(h.value_at_percentile(99), 0);
    EXPECT_TRUE(h.percentile_distribution().empty());
}

TEST(Histogram, ClampsAndCountsSaturation) {
    Histogram h(1, 1'000'000, 2);
    h.record(-5);
    h.record(5'000'000);
    h.record(1'000'000);
    h.record(INT64_MAX, 3);
    EXPECT_EQ(h.total_count(), 6);
    EXPECT_EQ(h.saturated(), 4);
    EXPECT_EQ(h.count_at_value(0), 1);
    EXPECT_EQ(h.min(), 0);
    EXPECT_EQ(h.count_at_value(1'000'000), 5);
    EXPECT_EQ(h.max(), highest_equivalent(h, 1'000'000));
    EXPECT_EQ(h.value_at_percentile(100), highest_equivalent(h, 1'000'000));
    h.record(7, 0);
    h.record(7, -3);
    EXPECT_EQ(h.total_count(), 6);
}

// Java's recordValueWithExpectedInterval, one sample at a time, with our clamp.
Histogram naive_corrected(Histogram h, std::int64_t value, std::int64_t interval) {
    h.record(value);
    if (interval <= 0) return h;
    for (std::int64_t m = value - interval; m >= interval; m -= interval) h.record(m);
    return h;
}

TEST(Histogram, RecordCorrectedBackFillsMissedSamples) {
    Histogram h;
    h.record_corrected(10000, 1000);  // 10000, 9000, ..., 1000
    EXPECT_EQ(h.total_count(), 10);
    EXPECT_EQ(h.min(), 1000);
    EXPECT_EQ(h.count_at_value(5000), 1);
    EXPECT_EQ(h.count_at_value(500), 0);
    h.record_corrected(900, 1000);  // below the interval: just the value
    EXPECT_EQ(h.total_count(), 11);
    h.record_corrected(5000, 0);  // no interval: just the value
    EXPECT_EQ(h.total_count(), 12);

    // Many missed samples, counted per bucket: the same as one at a time.
    const Histogram empty;
    for (auto [value, interval] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1'000'000, 3}, {2'000'000, 7}, {123'456, 1}, {3000, 1000}, {1000, 1000}}) {
        Histogram fast;
        fast.record_corrected(value, interval);
        EXPECT_EQ(fast, naive_corrected(empty, value, interval)) << value << "/" << interval;
        EXPECT_EQ(fast.max(), naive_corrected(empty, value, interval).max());
        EXPECT_EQ(fast.min(), naive_corrected(empty, value, interval).min());
    }
    // Above the highest trackable value, missed samples saturate like the value itself.
    Histogram small(1, 1'000'000, 2);
    small.record_corrected(5'000'000, 1000);
    const Histogram want = naive_corrected(Histogram(1, 1'000'000, 2), 5'000'000, 1000);
    EXPECT_EQ(small, want);
    EXPECT_EQ(small.saturated(), want.saturated());
    EXPECT_EQ(small.saturated(), 4000);  // 5,000,000 down to 1,001,000
    EXPECT_EQ(small.total_count(), 5000);
}

TEST(Histogram, AddEqualsRecordingEverything) {
    const json vectors = load_vectors();
    const auto& v = vectors.at("vectors").at(0);
    const auto values = make_values(v.at("values"));
    Histogram all = layout_of(v), a = layout_of(v), b = layout_of(v);
    for (std::size_t i = 0; i < values.size(); ++i) {
        all.record(values[i]);
        (i % 3 == 0 ? a : b).record(values[i]);
    }
    a.add(b);
    EXPECT_EQ(a, all);
    EXPECT_EQ(a.total_count(), all.total_count());
    EXPECT_EQ(a.min(), all.min());
    EXPECT_EQ(a.max(), all.max());
    EXPECT_EQ(a.value_at_percentile(99.9), all.value_at_percentile(99.9));
    EXPECT_EQ(a.saturated(), all.saturated());

    // Into an empty histogram, and an empty one into a full one.
    Histogram empty = layout_of(v);
    empty.add(all);
    EXPECT_EQ(empty, all);
    all.add(layout_of(v));
    EXPECT_EQ(empty, all);

    // Different layouts: each bucket's value is recorded again in the coarser layout.
    Histogram coarse(1, 1'000'000, 2);
    Histogram want(1, 1'000'000, 2);
    for (std::size_t i = 0; i < all.counts_length(); ++i) {
        if (all.count_at_index(i) > 0) want.record(all.value_from_index(i), all.count_at_index(i));
    }
    coarse.add(all);
    EXPECT_EQ(coarse, want);
    EXPECT_EQ(coarse.total_count(), all.total_count());
    EXPECT_EQ(coarse.saturated(), want.saturated());
    EXPECT_GT(coarse.saturated(), 0);
}

TEST(Histogram, ResetEmptiesIt) {
    Histogram h;
    h.record(5);
    h.record(kHour * 2);
    h.reset();
    EXPECT_EQ(h, Histogram());
    EXPECT_EQ(h.total_count(), 0);
    EXPECT_EQ(h.saturated(), 0);
    EXPECT_EQ(h.max(), 0);
}

TEST(Histogram, EqualityNeedsTheSameLayout) {
    Histogram a(1, kHour, 3), b(1, kHour, 2);
    EXPECT_FALSE(a == b);
    EXPECT_FALSE(Histogram(1, kHour, 3) == Histogram(1, kHour - 1, 3));
    a.record(7);
    EXPECT_FALSE(a == Histogram());
}

// --- Against hdr-histogram-js
// ------------------------------------------------------------------------

TEST(HdrJs, DecodesItsStringsToTheSameCountsAndPercentiles) {
    const json vectors = load_vectors();
    ASSERT_GE(vectors.at("vectors").size(), 8u);
    for (const auto& v : vectors.at("vectors")) {
        SCOPED_TRACE(v.at("name").get<std::string>());
        auto decoded = Histogram::decode_compressed_base64(v.at("encoded").get<std::string>());
        ASSERT_TRUE(decoded) << decoded.error().to_string();
        const Histogram& h = *decoded;
        const Histogram recorded = record_vector(v);
        EXPECT_EQ(h, recorded);
        EXPECT_EQ(h.total_count(), v.at("total").get<std::int64_t>());
        EXPECT_EQ(h.lowest_discernible(), v.at("lowest").get<std::int64_t>());
        EXPECT_EQ(h.highest_trackable(), v.at("highest").get<std::int64_t>());
        EXPECT_EQ(h.significant_digits(), v.at("digits").get<int>());

        std::int64_t nonzero = 0, digest = 0;
        for (std::size_t i = 0; i < h.counts_length(); ++i) {
            const std::int64_t c = h.count_at_index(i);
            if (c == 0) continue;
            ++nonzero;
            digest = (digest + static_cast<std::int64_t>(i + 1) * (c % 1000003)) % 1000000007;
        }
        EXPECT_EQ(nonzero, v.at("nonzero_counts").get<std::int64_t>());
        EXPECT_EQ(digest, v.at("counts_digest").get<std::int64_t>());

        for (const auto& p : v.at("percentiles")) {
            const double pct = p[0].get<double>();
            EXPECT_EQ(h.value_at_percentile(pct), p[1].get<std::int64_t>()) << "p" << pct;
            EXPECT_EQ(recorded.value_at_percentile(pct), p[1].get<std::int64_t>()) << "p" << pct;
        }
        EXPECT_DOUBLE_EQ(h.mean(), v.at("mean").get<double>());
        EXPECT_DOUBLE_EQ(h.stddev(), v.at("stddev").get<double>());
        if (h.total_count() > 0) {
            // JS reports the raw max; ours is its highest equivalent value (as Java's getMaxValue).
            EXPECT_EQ(h.max(), highest_equivalent(h, v.at("max").get<std::int64_t>()));
            EXPECT_EQ(recorded.max(), h.max());
            if (h.count_at_index(0) == 0) {
                const auto js_min = v.at("min").get<std::int64_t>();
                EXPECT_EQ(h.min(), h.value_from_index(h.index_for(js_min)));
            }
        }

        const auto rows = h.percentile_distribution(5);
        const auto& want = v.at("distribution");
        ASSERT_EQ(rows.size(), want.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            EXPECT_EQ(rows[i].value, want[i][0].get<std::int64_t>()) << "row " << i;
            EXPECT_DOUBLE_EQ(rows[i].percentile, want[i][1].get<double>()) << "row " << i;
            EXPECT_EQ(rows[i].total_count, want[i][2].get<std::int64_t>()) << "row " << i;
        }
    }
}

TEST(HdrJs, OurEncodingDecodesToTheSameHistogram) {
    const json vectors = load_vectors();
    for (const auto& v : vectors.at("vectors")) {
        SCOPED_TRACE(v.at("name").get<std::string>());
        const Histogram h = record_vector(v);
        const std::string s = h.encode_compressed_base64();
        EXPECT_EQ(s.rfind("HISTFAAA", 0), 0u) << s.substr(0, 16);  // cookie 0x1c849314
        auto back = Histogram::decode_compressed_base64(s);
        ASSERT_TRUE(back) << back.error().to_string();
        EXPECT_EQ(*back, h);
        EXPECT_EQ(back->max(), h.max());
        EXPECT_EQ(back->min(), h.min());
        EXPECT_EQ(back->total_count(), h.total_count());
        // Re-encoding what we decoded gives the same bytes (the payload is canonical).
        EXPECT_EQ(back->encode_compressed_base64(), s);
    }
}

// Writes our encodings and an interval log for hdr_vectors.mjs's `check` (run by the e2e test
// core_histogram_hdr_js). Skipped unless MEDIASIM_HDR_OUT names an output directory.
TEST(HdrJs, WritesOurEncodingsForTheJsCheck) {
    const char* out_dir = std::getenv("MEDIASIM_HDR_OUT");
    if (out_dir == nullptr || *out_dir == '\0') GTEST_SKIP() << "MEDIASIM_HDR_OUT not set";
    const json vectors = load_vectors();
    json ours;
    ours["histograms"] = json::array();
    for (const auto& v : vectors.at("vectors")) {
        const Histogram h = record_vector(v);
        json o = {{"name", v.at("name")},
                  {"lowest", v.at("lowest")},
                  {"highest", v.at("highest")},
                  {"digits", v.at("digits")},
                  {"values", v.at("values")},
                  {"encoded", h.encode_compressed_base64()},
                  {"mean", h.mean()}};
        if (v.contains("extra")) o["extra"] = v.at("extra");
        for (const auto& p : vectors.at("percentiles")) {
            o["percentiles"].push_back({p, h.value_at_percentile(p.get<double>())});
        }
        ours["histograms"].push_back(o);
    }
    // The log: each vector's histogram as one interval, tagged, plus one untagged.
    const double base = 1'700'000'000.25;
    std::ofstream log(std::filesystem::path(out_dir) / "ours.hlog");
    HistogramLogWriter w(log);
    w.write_header(base, "[mediasim histogram_test]");
    ours["log"]["base_time"] = base;
    double start = 0;
    for (const auto& v : vectors.at("vectors")) {
        const Histogram h = record_vector(v);
        const std::string tag = v.at("name") == "single" ? "" : v.at("name").get<std::string>();
        w.write_interval(tag, start, 1.0, h);
        json iv = {{"tag", tag}, {"start", start}, {"total", h.total_count()}};
        for (const auto& p : vectors.at("percentiles")) {
            iv["percentiles"].push_back({p, h.value_at_percentile(p.get<double>())});
        }
        ours["log"]["intervals"].push_back(iv);
        start += 1.0;
    }
    log.close();
    std::ofstream(std::filesystem::path(out_dir) / "ours.json") << ours.dump(1) << '\n';
}

// --- Interval log
// ---------------------------------------------------------------------------------

TEST(HistogramLog, WritesTheJavaHeaderAndLines) {
    std::ostringstream out;
    HistogramLogWriter w(out);
    w.write_header(1'700'000'000.5, "[Logged with mediasim]");
    Histogram h;
    h.record(812'345);  // µs; Interval_Max in ms
    w.write_interval("response", 0.0, 1.0, h);
    w.write_interval("", 1.0, 0.9996, h);
    w.write_interval("bad tag,x", 2.0, 1.0, h);

    std::istringstream in(out.str());
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), 8u);
    EXPECT_EQ(lines[0], "#[Logged with mediasim]");
    EXPECT_EQ(lines[1], "#[Histogram log format version 1.3]");
    EXPECT_EQ(lines[2],
              "#[StartTime: 1700000000.500 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]");
    EXPECT_EQ(lines[3], "#[BaseTime: 1700000000.500 (seconds since epoch)]");
    EXPECT_EQ(lines[4],
              "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
              "\"Interval_Compressed_Histogram\"");
    // 812345 lies in [812032, 812543]: Interval_Max is its highest equivalent value / 1000.
    EXPECT_EQ(lines[5], "Tag=response,0.000,1.000,812.543," + h.encode_compressed_base64());
    EXPECT_EQ(lines[6], "1.000,1.000,812.543," + h.encode_compressed_base64());  // %.3f
    EXPECT_THAT(lines[7], ::testing::StartsWith("Tag=bad_tag_x,2.000,"));
}

TEST(HistogramLog, WriteThenReadRoundTrip) {
    const json vectors = load_vectors();
    std::stringstream log;
    HistogramLogWriter w(log, 1.0);
    w.write_header(1'700'000'000.0, "line one\nline two");
    std::vector<Histogram> written;
    double t = 0;
    for (const auto& v : vectors.at("vectors")) {
        written.push_back(record_vector(v));
        w.write_interval(v.at("name").get<std::string>(), t, 0.5, written.back());
        t += 0.5;
    }
    w.write_interval("", t, 0.25, written.front());
    auto r = read_histogram_log(log, "run.hlog");
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->size(), written.size() + 1);
    for (std::size_t i = 0; i < written.size(); ++i) {
        EXPECT_EQ((*r)[i].tag, vectors.at("vectors")[i].at("name").get<std::string>());
        EXPECT_DOUBLE_EQ((*r)[i].start_seconds, 0.5 * static_cast<double>(i));
        EXPECT_DOUBLE_EQ((*r)[i].length_seconds, 0.5);
        EXPECT_EQ((*r)[i].histogram, written[i]);
    }
    EXPECT_EQ(r->back().tag, "");
    EXPECT_DOUBLE_EQ(r->back().length_seconds, 0.25);
    EXPECT_EQ(r->back().histogram, written.front());

    // Summing the intervals gives what was recorded (what report merge relies on).
    Histogram sum;
    for (const auto& iv : *r) {
        if (iv.tag == "latency_us_3d") sum.add(iv.histogram);
    }
    EXPECT_EQ(sum, written.front());
}

TEST(HistogramLog, ReadsLogsOfOtherWriters) {
    // As Java's jHiccup/HistogramLogProcessor write them: CRLF, old legend, absolute timestamps.
    Histogram h;
    h.record(42);
    const std::string enc = h.encode_compressed_base64();
    std::istringstream in(
        "#[Logged with jHiccup version 2.0.10]\r\n"
        "#[Histogram log format version 1.2]\r\n"
        "#[StartTime: 1441812279.474 (seconds since epoch), Wed Sep 09]\r\n"
        "\"Timestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_"
        "Histogram\"\r\n"
        "\r\n"
        "1441812279.601,1.0,0.042," +
        enc + "\r\n");
    auto r = read_histogram_log(in);
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].tag, "");
    EXPECT_DOUBLE_EQ((*r)[0].start_seconds, 1441812279.601);
    EXPECT_EQ((*r)[0].histogram, h);
}

TEST(HistogramLog, ReadsALogWrittenByHdrHistogramJs) {
    // tests/core/data/hdr_js_written.hlog: hdr-histogram-js's HistogramLogWriter, one interval per
    // vector (see hdr_vectors.mjs `log`).
    const json vectors = load_vectors();
    std::ifstream in(std::string(MEDIASIM_SOURCE_DIR) + "/tests/core/data/hdr_js_written.hlog");
    ASSERT_TRUE(in);
    auto r = read_histogram_log(in, "hdr_js_written.hlog");
    ASSERT_TRUE(r) << r.error().to_string();
    const auto& vs = vectors.at("vectors");
    ASSERT_EQ(r->size(), vs.size());
    for (std::size_t i = 0; i < vs.size(); ++i) {
        const std::string name = vs[i].at("name").get<std::string>();
        SCOPED_TRACE(name);
        EXPECT_EQ((*r)[i].tag, name == "single" ? "" : name);
        EXPECT_DOUBLE_EQ((*r)[i].start_seconds, 2.5 * static_cast<double>(i));
        EXPECT_DOUBLE_EQ((*r)[i].length_seconds, 1.0);
        EXPECT_EQ((*r)[i].histogram, record_vector(vs[i]));
    }
}

TEST(HistogramLog, MalformedLinesNameLineFieldAndProblem) {
    Histogram h;
    h.record(1);
    const std::string enc = h.encode_compressed_base64();
    auto err = [](const std::string& text) {
        std::istringstream in(text);
        auto r = read_histogram_log(in, "x.hlog");
        EXPECT_FALSE(r.ok()) << text;
        return r.ok() ? std::string() : r.error().to_string();
    };
    EXPECT_EQ(err("#c\n0.0,1.0," + enc + "\n"),
              "x.hlog:2: expected 4 comma-separated fields (StartTimestamp, Interval_Length, "
              "Interval_Max, Interval_Compressed_Histogram), found 3");
    EXPECT_EQ(err("Tag=a,0.0,abc,1.0," + enc + "\n"),
              "x.hlog:1:11: Interval_Length: \"abc\" is not a number");
    EXPECT_EQ(err("0.0,1.0,2.0,1.0," + enc + "\n"),
              "x.hlog:1: expected 4 comma-separated fields (StartTimestamp, Interval_Length, "
              "Interval_Max, Interval_Compressed_Histogram), found 5");
    EXPECT_EQ(err("x,1.0,1.0," + enc + "\n"), "x.hlog:1:1: StartTimestamp: \"x\" is not a number");
    EXPECT_EQ(err("0.0,-1.0,1.0," + enc + "\n"),
              "x.hlog:1:5: Interval_Length: interval length -1.0 is negative");
    EXPECT_EQ(err("Tag=,0.0,1.0,1.0," + enc + "\n"), "x.hlog:1:1: Tag: empty tag after \"Tag=\"");
    EXPECT_EQ(err("0.0,1.0,1.0,HISTFAAA!\n"),
              "x.hlog:1:13: Interval_Compressed_Histogram: invalid base64 character '!' at "
              "position 8");
    EXPECT_THAT(err("0.0,1.0,1.0," + enc.substr(0, enc.size() - 8) + "\n"),
                HasSubstr("Interval_Compressed_Histogram: truncated"));
}

// --- Malformed encodings
// ---------------------------------------------------------------------------

TEST(HistogramDecode, RejectsBadBase64) {
    EXPECT_EQ(decode_error(""), "empty histogram text");
    EXPECT_EQ(decode_error("HIST FAA"), "invalid base64 character ' ' at position 4");
    EXPECT_EQ(decode_error("HISTFA=A"), "base64 data after padding at position 7");
    EXPECT_EQ(decode_error("HI==FAAA"),
              "base64 padding '=' at position 2 is not at the end of the data");
    EXPECT_EQ(decode_error("HISTFAA"), "base64 length 7 is not a multiple of 4");
    EXPECT_EQ(decode_error("HIST\x01"
                           "AAA"),
              "invalid base64 character 0x01 at position 4");
}

TEST(HistogramDecode, RejectsBadCookies) {
    const std::string raw = v2_raw(0x1c849313, 3, 1, kHour, zigzag(0) + zigzag(1));
    EXPECT_EQ(decode_error(b64("abc")),
              "truncated: 3 bytes, a compressed histogram has at least 8");
    EXPECT_EQ(decode_error(wrap(raw, 0x12345678)),
              "bad cookie 0x12345678: not a compressed V2 HdrHistogram (expected 0x1c849314)");
    EXPECT_EQ(decode_error(wrap(raw, 0x1c849322)),
              "unsupported V1 histogram encoding (cookie 0x1c849322); only V2 is read");
    EXPECT_EQ(decode_error(wrap(v2_raw(0xdeadbeef, 3, 1, kHour, zigzag(1)))),
              "bad cookie 0xdeadbeef: not a V2 HdrHistogram (expected 0x1c849313)");
    // The uncompressed V2 form is not what the log format holds.
    EXPECT_EQ(decode_error(b64(raw)),
              "uncompressed V2 histogram (cookie 0x1c849313); expected the compressed form "
              "(0x1c849314)");
}

TEST(HistogramDecode, RejectsTruncatedAndCorruptZlib) {
    const std::string raw = v2_raw(0x1c849313, 3, 1, kHour, zigzag(-5) + zigzag(3));
    auto ok = Histogram::decode_compressed_base64(wrap(raw));
    ASSERT_TRUE(ok) << ok.error().to_string();
    EXPECT_EQ(ok->total_count(), 3);
    EXPECT_EQ(ok->count_at_value(5), 3);  // five zero counts, then 3 at index 5
    const std::string z = zlib(raw);
    auto with = [](const std::string& body, std::size_t declared) {
        std::string s;
        put32(s, 0x1c849314);
        put32(s, static_cast<std::uint32_t>(declared));
        return b64(s + body);
    };
    EXPECT_EQ(decode_error(with(z, z.size() + 4)),
              "truncated: header says " + std::to_string(z.size() + 4) +
                  " bytes of compressed data, only " + std::to_string(z.size()) + " present");
    EXPECT_EQ(decode_error(with(z + "abcd", z.size() + 4)),
              "zlib: 4 unexpected bytes after the end of the compressed data");
    EXPECT_EQ(
        decode_error(with(z + "ab", z.size())),
        "2 unexpected bytes after the " + std::to_string(z.size()) + " bytes of compressed data");
    const std::string half = z.substr(0, z.size() / 2);
    EXPECT_EQ(decode_error(with(half, half.size())), "zlib: compressed data is truncated");
    std::string bad_header = z;
    bad_header[0] = 0;
    EXPECT_EQ(decode_error(with(bad_header, z.size())),
              "zlib: bad compressed data (incorrect header check)");
    std::string bad_check = z;
    bad_check[bad_check.size() - 1] ^= 0x55;
    EXPECT_EQ(decode_error(with(bad_check, z.size())),
              "zlib: bad compressed data (incorrect data check)");
}

TEST(HistogramDecode, RejectsBadPayloads) {
    const std::uint32_t c = 0x1c849313;
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 1, kHour, zigzag(1), 6))),
              "truncated: header says 6 bytes of counts, the data holds 1");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 1, kHour, zigzag(1) + zigzag(1), 1))),
              "bad payload length: header says 1 bytes of counts, the data holds 2");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 1, kHour, "").substr(0, 20))),
              "truncated: inflated histogram has 20 bytes, its header alone needs 40");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 7, 1, kHour, zigzag(1)))),
              "bad histogram header: significant digits 7 must be between 0 and 5");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 0, kHour, zigzag(1)))),
              "bad histogram header: lowest discernible value 0 must be >= 1");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 100, 150, zigzag(1)))),
              "bad histogram header: highest trackable value 150 must be >= 2 * lowest "
              "discernible value (100)");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 1, kHour, zigzag(1) + "\x80\x80"))),
              "truncated: the count at payload byte 1 is cut short");
    // (1, 2, 0) has 3 counts.
    ASSERT_EQ(Histogram(1, 2, 0).counts_length(), 3u);
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 0, 1, 2, zigzag(1) + zigzag(1) + zigzag(1) + zigzag(1)))),
              "counts overflow: payload byte 3 holds count #4 but this layout has 3 counts");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 0, 1, 2, zigzag(1) + zigzag(-3)))),
              "counts overflow: a run of 3 zero counts at payload byte 1 goes past the 3 counts "
              "of this layout");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 0, 1, 2, zigzag(INT64_MIN)))),
              "counts overflow: a run of 9223372036854775808 zero counts at payload byte 0 goes "
              "past the 3 counts of this layout");
    EXPECT_EQ(decode_error(wrap(v2_raw(c, 3, 1, kHour, zigzag(INT64_MAX) + zigzag(1)))),
              "counts overflow: the total count passes 2^63 at payload byte 9");
    // Word sizes in the cookie's nibble are ignored for V2, as HdrHistogram does.
    auto r = Histogram::decode_compressed_base64(
        wrap(v2_raw(0x1c849303, 0, 1, 2, zigzag(0) + zigzag(2)), 0x1c849304));
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->count_at_value(1), 2);
}
