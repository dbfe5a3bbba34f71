#include "reference-server/media_session.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <variant>

#include "core/base64.hpp"
#include "core/g711.hpp"
#include "core/ids.hpp"

namespace mediasim::server {

void CallDirectory::remember(const std::string& call_sid, Flow flow) {
    std::lock_guard lock(mu_);
    if (flows_.insert_or_assign(call_sid, flow).second) {
        if (order_.size() < capacity_) {
            order_.push_back(call_sid);
        } else {  // ring buffer: forget the oldest call
            flows_.erase(order_[next_evict_]);
            order_[next_evict_] = call_sid;
            next_evict_ = (next_evict_ + 1) % capacity_;
        }
    }
}

std::optional<Flow> CallDirectory::flow_of(const std::string& call_sid) const {
    std::lock_guard lock(mu_);
    auto it = flows_.find(call_sid);
    if (it == flows_.end()) return std::nullopt;
    return it->second;
}

namespace {

constexpr std::size_t kLoggedBadFramesPerStream = 5;
constexpr std::size_t kFrameBytes = 160;  // 20 ms of 8 kHz μ-law

// Which kind of fault a parser diagnostic describes.
BadFrame classify(const core::Diagnostic& d) {
    if (d.path.empty()) return BadFrame::invalid_json;
    if (d.path == "event") return BadFrame::unknown_event;
    if (d.path.ends_with("payload") && d.message.find("base64") != std::string::npos)
        return BadFrame::bad_base64;
    return BadFrame::bad_field;
}

}  // namespace

MediaSession::MediaSession(std::string path, MediaSessionDeps deps, MediaSink& sink)
    : path_(std::move(path)), deps_(deps), sink_(sink), opened_(Clock::now()) {}

MediaSession::~MediaSession() {
    on_closed("closed");
}

void MediaSession::bad(BadFrame why, std::string_view detail) {
    ++bad_[static_cast<std::size_t>(why)];
    ++bad_total_;
    deps_.metrics.bad_frame(why);
    if (bad_total_ <= kLoggedBadFramesPerStream) {
        deps_.log.warn("bad_frame", {{"call_sid", start_.call_sid},
                                     {"stream_sid", start_.stream_sid},
                                     {"path", path_},
                                     {"reason", to_string(why)},
                                     {"msg", detail}});
        if (bad_total_ == kLoggedBadFramesPerStream)
            deps_.log.warn("bad_frame_log_limit",
                           {{"call_sid", start_.call_sid},
                            {"msg", "further bad frames on this stream are counted, not logged"}});
    }
    if (recorder_) recorder_->event("error", fmt::format("{}: {}", to_string(why), detail));
}

void MediaSession::on_binary(std::size_t bytes) {
    deps_.metrics.frames_in.fetch_add(1);
    bad(BadFrame::binary_frame,
        fmt::format("a binary frame of {} bytes (Twilio sends only text frames)", bytes));
}

void MediaSession::on_text(std::string_view frame, Clock::time_point arrival) {
    deps_.metrics.frames_in.fetch_add(1);
    switch (parser_.parse_twilio(frame)) {
        case core::FastParser::Kind::media: {
            // The fast parser has checked the payload already.
            const auto& m = parser_.media();
            decoded_.resize(core::base64_decoded_max_size(m.payload.size()));
            auto n = parser_.decode_payload(decoded_.data());
            if (!n) return bad(BadFrame::bad_base64, n.error().to_string());
            return on_media(m, std::span<const std::uint8_t>(decoded_.data(), *n), arrival);
        }
        case core::FastParser::Kind::invalid:
            return bad(classify(parser_.error()), parser_.error().to_string());
        case core::FastParser::Kind::other:
            break;
    }
    auto parsed = core::parse_twilio_message(frame);
    if (!parsed) return bad(classify(parsed.error()), parsed.error().to_string());
    if (auto* m = std::get_if<core::MediaMsg>(&parsed->message)) {
        // A valid media frame beyond the fast path's limits (escapes, key order...).
        decoded_.resize(core::base64_decoded_max_size(m->payload.size()));
        auto n = core::base64_decode(m->payload, decoded_.data());
        if (!n) return bad(BadFrame::bad_base64, "media.payload: " + n.error().message);
        const core::MediaView view{m->sequence_number, m->stream_sid,   m->track,
                                   m->chunk,           m->timestamp_ms, m->payload};
        return on_media(view, std::span<const std::uint8_t>(decoded_.data(), *n), arrival);
    }
    on_message(parsed->message);
}

bool MediaSession::check_sequence_and_sid(std::uint64_t seq, std::string_view stream_sid,
                                          std::string_view event) {
    if (stopped_) {
        bad(BadFrame::out_of_order, fmt::format("{} after stop", event));
        return false;
    }
    if (!started_) {
        bad(BadFrame::out_of_order, fmt::format("{} before start", event));
        return false;
    }
    if (stream_sid != start_.stream_sid) {
        bad(BadFrame::wrong_stream_sid,
            fmt::format("{} #{}: streamSid \"{}\" is not this stream's \"{}\"", event, seq,
                        stream_sid, start_.stream_sid));
        return false;
    }
    if (seq != last_seq_ + 1)
        bad(BadFrame::sequence_gap, fmt::format("{}: sequenceNumber {} after {} (expected {})",
                                                event, seq, last_seq_, last_seq_ + 1));
    last_seq_ = seq;  // resynchronise either way: one gap is counted once
    return true;
}

std::uint64_t MediaSession::stream_now_ms() const {
    // The stream's clock is the caller's media timestamps; the bot answers "now".
    return tracks_[0].frames ? last_inbound_ts_ms_ + 20 : 0;
}

void MediaSession::on_media(const core::MediaView& m, std::span<const std::uint8_t> mulaw,
                            Clock::time_point arrival) {
    deps_.metrics.media_frames_in.fetch_add(1);
    if (!check_sequence_and_sid(m.sequence_number, m.stream_sid, "media")) return;
    if (std::find(start_.tracks.begin(), start_.tracks.end(), m.track) == start_.tracks.end())
        return bad(BadFrame::unexpected_track,
                   fmt::format("media #{} on track \"{}\", which start.tracks does not list",
                               m.sequence_number, core::to_string(m.track)));

    auto& ts = tracks_[static_cast<int>(m.track)];
    if (m.chunk != ts.last_chunk + 1)
        bad(BadFrame::chunk_gap,
            fmt::format("media #{}: {} chunk {} after {} (expected {})", m.sequence_number,
                        core::to_string(m.track), m.chunk, ts.last_chunk, ts.last_chunk + 1));
    ts.last_chunk = m.chunk;
    ++ts.frames;
    ts.bytes += mulaw.size();
    // RFC 3550 §6.4.1: J += (|D| - J) / 16, D the change in transit time between frames.
    const double arrival_ms = std::chrono::duration<double, std::milli>(arrival - opened_).count();
    const double transit = arrival_ms - static_cast<double>(m.timestamp_ms);
    if (ts.has_transit)
        ts.jitter_ms += (std::abs(transit - ts.last_transit_ms) - ts.jitter_ms) / 16;
    // Queueing before storage (Metrics::observe_frame_queue_us). The frame goes to the
    // recorder in this same handler, right after it was read (`arrival`): what it waited for
    // is the socket, while this server's thread was busy with other streams.
    const auto handed_us =
        std::chrono::duration_cast<std::chrono::microseconds>(arrival - opened_).count();
    const std::int64_t transit_us = handed_us - static_cast<std::int64_t>(m.timestamp_ms) * 1000;
    if (!ts.has_transit || transit_us < ts.best_transit_us) ts.best_transit_us = transit_us;
    deps_.metrics.observe_frame_queue_us(transit_us - ts.best_transit_us);
    ts.has_transit = true;
    ts.last_transit_ms = transit;

    if (m.track == core::Track::inbound) {
        last_inbound_ts_ms_ = m.timestamp_ms;
        if (deps_.fault == Fault::midword_crash || deps_.fault == Fault::drop_crash) {
            pcm_.resize(mulaw.size());
            core::ulaw_decode(mulaw, pcm_.data());
            caller_loud_ = Vad::frame_dbfs(pcm_) > deps_.bot.vad_threshold_dbfs;
            if (caller_loud_) last_loud_ts_ms_ = m.timestamp_ms;
        }
        if ((deps_.fault == Fault::burst_close || deps_.fault == Fault::burst_deaf) &&
            fault_burst(arrival))
            return;
        if (recorder_) recorder_->inbound_audio(mulaw, m.timestamp_ms);
        if ((transcription_ || bot_) && !fault_deaf_) {
            pcm_.resize(mulaw.size());
            core::ulaw_decode(mulaw, pcm_.data());
            CallerFrame f{mulaw, pcm_, m.timestamp_ms};
            if (transcription_) {
                f.edge = transcription_->push(pcm_, m.timestamp_ms);
                f.speaking = transcription_->speaking();
            } else {
                f.edge = vad_->push(pcm_);
                f.speaking = vad_->speaking();
            }
            if (bot_) bot_->on_caller_audio(f, *this);
        }
    } else if (recorder_) {
        recorder_->outbound_audio(mulaw, m.timestamp_ms);
    }
}

void MediaSession::on_message(core::TwilioMessage& msg) {
    std::visit(
        [&](auto& m) {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, core::ConnectedMsg>) {
                if (connected_ || started_)
                    bad(BadFrame::out_of_order, "a second connected message");
                connected_ = true;
            } else if constexpr (std::is_same_v<M, core::StartMsg>) {
                on_start(m);
            } else if constexpr (std::is_same_v<M, core::DtmfMsg>) {
                on_dtmf(m);
            } else if constexpr (std::is_same_v<M, core::MarkMsg>) {
                on_mark(m);
            } else if constexpr (std::is_same_v<M, core::StopMsg>) {
                on_stop(m);
            }
        },
        msg);
}

