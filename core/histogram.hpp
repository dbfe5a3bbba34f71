// A latency histogram compatible with HdrHistogram: the same bucket layout (lowest discernible
// value, highest trackable value, significant digits), mergeable by adding counts, percentiles
// as HdrHistogram computes them, and the V2 compressed encoding (zlib + base64) used by the
// HdrHistogram interval log format, so HdrHistogram's own tools and libraries read our logs.
// Values are integers in the unit the caller chooses; Mediasim records microseconds.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mediasim::core {

class Histogram {
  public:
    // Defaults: 1 µs to one hour at 3 significant digits.
    explicit Histogram(std::int64_t lowest_discernible = 1,
                       std::int64_t highest_trackable = 3'600'000'000LL,
                       int significant_digits = 3);

    // Values above the highest trackable value are clamped to it and counted in saturated().
    // Negative values are recorded as 0.
    void record(std::int64_t value, std::int64_t count = 1);
    // HdrHistogram's recordValueWithExpectedInterval: back-fills the samples that a stalled
    // recorder missed (coordinated omission correction).
    void record_corrected(std::int64_t value, std::int64_t expected_interval);

    // Adds other's counts. Both must have the same layout; otherwise values are re-recorded.
    void add(const Histogram& other);
    void reset();

    std::int64_t total_count() const { return total_count_; }
    std::int64_t min() const;  // 0 when empty
    std::int64_t max() const;  // 0 when empty
    double mean() const;
    double stddev() const;
    std::int64_t saturated() const { return saturated_; }
    // As HdrHistogram's getValueAtPercentile (highest equivalent value of the bucket reached).
    std::int64_t value_at_percentile(double percentile) const;
    // Count of values equivalent to value (same bucket).
    std::int64_t count_at_value(std::int64_t value) const;

    std::int64_t lowest_discernible() const { return lowest_; }
    std::int64_t highest_trackable() const { return highest_; }
    int significant_digits() const { return digits_; }

    // HdrHistogram percentile distribution rows (as outputPercentileDistribution iterates them:
    // ticks_per_half_distance percentile steps per halving of the remaining distance to 100%).
    struct PercentileRow {
        std::int64_t value;
        double percentile;  // 0..100
        std::int64_t total_count;
    };
    std::vector<PercentileRow> percentile_distribution(int ticks_per_half_distance = 5) const;

    // V2 compressed encoding (cookie 0x1c849304, zlib-wrapped V2 encoding, then base64), as
    // HdrHistogram's encodeIntoCompressedByteBuffer produces it.
    std::string encode_compressed_base64() const;
    static Result<Histogram> decode_compressed_base64(std::string_view text);

    bool operator==(const Histogram& other) const;  // same layout and same counts

    // Internals exposed for the encoder and for tests.
    std::size_t counts_length() const { return counts_.size(); }
    std::int64_t count_at_index(std::size_t i) const { return counts_[i]; }
    std::int64_t value_from_index(std::size_t i) const;
    std::size_t index_for(std::int64_t value) const;

  private:
    std::int64_t lowest_;
    std::int64_t highest_;
    int digits_;
    int unit_magnitude_;
    int sub_bucket_half_count_magnitude_;
    std::int32_t sub_bucket_count_;
    std::int32_t sub_bucket_half_count_;
    std::int64_t sub_bucket_mask_;
    int bucket_count_;
    std::vector<std::int64_t> counts_;
    std::int64_t total_count_ = 0;
    std::int64_t min_ = INT64_MAX;
    std::int64_t max_ = 0;
    std::int64_t saturated_ = 0;
};

// Writes the HdrHistogram interval log format (as HistogramLogWriter does):
//   #[StartTime: 1700000000.000 (seconds since epoch), ...]
//   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//   Tag=response,0.000,1.000,812.345,HISTFAAAA...
// Interval_Max is written in units of max_value_divisor (1000.0 turns µs into ms, as the tools'
// default convention for latency logs).
class HistogramLogWriter {
  public:
    explicit HistogramLogWriter(std::ostream& out, double max_value_divisor = 1000.0);
    void write_header(double start_time_epoch_seconds, std::string_view comment = {});
    void write_interval(std::string_view tag, double start_seconds_since_start,
                        double length_seconds, const Histogram& h);

  private:
    std::ostream& out_;
    double divisor_;
};

struct LogInterval {
    std::string tag;
    double start_seconds = 0;
    double length_seconds = 0;
    Histogram histogram;
};
// Reads a log written by HistogramLogWriter (or by HdrHistogram's tools).
Result<std::vector<LogInterval>> read_histogram_log(std::istream& in,
                                                    std::string_view name = "<log>");

}  // namespace mediasim::core
