#include "simulator/playout.hpp"

#include <algorithm>

#include "core/g711.hpp"

namespace mediasim::sim {

namespace {
constexpr std::int64_t kNanosPerSample = 1'000'000'000 / Playout::kBytesPerSecond;  // 125 µs
}

Playout::Playout(TimePoint origin, bool record, std::chrono::milliseconds underrun_window)
    : origin_(origin),
      record_(record),
      underrun_window_samples_(underrun_window.count() * kBytesPerSecond / 1000) {}

std::int64_t Playout::sample_of(TimePoint t) const {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin_).count();
    if (ns <= 0) return 0;
    return ns / kNanosPerSample;
}

Playout::TimePoint Playout::time_of(std::int64_t sample) const {
    return origin_ + std::chrono::nanoseconds(sample * kNanosPerSample);
}

Playout::Pushed Playout::push_audio(TimePoint now, std::span<const std::uint8_t> mulaw) {
    Pushed r;
    if (mulaw.empty()) return r;
    advance(now);
    const std::int64_t s = sample_of(now);
    bytes_received_ += mulaw.size();
    std::int64_t start = busy_until_;
    if (start <= s) {
        start = s;
        r.started_speaking = true;
        if (last_audio_end_ >= 0 && s > last_audio_end_ &&
            s - last_audio_end_ <= underrun_window_samples_)
            r.underrun = std::chrono::microseconds((s - last_audio_end_) * kNanosPerSample / 1000);
    }
    // Join to the last segment when contiguous (servers often send 160-byte frames).
    if (!segments_.empty() && segments_.back().end() == start) {
        auto& b = segments_.back().bytes;
        b.insert(b.end(), mulaw.begin(), mulaw.end());
    } else {
        Segment seg;
        seg.start = start;
        seg.bytes.assign(mulaw.begin(), mulaw.end());
        segments_.push_back(std::move(seg));
    }
    busy_until_ = start + static_cast<std::int64_t>(mulaw.size());
    last_audio_end_ = busy_until_;
    return r;
}

void Playout::push_mark(TimePoint now, std::string name) {
    advance(now);
    const std::int64_t s = sample_of(now);
    if (busy_until_ <= s && marks_.empty()) {
        echoes_.push_back({std::move(name), now, now, false});
        return;
    }
    marks_.push_back({std::move(name), now, std::max(busy_until_, s)});
}

std::size_t Playout::clear(TimePoint now) {
    advance(now);
    const std::int64_t s = sample_of(now);
    std::size_t dropped = 0;
    for (auto& seg : segments_) {
        // advance() has accounted everything before s; what is left was never played.
        dropped += seg.bytes.size() - seg.played;
    }
    segments_.clear();
    bytes_dropped_ += dropped;
    for (auto& m : marks_) echoes_.push_back({std::move(m.name), m.received, now, true});
    marks_.clear();
    busy_until_ = s;
    if (last_audio_end_ > s) last_audio_end_ = s;
    return dropped;
}

void Playout::record_until(std::int64_t sample) {
    // Account play-out of [recorded_until_, sample): segment bytes or silence.
    while (recorded_until_ < sample) {
        if (!segments_.empty()) {
            auto& seg = segments_.front();
            std::int64_t pos = seg.start + static_cast<std::int64_t>(seg.played);
            if (pos > recorded_until_) {
                // Silence until the segment starts (or until `sample`).
                std::int64_t to = std::min(pos, sample);
                if (record_)
                    recorded_.insert(recorded_.end(),
                                     static_cast<std::size_t>(to - recorded_until_),
                                     core::kUlawSilence);
                recorded_until_ = to;
                continue;
            }
            std::int64_t to = std::min(seg.end(), sample);
            auto n = static_cast<std::size_t>(to - pos);
            if (record_)
                recorded_.insert(recorded_.end(),
                                 seg.bytes.begin() + static_cast<std::ptrdiff_t>(seg.played),
                                 seg.bytes.begin() + static_cast<std::ptrdiff_t>(seg.played + n));
            seg.played += n;
            bytes_played_ += n;
            recorded_until_ = to;
            if (seg.played == seg.bytes.size()) segments_.pop_front();
        } else {
            if (record_)
                recorded_.insert(recorded_.end(),
                                 static_cast<std::size_t>(sample - recorded_until_),
                                 core::kUlawSilence);
            recorded_until_ = sample;
        }
    }
}

void Playout::advance(TimePoint now) {
    const std::int64_t s = sample_of(now);
    record_until(s);
    while (!marks_.empty() && marks_.front().due <= s) {
        auto& m = marks_.front();
        echoes_.push_back({std::move(m.name), m.received, time_of(m.due), false});
        marks_.pop_front();
    }
}

std::vector<Playout::Echo> Playout::take_echoes() {
    std::vector<Echo> out;
    out.swap(echoes_);
    return out;
}

std::optional<Playout::TimePoint> Playout::next_mark_due() const {
    if (marks_.empty()) return std::nullopt;
    return time_of(marks_.front().due);
}

std::size_t Playout::buffered_bytes(TimePoint now) const {
    std::int64_t s = sample_of(now);
    return busy_until_ > s ? static_cast<std::size_t>(busy_until_ - s) : 0;
}

std::vector<std::uint8_t> Playout::take_recorded() {
    std::vector<std::uint8_t> out;
    out.swap(recorded_);
    return out;
}

}  // namespace mediasim::sim
