#include "core/histogram.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <istream>
#include <limits>
#include <ostream>
#include <stdexcept>

#include "core/base64.hpp"

// The bucket layout, index arithmetic, percentile and iteration rules below follow HdrHistogram
// (Gil Tene's Java AbstractHistogram, HdrHistogram_c's hdr_histogram.c, and hdr-histogram-js,
// which is the independent implementation the tests compare against). Where the Java versions
// differ among themselves (getValueAtPercentile's rounding), we follow the JS port, whose outputs
// are pinned in tests/core/data/hdr_vectors.json.

namespace mediasim::core {

namespace {

// Cookies of the V2 encodings. The low nibble of the second-lowest byte (0xf0) holds the word
// size; HdrHistogram writes 0x10 there for V2, so the bytes on the wire are 0x1c849313/14
// ("HISTFAAA..." once compressed and base64-encoded). Readers compare the base only.
constexpr std::uint32_t kV2EncodingCookieBase = 0x1c849303;
constexpr std::uint32_t kV2CompressedCookieBase = 0x1c849304;
constexpr std::uint32_t kV1EncodingCookieBase = 0x1c849301;
constexpr std::uint32_t kV1CompressedCookieBase = 0x1c849302;
constexpr std::uint32_t kV0EncodingCookieBase = 0x1c849308;
constexpr std::uint32_t kV0CompressedCookieBase = 0x1c849309;
constexpr std::uint32_t kWordSizeNibble = 0x10;
constexpr std::uint32_t cookie_base(std::uint32_t cookie) {
    return cookie & ~0xf0u;
}

constexpr std::size_t kV2HeaderSize = 40;  // cookie, length, offset, digits, lowest, highest, ratio
constexpr std::size_t kCompressedHeaderSize = 8;  // cookie, length of the zlib stream
// A V2 payload holds at most one 9-byte word per count; HdrHistogram's largest layout has about
// 4.3 million counts, so no valid histogram inflates to more than this.
constexpr std::size_t kMaxInflatedSize = std::size_t{64} << 20;

struct Layout {
    int unit_magnitude = 0;
    int sub_bucket_half_count_magnitude = 0;
    std::int32_t sub_bucket_count = 0;
    int bucket_count = 0;
    std::size_t counts_length = 0;
};

int floor_log2(std::uint64_t v) {
    return 63 - std::countl_zero(v);
}

// Checks HdrHistogram's constructor preconditions and derives the layout; an empty string on
// success, else what is wrong.
std::string compute_layout(std::int64_t lowest, std::int64_t highest, int digits, Layout& out) {
    if (lowest < 1) return fmt::format("lowest discernible value {} must be >= 1", lowest);
    if (lowest > std::numeric_limits<std::int64_t>::max() / 2 || highest < 2 * lowest) {
        return fmt::format(
            "highest trackable value {} must be >= 2 * lowest discernible value ({})", highest,
            lowest);
    }
    if (digits < 0 || digits > 5) {
        return fmt::format("significant digits {} must be between 0 and 5", digits);
    }
    // The largest value that must keep single-unit resolution is 2 * 10^digits; the sub-bucket
    // count is the power of two at or above it.
    std::int64_t single_unit_limit = 2;
    for (int i = 0; i < digits; ++i) single_unit_limit *= 10;
    int sub_bucket_count_magnitude = 0;
    while ((std::int64_t{1} << sub_bucket_count_magnitude) < single_unit_limit) {
        ++sub_bucket_count_magnitude;
    }
    out.unit_magnitude = floor_log2(static_cast<std::uint64_t>(lowest));
    out.sub_bucket_half_count_magnitude = std::max(sub_bucket_count_magnitude, 1) - 1;
    if (out.unit_magnitude + out.sub_bucket_half_count_magnitude > 61) {
        return fmt::format(
            "{} significant digits cannot be represented above lowest discernible value {}", digits,
            lowest);
    }
    out.sub_bucket_count = std::int32_t{1} << (out.sub_bucket_half_count_magnitude + 1);
    // Buckets needed to cover `highest`: each bucket doubles the range.
    std::int64_t smallest_untrackable = std::int64_t{out.sub_bucket_count} << out.unit_magnitude;
    int buckets = 1;
    while (smallest_untrackable <= highest) {
        if (smallest_untrackable > std::numeric_limits<std::int64_t>::max() / 2) {
            ++buckets;
            break;
        }
        smallest_untrackable <<= 1;
        ++buckets;
    }
    out.bucket_count = buckets;
    out.counts_length =
        static_cast<std::size_t>(buckets + 1) * static_cast<std::size_t>(out.sub_bucket_count / 2);
    return {};
}

// --- Big-endian byte helpers -------------------------------------------------------------------

void put_u32(std::string& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
std::uint32_t get_u32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}
std::uint64_t get_u64(const std::uint8_t* p) {
    return (std::uint64_t{get_u32(p)} << 32) | get_u32(p + 4);
}

// ZigZag LEB128-64b9B, as HdrHistogram's ZigZagEncoding: 7 bits per byte for 8 bytes, and a
// 9th byte carrying the remaining 8 bits.
void put_zigzag(std::string& out, std::int64_t value) {
    std::uint64_t v =
        (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
    for (int i = 0; i < 8; ++i) {
        if (v < 0x80) {
            out.push_back(static_cast<char>(v));
            return;
        }
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

// Reads one word at data[pos]; false when the input ends inside it.
bool get_zigzag(const std::uint8_t* data, std::size_t size, std::size_t& pos, std::int64_t& out) {
    std::uint64_t v = 0;
    for (int i = 0; i < 9; ++i) {
        if (pos >= size) return false;
        const std::uint8_t b = data[pos++];
        if (i == 8) {
            v |= std::uint64_t{b} << 56;
            break;
        }
        v |= std::uint64_t{b & 0x7fu} << (7 * i);
        if ((b & 0x80) == 0) break;
    }
    out = static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
    return true;
}

// --- base64 (core/base64: standard alphabet, padded, strict) -----------------------------------

std::string base64_encode_bytes(const std::string& bytes) {
    return base64_encode(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::vector<std::uint8_t>> base64_decode_bytes(std::string_view text) {
    if (text.empty()) return make_error("empty histogram text");
    std::vector<std::uint8_t> out(base64_decoded_max_size(text.size()));
    auto n = base64_decode(text, out.data());
    if (!n) return n.error();
    out.resize(*n);
    return out;
}

// --- zlib ----------------------------------------------------------------------------------------

// One deflate state per thread, reset per histogram: setting one up allocates and clears about
// 270 KB, which cost more than compressing a typical interval histogram (~2 ms against ~50 µs).
class Deflater {
  public:
    Deflater() { ok_ = deflateInit(&zs_, Z_BEST_COMPRESSION) == Z_OK; }  // as Java's log writer
    ~Deflater() {
        if (ok_) deflateEnd(&zs_);
    }
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;

    std::string compress(const std::string& in) {
        if (!ok_ || deflateReset(&zs_) != Z_OK) throw std::runtime_error("zlib: deflate failed");
        std::string out(deflateBound(&zs_, static_cast<uLong>(in.size())), '\0');
        zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        zs_.avail_in = static_cast<uInt>(in.size());
        zs_.next_out = reinterpret_cast<Bytef*>(out.data());
        zs_.avail_out = static_cast<uInt>(out.size());
        // deflateBound guarantees that one Z_FINISH call completes.
        if (deflate(&zs_, Z_FINISH) != Z_STREAM_END)
            throw std::runtime_error("zlib: deflate failed");
        out.resize(zs_.total_out);
        return out;
    }

  private:
    z_stream zs_{};
    bool ok_ = false;
};

std::string deflate_bytes(const std::string& in) {
    thread_local Deflater deflater;
    return deflater.compress(in);
}

Result<std::vector<std::uint8_t>> inflate_bytes(const std::uint8_t* data, std::size_t size) {
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) return make_error("zlib: could not initialise inflate");
    std::vector<std::uint8_t> out;
    zs.next_in = const_cast<Bytef*>(data);
    zs.avail_in = static_cast<uInt>(size);
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (out.size() >= kMaxInflatedSize) {
            inflateEnd(&zs);
            return make_error(
                fmt::format("zlib: histogram inflates to more than {} bytes (not a histogram)",
                            kMaxInflatedSize));
        }
        const std::size_t have = out.size();
        out.resize(std::min(kMaxInflatedSize, std::max<std::size_t>(4096, have * 2)));
        zs.next_out = out.data() + have;
        zs.avail_out = static_cast<uInt>(out.size() - have);
        rc = inflate(&zs, Z_NO_FLUSH);
        out.resize(out.size() - zs.avail_out);
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended before the stream did
    }
    const std::string msg = zs.msg != nullptr ? zs.msg : "";
    const std::size_t left = zs.avail_in;
    inflateEnd(&zs);
    if (rc == Z_STREAM_END) {
        if (left != 0) {
            return make_error(fmt::format(
                "zlib: {} unexpected bytes after the end of the compressed data", left));
        }
        return out;
    }
    if (rc == Z_BUF_ERROR) return make_error("zlib: compressed data is truncated");
    return make_error(
        fmt::format("zlib: bad compressed data ({})", msg.empty() ? zError(rc) : msg));
}

std::string describe_cookie(std::uint32_t cookie, bool compressed) {
    const std::uint32_t base = cookie_base(cookie);
    if (compressed && base == kV2EncodingCookieBase) {
        return fmt::format(
            "uncompressed V2 histogram (cookie 0x{:08x}); expected the compressed form (0x{:08x})",
            cookie, kV2CompressedCookieBase | kWordSizeNibble);
    }
    const char* version = nullptr;
    if (base == kV1EncodingCookieBase || base == kV1CompressedCookieBase) version = "V1";
    if (base == kV0EncodingCookieBase || base == kV0CompressedCookieBase) version = "V0";
    if (version != nullptr) {
        return fmt::format("unsupported {} histogram encoding (cookie 0x{:08x}); only V2 is read",
                           version, cookie);
    }
    return fmt::format(
        "bad cookie 0x{:08x}: not a {}V2 HdrHistogram (expected 0x{:08x})", cookie,
        compressed ? "compressed " : "",
        (compressed ? kV2CompressedCookieBase : kV2EncodingCookieBase) | kWordSizeNibble);
}

}  // namespace

// --- Histogram -----------------------------------------------------------------------------------

Histogram::Histogram(std::int64_t lowest_discernible, std::int64_t highest_trackable,
                     int significant_digits)
    : lowest_(lowest_discernible), highest_(highest_trackable), digits_(significant_digits) {
    Layout l;
    if (auto err = compute_layout(lowest_, highest_, digits_, l); !err.empty()) {
        throw std::invalid_argument("Histogram: " + err);
    }
    unit_magnitude_ = l.unit_magnitude;
    sub_bucket_half_count_magnitude_ = l.sub_bucket_half_count_magnitude;
    sub_bucket_count_ = l.sub_bucket_count;
    sub_bucket_half_count_ = l.sub_bucket_count / 2;
    sub_bucket_mask_ = (std::int64_t{sub_bucket_count_} - 1) << unit_magnitude_;
    bucket_count_ = l.bucket_count;
    counts_.assign(l.counts_length, 0);
}

std::size_t Histogram::index_for(std::int64_t value) const {
    const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0));
    // The bucket is the power of two above the value, less the bits the sub-buckets resolve.
    const int pow2_ceiling =
        64 - std::countl_zero(v | static_cast<std::uint64_t>(sub_bucket_mask_));
    const int bucket = pow2_ceiling - unit_magnitude_ - (sub_bucket_half_count_magnitude_ + 1);
    const auto sub_bucket = static_cast<std::int64_t>(v >> (bucket + unit_magnitude_));
    // Bucket 0 uses all its sub-buckets; the others only their upper half (the lower half
    // overlaps the previous bucket), hence the base index in the middle of each bucket.
    const std::int64_t base = std::int64_t{bucket + 1} << sub_bucket_half_count_magnitude_;
    return static_cast<std::size_t>(base + (sub_bucket - sub_bucket_half_count_));
}

std::int64_t Histogram::value_from_index(std::size_t i) const {
    auto index = static_cast<std::int64_t>(i);
    int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude_) - 1;
    std::int64_t sub_bucket = (index & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
    if (bucket < 0) {
        sub_bucket -= sub_bucket_half_count_;
        bucket = 0;
    }
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(sub_bucket)
                                     << (bucket + unit_magnitude_));
}

namespace {
// Width of the bucket that holds index i: buckets 0 and 1 have unit width (in the unit of
// 2^unit_magnitude), each later bucket twice the previous one.
std::int64_t bucket_width(std::size_t i, int half_count_magnitude, int unit_magnitude) {
    const int bucket = std::max(0, static_cast<int>(i >> half_count_magnitude) - 1);
    return std::int64_t{1} << (bucket + unit_magnitude);
}

// The values equivalent to one (in the same bucket): HdrHistogram's lowestEquivalentValue,
// sizeOfEquivalentValueRange, highestEquivalentValue and medianEquivalentValue.
struct Equivalents {
    std::int64_t lowest;  // lowest value in the same bucket
    std::int64_t size;    // width of the bucket
    std::int64_t highest() const {
        const auto next = static_cast<std::uint64_t>(lowest) + static_cast<std::uint64_t>(size);
        return next > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                   ? std::numeric_limits<std::int64_t>::max()
                   : static_cast<std::int64_t>(next - 1);
    }
    std::int64_t median() const { return lowest + (size >> 1); }
};
}  // namespace

std::int64_t Histogram::min() const {
    if (total_count_ == 0 || counts_[0] > 0) return 0;
    return value_from_index(index_for(min_));
}

std::int64_t Histogram::max() const {
    if (total_count_ == 0) return 0;
    const std::size_t i = index_for(max_);
    return Equivalents{value_from_index(i),
                       bucket_width(i, sub_bucket_half_count_magnitude_, unit_magnitude_)}
        .highest();
}

double Histogram::mean() const {
    if (total_count_ == 0) return 0.0;
    double total = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        if (counts_[i] == 0) continue;
        const Equivalents e{value_from_index(i),
                            bucket_width(i, sub_bucket_half_count_magnitude_, unit_magnitude_)};
        total += static_cast<double>(e.median()) * static_cast<double>(counts_[i]);
    }
    return total / static_cast<double>(total_count_);
}

