#include "reference-server/metrics.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>

namespace mediasim::server {

const char* to_string(BadFrame b) {
    switch (b) {
        case BadFrame::invalid_json:
            return "invalid_json";
        case BadFrame::unknown_event:
            return "unknown_event";
        case BadFrame::bad_field:
            return "bad_field";
        case BadFrame::bad_base64:
            return "bad_base64";
        case BadFrame::wrong_stream_sid:
            return "wrong_stream_sid";
        case BadFrame::sequence_gap:
            return "sequence_gap";
        case BadFrame::chunk_gap:
            return "chunk_gap";
        case BadFrame::unexpected_track:
            return "unexpected_track";
        case BadFrame::out_of_order:
            return "out_of_order";
        case BadFrame::binary_frame:
            return "binary_frame";
        case BadFrame::unknown_mark:
            return "unknown_mark";
        case BadFrame::count_:
            break;
    }
    return "unknown";
}

const char* to_string(Limit l) {
    switch (l) {
        case Limit::max_streams:
            return "max_streams";
        case Limit::message_too_big:
            return "message_too_big";
        case Limit::idle_timeout:
            return "idle_timeout";
        case Limit::http_timeout:
            return "http_timeout";
        case Limit::body_too_large:
            return "body_too_large";
        case Limit::header_too_large:
            return "header_too_large";
        case Limit::send_queue_full:
            return "send_queue_full";
        case Limit::write_timeout:
            return "write_timeout";
        case Limit::count_:
            break;
    }
    return "unknown";
}

void Metrics::sample_rates(double seconds) {
    if (!(seconds > 0)) return;
    const auto in = frames_in.load(), out = frames_out.load();
    frames_in_per_second.store(static_cast<double>(in - last_frames_in_) / seconds);
    frames_out_per_second.store(static_cast<double>(out - last_frames_out_) / seconds);
    last_frames_in_ = in;
    last_frames_out_ = out;
}

void Metrics::observe_jitter_ms(double jitter_ms) {
    if (!(jitter_ms >= 0)) jitter_ms = 0;  // NaN guard
    for (std::size_t i = 0; i < kJitterBucketsMs.size(); ++i)
        if (jitter_ms <= kJitterBucketsMs[i]) jitter_buckets_[i].fetch_add(1);
    jitter_count_.fetch_add(1);
    const auto us = static_cast<std::uint64_t>(std::llround(jitter_ms * 1000.0));
    jitter_sum_us_.fetch_add(us);
    auto prev = jitter_max_us_.load();
    while (us > prev && !jitter_max_us_.compare_exchange_weak(prev, us)) {
    }
}

void Metrics::observe_frame_queue_us(std::int64_t us_signed) {
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, us_signed));
    std::size_t i = 0;
    while (i < kQueueBucketsMs.size() && static_cast<double>(us) > kQueueBucketsMs[i] * 1000.0) ++i;
    queue_buckets_[i].fetch_add(1, std::memory_order_relaxed);
    queue_count_.fetch_add(1, std::memory_order_relaxed);
    queue_sum_us_.fetch_add(us, std::memory_order_relaxed);
    auto prev = queue_max_us_.load(std::memory_order_relaxed);
    while (us > prev && !queue_max_us_.compare_exchange_weak(prev, us)) {
    }
}

std::uint64_t Metrics::frame_queue_over_ms(double ms) const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < queue_buckets_.size(); ++i)
        if (i >= kQueueBucketsMs.size() || kQueueBucketsMs[i] > ms) n += queue_buckets_[i].load();
    return n;
}

