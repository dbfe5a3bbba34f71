// `mediasim-server --fault NAME`: a testing aid that makes the reference server break the Media
// Streams protocol in one chosen way, so that every case of `mediasim check` is shown to fail
// when it should (tests/simulator/check_faults_test.cpp runs the whole matrix). Never use it in
// production: a faulty server is the point.
//
// The hooks are few and small: the webhook answer (http_server.cpp), the upgrade, and what the
// media session sends (media_session.cpp, through the functions below).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mediasim::server {

enum class Fault {
    none,
    webhook_status,        // POST /voice answers 500
    webhook_slow,          // POST /voice answers after 2 s
    webhook_content_type,  // TwiML served as text/plain
    webhook_large,         // TwiML padded beyond 64 kB
    twiml_malformed,       // the TwiML is cut short (not well-formed)
    twiml_no_stream,       // <Say> and <Hangup/>, no <Stream>
    twiml_http_url,        // <Stream url="http://...">
    twiml_query,           // <Stream url="...?token=...">
    twiml_parameter,       // a <Parameter> name given twice
    twiml_connect_track,   // <Connect><Stream track="both_tracks">
    twiml_start_last,      // (with --flow fork) nothing after <Start>
    status_callback,       // POST /status answers 500
    upgrade_refused,       // every WebSocket upgrade answered 403
    no_signature_check,    // with an auth token, nothing is checked
    binary_frame,          // the first media frame also goes out as a binary frame
    not_json,              // a text frame that is not JSON
    unknown_event,         // {"event":"close",...}
    wrong_stream_sid,      // a media message with another stream's streamSid
    no_stream_sid,         // a media message without streamSid
    bad_field,             // a mark whose name is a number
    extra_field,           // media.track on a media message
    bad_base64,            // a payload that is not base64
    wav_header,            // the first payload starts with a WAV header
    huge_frames,           // audio in 2 s messages
    empty_mark,            // every mark named ""
    stale_after_clear,     // 1 s of audio right after each clear
    after_stop,            // a mark 400 ms after `stop`
    talk_on_start,         // audio and a mark on <Start> (unidirectional) streams
    dtmf_drop,             // a dtmf digit drops the TCP connection
    midword_crash,         // `stop` while the caller speaks kills the server
    close_early,           // every stream closed after 9 s
    slow_reply,            // the echo bot waits 2.5 s of silence before answering
    no_clear,              // barge-in never sends clear
    ahead,                 // 90 s of audio pushed at once (first stream only)
    overflow,              // 11 minutes of audio pushed at once (first stream only)
};

struct FaultInfo {
    Fault fault;
    const char* name;  // as given to --fault: "wav-header"
    const char* what;
};
std::span<const FaultInfo> all_faults();
std::optional<Fault> parse_fault(std::string_view name);
const char* fault_name(Fault f);

// The TwiML of POST /voice as the fault changes it.
std::string fault_twiml(Fault f, std::string twiml);
// True once per server process: the ahead/overflow faults load only the first stream.
bool fault_first_stream();

}  // namespace mediasim::server