double Histogram::stddev() const {
    if (total_count_ == 0) return 0.0;
    const double m = mean();
    double total = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        if (counts_[i] == 0) continue;
        const Equivalents e{value_from_index(i),
                            bucket_width(i, sub_bucket_half_count_magnitude_, unit_magnitude_)};
        const double deviation = static_cast<double>(e.median()) - m;
        total += deviation * deviation * static_cast<double>(counts_[i]);
    }
    return std::sqrt(total / static_cast<double>(total_count_));
}

void Histogram::record(std::int64_t value, std::int64_t count) {
    if (count <= 0) return;
    if (value < 0) value = 0;
    if (value > highest_) {
        value = highest_;
        saturated_ += count;
    }
    counts_[index_for(value)] += count;
    total_count_ += count;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
}

void Histogram::record_corrected(std::int64_t value, std::int64_t expected_interval) {
    record(value);
    if (expected_interval <= 0 || value <= expected_interval) return;
    // HdrHistogram records value - k * interval for every k >= 1 while that stays >= interval.
    // The terms falling in one bucket are counted at once, so a long stall costs one step per
    // bucket rather than one per missing sample.
    std::int64_t v = value - expected_interval;
    while (v >= expected_interval) {
        std::int64_t floor_value;
        if (v > highest_) {
            floor_value = std::max(highest_ + 1, expected_interval);
        } else {
            floor_value = std::max(value_from_index(index_for(v)), expected_interval);
        }
        const std::int64_t n = (v - floor_value) / expected_interval + 1;
        const std::int64_t smallest = v - (n - 1) * expected_interval;
        if (v > highest_) {
            record(highest_, n);
            saturated_ += n;  // clamped like the value itself
        } else {
            counts_[index_for(v)] += n;
            total_count_ += n;
            min_ = std::min(min_, smallest);
            max_ = std::max(max_, v);
        }
        v = smallest - expected_interval;
    }
}