void MediaSession::on_start(core::StartMsg& m) {
    if (started_) return bad(BadFrame::out_of_order, "a second start message");
    if (!connected_) bad(BadFrame::out_of_order, "start before connected");
    if (m.sequence_number != 1)
        bad(BadFrame::sequence_gap,
            fmt::format("start: sequenceNumber {} (expected 1)", m.sequence_number));
    if (m.media_format != core::MediaFormat{})
        bad(BadFrame::bad_field,
            fmt::format("start.mediaFormat: {} {} Hz {} channel(s), expected audio/x-mulaw "
                        "8000 Hz mono",
                        m.media_format.encoding, m.media_format.sample_rate,
                        m.media_format.channels));
    started_ = true;
    start_ = m;
    last_seq_ = m.sequence_number;
    if (auto flow = deps_.calls.flow_of(m.call_sid))
        bidirectional_ = *flow != Flow::fork;
    else  // a call this server did not answer: <Connect> is the only way to get inbound alone
        bidirectional_ = m.tracks.size() == 1 && m.tracks[0] == core::Track::inbound;

    deps_.metrics.streams_total.fetch_add(1);
    deps_.metrics.streams_active.fetch_add(1);
    std::string tracks;
    for (auto t : m.tracks) tracks += (tracks.empty() ? "" : ",") + std::string(core::to_string(t));
    deps_.log.info("stream_start", {{"call_sid", m.call_sid},
                                    {"stream_sid", m.stream_sid},
                                    {"tracks", tracks},
                                    {"bidirectional", bidirectional_ ? "true" : "false"},
                                    {"path", path_}});
    if (deps_.storage) {
        StreamInfo info;
        info.stream_sid = m.stream_sid;
        info.call_sid = m.call_sid;
        info.account_sid = m.account_sid;
        info.tracks = m.tracks;
        info.bidirectional = bidirectional_;
        info.custom_parameters = m.custom_parameters;
        info.path = path_;
        recorder_ = deps_.storage->begin_stream(info);
        if (recorder_) recorder_->event("start", fmt::format("tracks={}", tracks));
    }
    if (deps_.speech && deps_.speech->transcription) start_transcription(m);
    if (!transcription_) vad_.emplace(vad_options(deps_.bot));
    if (bidirectional_ && deps_.bot.kind == "echo") {
        bot_ = make_echo_bot(deps_.bot);
        bot_->on_start(*this);
    } else if (bidirectional_ && deps_.bot.kind == "assistant" && deps_.speech) {
        bot_ = make_assistant_bot(deps_.bot, *deps_.speech);
        bot_->on_start(*this);
    }
    switch (deps_.fault) {
        case Fault::talk_on_start:
            if (!bidirectional_) {
                const auto tone = make_tone(440.0, 1000);
                for (std::size_t off = 0; off < tone.size(); off += kFrameBytes) {
                    out_.clear();
                    core::append_server_media_json(
                        out_, start_.stream_sid,
                        std::span<const std::uint8_t>(tone).subspan(off, kFrameBytes));
                    sink_.send_text(out_);
                }
                sink_.send_text(core::to_json(
                    core::ServerMessage{core::ServerMarkMsg{start_.stream_sid, "unheard"}}));
            }
            break;
        case Fault::ahead:
        case Fault::overflow:
            if (bidirectional_ && fault_first_stream()) {
                const std::vector<std::uint8_t> second(8000, 0xFF);
                const int seconds = deps_.fault == Fault::ahead ? 90 : 660;
                for (int i = 0; i < seconds; ++i) {
                    out_.clear();
                    core::append_server_media_json(out_, start_.stream_sid, second);
                    sink_.send_text(out_);
                }
            }
            break;
        case Fault::close_early:
            sink_.after(std::chrono::seconds(9), [this] { sink_.close_stream(false); });
            break;
        default:
            break;
    }
}

