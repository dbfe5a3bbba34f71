#include "reference-server/faults.hpp"

#include <atomic>

namespace mediasim::server {

namespace {

constexpr FaultInfo kFaults[] = {
    {Fault::webhook_status, "webhook-status", "POST /voice answers HTTP 500"},
    {Fault::webhook_slow, "webhook-slow", "POST /voice answers after 2 s"},
    {Fault::webhook_content_type, "webhook-content-type", "TwiML served as text/plain"},
    {Fault::webhook_large, "webhook-large", "TwiML padded beyond 64 kB"},
    {Fault::twiml_malformed, "twiml-malformed", "the TwiML is cut short"},
    {Fault::twiml_no_stream, "twiml-no-stream", "<Say> and <Hangup/>, no <Stream>"},
    {Fault::twiml_http_url, "twiml-http-url", "<Stream url=\"http://...\">"},
    {Fault::twiml_query, "twiml-query", "a query string on the Stream url"},
    {Fault::twiml_parameter, "twiml-parameter", "a <Parameter> name given twice"},
    {Fault::twiml_connect_track, "twiml-connect-track", "<Connect><Stream track=\"both_tracks\">"},
    {Fault::twiml_start_last, "twiml-start-last", "(--flow fork) nothing after <Start>"},
    {Fault::status_callback, "status-callback", "POST /status answers HTTP 500"},
    {Fault::upgrade_refused, "upgrade-refused", "every WebSocket upgrade answered 403"},
    {Fault::no_signature_check, "no-signature-check", "signatures are not checked"},
    {Fault::binary_frame, "binary-frame", "the first media frame also sent as a binary frame"},
    {Fault::not_json, "not-json", "a text frame that is not JSON"},
    {Fault::unknown_event, "unknown-event", "an {\"event\":\"close\"} message"},
    {Fault::wrong_stream_sid, "wrong-stream-sid", "a media message with another streamSid"},
    {Fault::no_stream_sid, "no-stream-sid", "a media message without streamSid"},
    {Fault::bad_field, "bad-field", "a mark whose name is a number"},
    {Fault::extra_field, "extra-field", "media.track on a media message"},
    {Fault::bad_base64, "bad-base64", "a payload that is not base64"},
    {Fault::wav_header, "wav-header", "the first payload starts with a WAV header"},
    {Fault::huge_frames, "huge-frames", "audio sent in 2 s messages"},
    {Fault::empty_mark, "empty-mark", "every mark named \"\""},
    {Fault::stale_after_clear, "stale-after-clear", "1 s of audio right after each clear"},
    {Fault::after_stop, "after-stop", "a mark 400 ms after stop"},
    {Fault::talk_on_start, "talk-on-start", "audio and a mark on <Start> streams"},
    {Fault::dtmf_drop, "dtmf-drop", "a dtmf digit drops the TCP connection"},
    {Fault::midword_crash, "midword-crash", "stop while the caller speaks kills the server"},
    {Fault::close_early, "close-early", "every stream closed after 9 s"},
    {Fault::slow_reply, "slow-reply", "the echo bot answers after 2.5 s of silence"},
    {Fault::no_clear, "no-clear", "barge-in never sends clear"},
    {Fault::ahead, "ahead", "90 s of audio pushed at once (first stream)"},
    {Fault::overflow, "overflow", "11 minutes of audio pushed at once (first stream)"},
};

void replace_first(std::string& s, std::string_view from, std::string_view to) {
    if (auto at = s.find(from); at != std::string::npos) s.replace(at, from.size(), to);
}

}  // namespace

std::span<const FaultInfo> all_faults() {
    return kFaults;
}

std::optional<Fault> parse_fault(std::string_view name) {
    for (const auto& f : kFaults)
        if (name == f.name) return f.fault;
    return std::nullopt;
}

const char* fault_name(Fault f) {
    for (const auto& k : kFaults)
        if (k.fault == f) return k.name;
    return "none";
}

std::string fault_twiml(Fault f, std::string t) {
    switch (f) {
        case Fault::webhook_large:
            t += "<!--" + std::string(70 * 1024, 'x') + "-->";
            break;
        case Fault::twiml_malformed:
            t.resize(t.size() - 4);
            break;
        case Fault::twiml_no_stream:
            t = R"(<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello.</Say><Hangup/></Response>)";
            break;
        case Fault::twiml_http_url:
            replace_first(t, "url=\"ws://", "url=\"http://");
            replace_first(t, "url=\"wss://", "url=\"https://");
            break;
        case Fault::twiml_query:
            if (auto at = t.find("url=\""); at != std::string::npos)
                t.insert(t.find('"', at + 5), "?token=secret");
            break;
        case Fault::twiml_parameter:
            if (auto at = t.find("<Parameter "); at != std::string::npos)
                t.insert(at, t.substr(at, t.find("/>", at) + 2 - at));
            break;
        case Fault::twiml_connect_track:
            replace_first(t, "<Connect><Stream ", "<Connect><Stream track=\"both_tracks\" ");
            break;
        case Fault::twiml_start_last:
            if (auto at = t.find("</Start>"); at != std::string::npos)
                t = t.substr(0, at + 8) + "</Response>";
            break;
        default:
            break;
    }
    return t;
}

bool fault_first_stream() {
    static std::atomic<bool> taken{false};
    return !taken.exchange(true);
}

}  // namespace mediasim::server