void Histogram::add(const Histogram& other) {
    if (other.total_count_ == 0) return;
    const bool same_indexing =
        unit_magnitude_ == other.unit_magnitude_ &&
        sub_bucket_half_count_magnitude_ == other.sub_bucket_half_count_magnitude_ &&
        other.counts_.size() <= counts_.size() && other.max_ <= highest_;
    if (same_indexing) {
        for (std::size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
        total_count_ += other.total_count_;
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
        saturated_ += other.saturated_;
        return;
    }
    // Different layouts: re-record each bucket's lowest equivalent value, as HdrHistogram does.
    // Values the other histogram saturated stay counted unless they saturate again here (then
    // record() counts them).
    const std::size_t saturated_index = other.index_for(other.highest_);
    for (std::size_t i = 0; i < other.counts_.size(); ++i) {
        if (other.counts_[i] == 0) continue;
        const std::int64_t v = other.value_from_index(i);
        record(v, other.counts_[i]);
        if (i == saturated_index && v <= highest_) saturated_ += other.saturated_;
    }
}

void Histogram::reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_count_ = 0;
    min_ = INT64_MAX;
    max_ = 0;
    saturated_ = 0;
}

std::int64_t Histogram::value_at_percentile(double percentile) const {
    if (total_count_ == 0) return 0;
    double requested = std::min(percentile, 100.0);
    if (!(requested > 0.0)) requested = 0.0;  // also NaN
    // Round the count up, less one ulp so that fp error in the product cannot skip a count
    // (hdr-histogram-js; Java HdrHistogram 2.1.x does the equivalent).
    const double fp_count = (requested / 100.0) * static_cast<double>(total_count_);
    const double ulp = fp_count > 0 ? std::pow(2.0, std::floor(std::log2(fp_count)) - 52) : 0.0;
    const std::int64_t count_at =
        std::max<std::int64_t>(static_cast<std::int64_t>(std::ceil(fp_count - ulp)), 1);
    std::int64_t running = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        running += counts_[i];
        if (running >= count_at) {
            const Equivalents e{value_from_index(i),
                                bucket_width(i, sub_bucket_half_count_magnitude_, unit_magnitude_)};
            return percentile == 0.0 ? e.lowest : e.highest();
        }
    }
    return 0;
}