void MediaSession::start_transcription(const core::StartMsg& m) {
    const auto& speech = *deps_.speech;
    Hints hints;
    const auto flow = deps_.calls.flow_of(m.call_sid);
    const std::string flow_name = flow ? std::string(to_string(*flow)) : speech.default_flow;
    if (auto it = speech.hints_by_flow.find(flow_name); it != speech.hints_by_flow.end())
        hints = it->second;
    mailbox_ = std::make_shared<Mailbox>();
    mailbox_->sink = &sink_;
    mailbox_->session = this;
    // On a worker thread: store the segment (Storage is thread-safe and outlives the pool's
    // work), then hand it to the session's thread for the bot.
    transcription_ = speech.transcription->open_stream(
        std::move(hints),
        [box = mailbox_, storage = deps_.storage, &log = deps_.log, call_sid = m.call_sid,
         stream_sid = m.stream_sid](const TranscriptEvent& e) {
            if (!e.error.empty()) {
                log.warn("transcription_error",
                         {{"call_sid", call_sid}, {"stream_sid", stream_sid}, {"error", e.error}});
                return;
            }
            if (e.text.empty()) {
                if (e.final)
                    log.info("transcript_empty", {{"call_sid", call_sid},
                                                  {"stream_sid", stream_sid},
                                                  {"start", fmt::format("{:.2f}", e.start_seconds)},
                                                  {"end", fmt::format("{:.2f}", e.end_seconds)}});
                return;
            }
            if (storage) {
                TranscriptSegment seg;
                seg.call_sid = call_sid;
                seg.stream_sid = stream_sid;
                seg.track = "inbound";
                seg.final = e.final;
                seg.text = e.text;
                seg.start_seconds = e.start_seconds;
                seg.end_seconds = e.end_seconds;
                storage->add_transcript(seg);
            }
            if (e.final)
                log.info("transcript", {{"call_sid", call_sid},
                                        {"stream_sid", stream_sid},
                                        {"start", fmt::format("{:.2f}", e.start_seconds)},
                                        {"end", fmt::format("{:.2f}", e.end_seconds)},
                                        {"text", e.text}});
            std::lock_guard lock(box->mu);
            if (!box->sink) return;
            box->sink->post([box, e] {
                // On the session's thread; the session may have finished meanwhile.
                MediaSession* s = nullptr;
                {
                    std::lock_guard l(box->mu);
                    s = box->session;
                }
                if (s) s->on_transcript(e);
            });
        });
}