std::uint64_t resident_memory_bytes() {
    std::ifstream in("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    if (!(in >> size >> resident)) return 0;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::string Metrics::render() const {
    std::string out;
    const auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v) {
        out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
    };
    const auto gauge = [&](std::string_view name, std::string_view help, auto v) {
        out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
    };
    counter("mediasim_server_calls_total", "Voice webhooks answered with TwiML.", calls.load());
    counter("mediasim_server_streams_total", "Media streams started.", streams_total.load());
    gauge("mediasim_server_streams_active", "Media streams started and not yet ended.",
          streams_active.load());
    counter("mediasim_server_websocket_connections_total", "WebSocket upgrades accepted.",
            connections_ws.load());
    counter("mediasim_server_frames_in_total", "Text frames received on the media endpoint.",
            frames_in.load());
    counter("mediasim_server_media_frames_in_total", "Media frames received.",
            media_frames_in.load());
    counter("mediasim_server_frames_out_total", "Frames sent to Twilio (media, mark, clear).",
            frames_out.load());
    counter("mediasim_server_media_frames_out_total", "Media frames sent to Twilio.",
            media_frames_out.load());
    counter("mediasim_server_marks_out_total", "Marks sent to Twilio.", marks_out.load());
    counter("mediasim_server_clears_out_total", "Clear messages sent (barge-in).",
            clears_out.load());
    counter("mediasim_server_dtmf_in_total", "DTMF digits received.", dtmf_in.load());
    counter("mediasim_server_signature_rejected_total",
            "Requests refused with 403 for a missing or invalid X-Twilio-Signature.",
            signature_rejected.load());
    counter("mediasim_server_http_requests_total", "HTTP requests (webhooks, API, upgrades).",
            http_requests.load());
    counter("mediasim_server_http_errors_total", "HTTP answers with a 4xx or 5xx status.",
            http_errors.load());

    out +=
        "# HELP mediasim_server_bad_frames_total Frames rejected, by reason.\n"
        "# TYPE mediasim_server_bad_frames_total counter\n";
    for (std::size_t i = 0; i < kBadFrameKinds; ++i)
        out += fmt::format("mediasim_server_bad_frames_total{{reason=\"{}\"}} {}\n",
                           to_string(static_cast<BadFrame>(i)), bad_frames_[i].load());

    gauge("mediasim_server_frames_in_per_second", "Frames received per second (last second).",
          fmt::format("{:.1f}", frames_in_per_second.load()));
    gauge("mediasim_server_frames_out_per_second", "Frames sent per second (last second).",
          fmt::format("{:.1f}", frames_out_per_second.load()));
    counter("mediasim_server_frames_dropped_total",
            "Frames to Twilio dropped because it was not reading (send queue full).",
            frames_dropped_out.load());
    counter("mediasim_server_websocket_errors_total",
            "Media streams ended by a socket or protocol error.", websocket_errors.load());
    out +=
        "# HELP mediasim_server_limit_hits_total Limits enforced, by limit.\n"
        "# TYPE mediasim_server_limit_hits_total counter\n";
    for (std::size_t i = 0; i < kLimitKinds; ++i)
        out += fmt::format("mediasim_server_limit_hits_total{{limit=\"{}\"}} {}\n",
                           to_string(static_cast<Limit>(i)), limit_hits_[i].load());

    out +=
        "# HELP mediasim_server_stream_jitter_ms Interarrival jitter of ended streams "
        "(RFC 3550 estimator, inbound track).\n"
        "# TYPE mediasim_server_stream_jitter_ms histogram\n";
    for (std::size_t i = 0; i < kJitterBucketsMs.size(); ++i)
        out += fmt::format("mediasim_server_stream_jitter_ms_bucket{{le=\"{}\"}} {}\n",
                           kJitterBucketsMs[i], jitter_buckets_[i].load());
    out += fmt::format("mediasim_server_stream_jitter_ms_bucket{{le=\"+Inf\"}} {}\n",
                       jitter_count_.load());
    out += fmt::format("mediasim_server_stream_jitter_ms_sum {:.3f}\n",
                       static_cast<double>(jitter_sum_us_.load()) / 1000.0);
    out += fmt::format("mediasim_server_stream_jitter_ms_count {}\n", jitter_count_.load());
    gauge("mediasim_server_stream_jitter_max_ms", "Largest jitter of any ended stream.",
          fmt::format("{:.3f}", static_cast<double>(jitter_max_us_.load()) / 1000.0));
    out +=
        "# HELP mediasim_server_frame_queue_ms How long each media frame was queued before it "
        "was handed to storage: its arrival at the recorder against the stream's best transit "
        "(timestamp + least arrival-minus-timestamp on its track).\n"
        "# TYPE mediasim_server_frame_queue_ms histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kQueueBucketsMs.size(); ++i) {
        cumulative += queue_buckets_[i].load();
        out += fmt::format("mediasim_server_frame_queue_ms_bucket{{le=\"{}\"}} {}\n",
                           kQueueBucketsMs[i], cumulative);
    }
    cumulative += queue_buckets_.back().load();
    out += fmt::format("mediasim_server_frame_queue_ms_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    out += fmt::format("mediasim_server_frame_queue_ms_sum {:.3f}\n",
                       static_cast<double>(queue_sum_us_.load()) / 1000.0);
    out += fmt::format("mediasim_server_frame_queue_ms_count {}\n", cumulative);
    gauge("mediasim_server_frame_queue_max_ms", "Longest any media frame was queued.",
          fmt::format("{:.3f}", static_cast<double>(queue_max_us_.load()) / 1000.0));
    gauge("mediasim_server_resident_memory_bytes", "Resident set size of the server process.",
          resident_memory_bytes());
    return out;
}

}  // namespace mediasim::server