std::int64_t Histogram::count_at_value(std::int64_t value) const {
    const std::size_t i = index_for(std::min(std::max<std::int64_t>(value, 0), highest_));
    return i < counts_.size() ? counts_[i] : 0;
}

std::vector<Histogram::PercentileRow> Histogram::percentile_distribution(
    int ticks_per_half_distance) const {
    std::vector<PercentileRow> rows;
    if (total_count_ == 0) return rows;
    if (ticks_per_half_distance < 1) ticks_per_half_distance = 1;
    // HdrHistogram's PercentileIterator: walk the counts; each time the running percentile reaches
    // the level being iterated to, emit a row and move the level on by one tick, where a tick is
    // 1/ticks of the current half-distance to 100%. One last row at 100% closes the walk.
    double level = 0.0;
    std::int64_t running = 0;
    const auto total = static_cast<double>(total_count_);
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        if (counts_[i] == 0) continue;
        running += counts_[i];
        const Equivalents e{value_from_index(i),
                            bucket_width(i, sub_bucket_half_count_magnitude_, unit_magnitude_)};
        // Several rows may fall on one bucket; on the last one, a single row and then 100%.
        while ((100.0 * static_cast<double>(running)) / total >= level) {
            rows.push_back({e.highest(), level, running});
            const double halvings = std::floor(std::log2(100.0 / (100.0 - level)));
            const double ticks =
                static_cast<double>(ticks_per_half_distance) * std::pow(2.0, halvings + 1);
            level += 100.0 / ticks;
            if (running == total_count_) break;
        }
        if (running == total_count_) {
            rows.push_back({e.highest(), 100.0, running});
            break;
        }
    }
    return rows;
}