void MediaSession::on_transcript(const TranscriptEvent& e) {
    if (bot_ && !finished_) bot_->on_transcript(e, *this);
}

void MediaSession::on_dtmf(const core::DtmfMsg& m) {
    if (!check_sequence_and_sid(m.sequence_number, m.stream_sid, "dtmf")) return;
    deps_.metrics.dtmf_in.fetch_add(1);
    deps_.log.info("dtmf", {{"call_sid", start_.call_sid},
                            {"stream_sid", start_.stream_sid},
                            {"digit", std::string_view(&m.digit, 1)}});
    if (recorder_) recorder_->event("dtmf", fmt::format("digit={}", m.digit));
    if (deps_.fault == Fault::dtmf_drop) return sink_.close_stream(true);
    if (bot_) bot_->on_dtmf(m.digit, *this);
}

void MediaSession::on_mark(const core::MarkMsg& m) {
    if (!check_sequence_and_sid(m.sequence_number, m.stream_sid, "mark")) return;
    auto it = std::find(marks_sent_.begin(), marks_sent_.end(), m.name);
    if (it == marks_sent_.end())
        return bad(BadFrame::unknown_mark,
                   fmt::format("mark #{}: \"{}\" was never sent on this stream (or was already "
                               "echoed)",
                               m.sequence_number, m.name));
    marks_sent_.erase(it);
    if (recorder_) recorder_->event("mark_echoed", fmt::format("name={}", m.name));
    if (bot_) bot_->on_mark(m.name, *this);
}