// --- V2 encoding ---------------------------------------------------------------------------------

std::string Histogram::encode_compressed_base64() const {
    std::string raw;
    raw.reserve(kV2HeaderSize + 64);
    put_u32(raw, kV2EncodingCookieBase | kWordSizeNibble);
    put_u32(raw, 0);  // payload length, filled in below
    put_u32(raw, 0);  // normalizing index offset: none
    put_u32(raw, static_cast<std::uint32_t>(digits_));
    put_u64(raw, static_cast<std::uint64_t>(lowest_));
    put_u64(raw, static_cast<std::uint64_t>(highest_));
    put_u64(raw, std::bit_cast<std::uint64_t>(1.0));  // integer to double conversion ratio
    // Counts up to the one holding the max; a run of two or more zeros is written as -run.
    const std::size_t limit = total_count_ == 0 ? 1 : index_for(max_) + 1;
    std::size_t i = 0;
    while (i < limit) {
        const std::int64_t count = counts_[i++];
        if (count != 0) {
            put_zigzag(raw, count);
            continue;
        }
        std::int64_t zeros = 1;
        while (i < limit && counts_[i] == 0) {
            ++zeros;
            ++i;
        }
        put_zigzag(raw, zeros > 1 ? -zeros : 0);
    }
    const auto payload = static_cast<std::uint32_t>(raw.size() - kV2HeaderSize);
    for (int b = 0; b < 4; ++b) raw[4 + b] = static_cast<char>((payload >> (24 - 8 * b)) & 0xff);

    const std::string z = deflate_bytes(raw);
    std::string wrapped;
    wrapped.reserve(kCompressedHeaderSize + z.size());
    put_u32(wrapped, kV2CompressedCookieBase | kWordSizeNibble);
    put_u32(wrapped, static_cast<std::uint32_t>(z.size()));
    wrapped += z;
    return base64_encode_bytes(wrapped);
}

Result<Histogram> Histogram::decode_compressed_base64(std::string_view text) {
    auto bytes = base64_decode_bytes(text);
    if (!bytes) return bytes.error();
    const std::vector<std::uint8_t>& b = *bytes;
    if (b.size() < kCompressedHeaderSize) {
        return make_error(fmt::format("truncated: {} bytes, a compressed histogram has at least {}",
                                      b.size(), kCompressedHeaderSize));
    }
    const std::uint32_t cookie = get_u32(b.data());
    if (cookie_base(cookie) != kV2CompressedCookieBase) {
        return make_error(describe_cookie(cookie, true));
    }
    const std::uint32_t z_length = get_u32(b.data() + 4);
    const std::size_t available = b.size() - kCompressedHeaderSize;
    if (z_length > available) {
        return make_error(
            fmt::format("truncated: header says {} bytes of compressed data, only {} present",
                        z_length, available));
    }
    if (z_length < available) {
        return make_error(fmt::format("{} unexpected bytes after the {} bytes of compressed data",
                                      available - z_length, z_length));
    }
    auto inflated = inflate_bytes(b.data() + kCompressedHeaderSize, z_length);
    if (!inflated) return inflated.error();
    const std::vector<std::uint8_t>& r = *inflated;
    if (r.size() < kV2HeaderSize) {
        return make_error(
            fmt::format("truncated: inflated histogram has {} bytes, its header alone needs {}",
                        r.size(), kV2HeaderSize));
    }
    const std::uint32_t inner_cookie = get_u32(r.data());
    if (cookie_base(inner_cookie) != kV2EncodingCookieBase) {
        return make_error(describe_cookie(inner_cookie, false));
    }
    const std::uint32_t payload_length = get_u32(r.data() + 4);
    // r[8..12) is the normalizing index offset: it only rotates how a writer stored its counts,
    // the encoded counts are in logical order, so readers ignore it (hdr-histogram-js writes 1).
    // r[32..40) is the integer-to-double ratio, meaningful only to DoubleHistogram.
    const auto digits = static_cast<std::int32_t>(get_u32(r.data() + 12));
    const auto lowest = static_cast<std::int64_t>(get_u64(r.data() + 16));
    const auto highest = static_cast<std::int64_t>(get_u64(r.data() + 24));
    if (payload_length != r.size() - kV2HeaderSize) {
        return make_error(fmt::format(
            "{}: header says {} bytes of counts, the data holds {}",
            payload_length > r.size() - kV2HeaderSize ? "truncated" : "bad payload length",
            payload_length, r.size() - kV2HeaderSize));
    }
    Layout layout;
    if (auto err = compute_layout(lowest, highest, digits, layout); !err.empty()) {
        return make_error("bad histogram header: " + err);
    }
    Histogram h(lowest, highest, digits);
    std::size_t pos = kV2HeaderSize;
    std::size_t dst = 0;
    std::int64_t total = 0;
    const std::size_t length = h.counts_.size();
    while (pos < r.size()) {
        const std::size_t at = pos - kV2HeaderSize;
        std::int64_t count = 0;
        if (!get_zigzag(r.data(), r.size(), pos, count)) {
            return make_error(
                fmt::format("truncated: the count at payload byte {} is cut short", at));
        }
        if (count < 0) {
            const std::uint64_t zeros = 0 - static_cast<std::uint64_t>(count);
            if (zeros > length - dst) {
                return make_error(fmt::format(
                    "counts overflow: a run of {} zero counts at payload byte {} goes past the {} "
                    "counts of this layout",
                    zeros, at, length));
            }
            dst += static_cast<std::size_t>(zeros);
            continue;
        }
        if (dst >= length) {
            return make_error(fmt::format(
                "counts overflow: payload byte {} holds count #{} but this layout has {} counts",
                at, dst + 1, length));
        }
        if (count > std::numeric_limits<std::int64_t>::max() - total) {
            return make_error(
                fmt::format("counts overflow: the total count passes 2^63 at payload byte {}", at));
        }
        total += count;
        h.counts_[dst++] = count;
    }
    // Establish what recording would have tracked: total, min and max (as bucket values).
    h.total_count_ = total;
    for (std::size_t i = 0; i < dst; ++i) {
        if (h.counts_[i] == 0) continue;
        h.min_ = std::min(h.min_, h.value_from_index(i));
        h.max_ = std::max(h.max_, h.value_from_index(i));
    }
    return h;
}