void MediaSession::on_stop(const core::StopMsg& m) {
    if (!check_sequence_and_sid(m.sequence_number, m.stream_sid, "stop")) return;
    stopped_ = true;
    if (recorder_) recorder_->event("stop", "");
    if (deps_.fault == Fault::midword_crash && caller_loud_) {
        deps_.log.warn("fault_crash", {{"call_sid", start_.call_sid},
                                       {"msg", "--fault midword-crash: stop mid-word, exiting"}});
        std::_Exit(70);
    }
    if (deps_.fault == Fault::after_stop)
        sink_.after(std::chrono::milliseconds(400), [this] {
            sink_.send_text(core::to_json(
                core::ServerMessage{core::ServerMarkMsg{start_.stream_sid, "after-stop"}}));
        });
    finish("stop");
}

bool MediaSession::fault_burst(Clock::time_point arrival) {
    // 25 caller frames (500 ms of audio) within 50 ms: frames arriving ten times faster than
    // real time, as they do after a network pause. A faulty server takes that for an attack.
    auto& oldest = fault_arrivals_[fault_inbound_ % fault_arrivals_.size()];
    const bool burst = fault_inbound_++ >= fault_arrivals_.size() &&
                       arrival - oldest < std::chrono::milliseconds(50) && !fault_deaf_;
    oldest = arrival;
    if (!burst) return false;
    deps_.log.warn("fault_burst", {{"call_sid", start_.call_sid},
                                   {"msg", fmt::format("--fault {}: frames faster than real time",
                                                       fault_name(deps_.fault))}});
    fault_deaf_ = true;  // once: burst-deaf stops hearing, burst-close stops the stream
    if (deps_.fault == Fault::burst_deaf) return false;
    sink_.close_stream(false);
    return true;
}

void MediaSession::on_closed(std::string_view why) {
    // --fault drop-crash: the connection lost (no stop) within 300 ms of the caller's speech.
    if (deps_.fault == Fault::drop_crash && started_ && !stopped_ && tracks_[0].frames > 0 &&
        last_loud_ts_ms_ > 0 && last_inbound_ts_ms_ - last_loud_ts_ms_ <= 300) {
        deps_.log.warn("fault_crash",
                       {{"call_sid", start_.call_sid},
                        {"msg", "--fault drop-crash: connection lost mid-word, exiting"}});
        std::_Exit(70);
    }
    if (started_ && !stopped_ && !finished_)
        deps_.log.warn(
            "stream_closed_without_stop",
            {{"call_sid", start_.call_sid}, {"stream_sid", start_.stream_sid}, {"why", why}});
    finish(why);
}

void MediaSession::finish(std::string_view how) {
    if (finished_ || !started_) return;
    finished_ = true;
    bot_.reset();
    if (transcription_) {
        transcription_->finish();  // the last utterance is still recognised and stored
        transcription_.reset();
    }
    if (mailbox_) {
        std::lock_guard lock(mailbox_->mu);
        mailbox_->sink = nullptr;
        mailbox_->session = nullptr;
    }
    const auto& in = tracks_[0];
    const auto& out = tracks_[1];
    deps_.metrics.streams_active.fetch_sub(1);
    if (in.frames > 1) deps_.metrics.observe_jitter_ms(in.jitter_ms);
    deps_.log.info("stream_end", {{"call_sid", start_.call_sid},
                                  {"stream_sid", start_.stream_sid},
                                  {"how", how},
                                  {"inbound_frames", std::to_string(in.frames)},
                                  {"outbound_frames", std::to_string(out.frames)},
                                  {"jitter_ms", fmt::format("{:.2f}", in.jitter_ms)},
                                  {"bad_frames", std::to_string(bad_total_)}});
    if (recorder_) {
        recorder_->finish(how);
        recorder_.reset();
    }
}

void MediaSession::play(std::span<const std::uint8_t> mulaw) {
    if (finished_) return;
    if (recorder_) recorder_->outbound_audio(mulaw, stream_now_ms());
    const std::size_t step = deps_.fault == Fault::huge_frames ? 16'000 : kFrameBytes;
    for (std::size_t off = 0; off < mulaw.size(); off += step) {
        const auto frame = mulaw.subspan(off, std::min(step, mulaw.size() - off));
        if (deps_.fault != Fault::none && !fault_media_sent_) {
            fault_media_sent_ = true;
            fault_first_media(frame);
        }
        out_.clear();
        core::append_server_media_json(out_, start_.stream_sid, frame);
        sink_.send_text(out_);
        deps_.metrics.frames_out.fetch_add(1);
        deps_.metrics.media_frames_out.fetch_add(1);
    }
}

void MediaSession::mark(std::string_view name) {
    if (finished_) return;
    if (deps_.fault == Fault::empty_mark) name = "";
    marks_sent_.emplace_back(name);
    sink_.send_text(core::to_json(
        core::ServerMessage{core::ServerMarkMsg{start_.stream_sid, std::string(name)}}));
    deps_.metrics.frames_out.fetch_add(1);
    deps_.metrics.marks_out.fetch_add(1);
    if (recorder_) recorder_->event("mark_sent", fmt::format("name={}", name));
}

void MediaSession::clear() {
    if (finished_ || deps_.fault == Fault::no_clear) return;
    sink_.send_text(core::to_json(core::ServerMessage{core::ClearMsg{start_.stream_sid}}));
    deps_.metrics.frames_out.fetch_add(1);
    deps_.metrics.clears_out.fetch_add(1);
    deps_.log.info("barge_in_clear",
                   {{"call_sid", start_.call_sid}, {"stream_sid", start_.stream_sid}});
    if (recorder_) {
        recorder_->outbound_clear(stream_now_ms());
        recorder_->event("clear", "");
    }
    if (deps_.fault == Fault::stale_after_clear) play(make_tone(440.0, 1000));
}

void MediaSession::fault_first_media(std::span<const std::uint8_t> frame) {
    const std::string& sid = start_.stream_sid;
    std::string valid;
    core::append_server_media_json(valid, sid, frame);
    const std::string payload = core::base64_encode(frame);
    switch (deps_.fault) {
        case Fault::binary_frame:
            return sink_.send_binary(valid);
        case Fault::not_json:
            return sink_.send_text("media follows");
        case Fault::unknown_event:
            return sink_.send_text(fmt::format(R"({{"event":"close","streamSid":"{}"}})", sid));
        case Fault::wrong_stream_sid:
            return sink_.send_text(
                fmt::format(R"({{"event":"media","streamSid":"MZ{}","media":{{"payload":"{}"}}}})",
                            std::string(32, '0'), payload));
        case Fault::no_stream_sid:
            return sink_.send_text(
                fmt::format(R"({{"event":"media","media":{{"payload":"{}"}}}})", payload));
        case Fault::bad_field:
            return sink_.send_text(
                fmt::format(R"({{"event":"mark","streamSid":"{}","mark":{{"name":42}}}})", sid));
        case Fault::extra_field:
            return sink_.send_text(fmt::format(
                R"({{"event":"media","streamSid":"{}","media":{{"track":"outbound","payload":"{}"}}}})",
                sid, payload));
        case Fault::bad_base64:
            return sink_.send_text(fmt::format(
                R"({{"event":"media","streamSid":"{}","media":{{"payload":"not base64!"}}}})",
                sid));
        case Fault::wav_header: {
            std::vector<std::uint8_t> wav = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E'};
            wav.insert(wav.end(), frame.begin(), frame.end());
            std::string m;
            core::append_server_media_json(m, sid, wav);
            return sink_.send_text(m);
        }
        default:
            return;
    }
}

}  // namespace mediasim::server