bool Histogram::operator==(const Histogram& other) const {
    return lowest_ == other.lowest_ && highest_ == other.highest_ && digits_ == other.digits_ &&
           counts_ == other.counts_;
}

// --- Interval log --------------------------------------------------------------------------------

HistogramLogWriter::HistogramLogWriter(std::ostream& out, double max_value_divisor)
    : out_(out), divisor_(max_value_divisor > 0 ? max_value_divisor : 1.0) {}

void HistogramLogWriter::write_header(double start_time_epoch_seconds, std::string_view comment) {
    // As HdrHistogram's tools write it: comment, format version, start time, base time, legend.
    // Timestamps in interval lines are then relative to BaseTime.
    while (!comment.empty()) {
        const auto nl = comment.find('\n');
        out_ << '#' << comment.substr(0, nl) << '\n';
        comment = nl == std::string_view::npos ? std::string_view{} : comment.substr(nl + 1);
    }
    out_ << "#[Histogram log format version 1.3]\n";
    // Java prints Date.toString(); we print the same shape in UTC.
    const auto secs = static_cast<std::time_t>(std::floor(start_time_epoch_seconds));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", &tm);
    out_ << fmt::format("#[StartTime: {:.3f} (seconds since epoch), {}]\n",
                        start_time_epoch_seconds, date);
    out_ << fmt::format("#[BaseTime: {:.3f} (seconds since epoch)]\n", start_time_epoch_seconds);
    out_ << "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
            "\"Interval_Compressed_Histogram\"\n";
}

void HistogramLogWriter::write_interval(std::string_view tag, double start_seconds_since_start,
                                        double length_seconds, const Histogram& h) {
    std::string line;
    if (!tag.empty()) {
        // A tag cannot hold the format's delimiters (Java rejects them); replace them.
        std::string t(tag);
        for (char& c : t) {
            if (c == ',' || c == ' ' || c == '\r' || c == '\n' || c == '\t') c = '_';
        }
        line = "Tag=" + t + ",";
    }
    line += fmt::format("{:.3f},{:.3f},{:.3f},", start_seconds_since_start, length_seconds,
                        static_cast<double>(h.max()) / divisor_);
    line += h.encode_compressed_base64();
    line += '\n';
    out_ << line;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

bool parse_double(std::string_view s, double& out) {
    if (s.empty()) return false;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc{} && p == end && std::isfinite(out);
}

}  // namespace

Result<std::vector<LogInterval>> read_histogram_log(std::istream& in, std::string_view name) {
    std::vector<LogInterval> intervals;
    std::string line;
    int line_no = 0;
    auto error = [&](int column, std::string path, std::string message) {
        Diagnostic d;
        d.file = std::string(name);
        d.line = line_no;
        d.column = column;
        d.path = std::move(path);
        d.message = std::move(message);
        return d;
    };
    while (std::getline(in, line)) {
        ++line_no;
        const std::string_view l = trim(line);
        // Comments (#[StartTime: ...], #[BaseTime: ...] among them), the legend (current and
        // pre-1.2 forms) and blank lines carry no interval.
        if (l.empty() || l.front() == '#' || l.starts_with("\"StartTimestamp\"") ||
            l.starts_with("\"Timestamp\"")) {
            continue;
        }
        std::vector<std::string_view> fields;
        std::vector<int> columns;  // 1-based, for the error messages
        const auto lead = static_cast<int>(l.data() - line.data());
        std::size_t from = 0;
        while (true) {
            const std::size_t comma = l.find(',', from);
            const std::string_view f = l.substr(
                from, comma == std::string_view::npos ? std::string_view::npos : comma - from);
            columns.push_back(lead + static_cast<int>(from) + 1);
            fields.push_back(trim(f));
            if (comma == std::string_view::npos) break;
            from = comma + 1;
        }
        LogInterval iv;
        std::size_t k = 0;
        if (fields[0].starts_with("Tag=")) {
            iv.tag = std::string(fields[0].substr(4));
            if (iv.tag.empty()) return error(columns[0], "Tag", "empty tag after \"Tag=\"");
            k = 1;
        }
        if (fields.size() - k != 4) {
            return error(
                0, {},
                fmt::format("expected 4 comma-separated fields (StartTimestamp, Interval_Length, "
                            "Interval_Max, Interval_Compressed_Histogram){}, found {}",
                            k == 1 ? " after the tag" : "", fields.size() - k));
        }
        static constexpr const char* kNames[] = {"StartTimestamp", "Interval_Length",
                                                 "Interval_Max"};
        double nums[3];
        for (int j = 0; j < 3; ++j) {
            if (!parse_double(fields[k + j], nums[j])) {
                return error(columns[k + j], kNames[j],
                             fmt::format("\"{}\" is not a number", fields[k + j]));
            }
        }
        if (nums[1] < 0) {
            return error(columns[k + 1], kNames[1],
                         fmt::format("interval length {} is negative", fields[k + 1]));
        }
        auto h = Histogram::decode_compressed_base64(fields[k + 3]);
        if (!h) {
            return error(columns[k + 3], "Interval_Compressed_Histogram", h.error().message);
        }
        iv.start_seconds = nums[0];
        iv.length_seconds = nums[1];
        iv.histogram = std::move(*h);
        intervals.push_back(std::move(iv));
    }
    if (in.bad()) {
        Diagnostic d;
        d.file = std::string(name);
        d.message = "read error";
        return d;
    }
    return intervals;
}

}  // namespace mediasim::core
