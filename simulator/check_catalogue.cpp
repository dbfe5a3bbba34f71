// The catalogue of `mediasim check`: every case, its spec reference, severity and evidence.
// docs/conformance.md is generated from this table (`mediasim check --list --markdown`).
#include <fmt/format.h>

#include "simulator/check.hpp"

namespace mediasim::sim {

namespace {

constexpr Severity must = Severity::must;
constexpr Severity should = Severity::should;

constexpr CaseInfo kCases[] = {
    // ---- webhook and TwiML -------------------------------------------------------------------
    {"webhook.status", "webhook", "the voice webhook answers HTTP 200", "§5.1", must,
     "The signed POST of a new inbound call (CallStatus=ringing). Any other status ends the call "
     "on Twilio (error 11200)."},
    {"webhook.timeout", "webhook", "the webhook answers within Twilio's time limit", "§5.1, §8",
     must,
     "Time from the POST to the whole answer; Twilio gives up after 15 s (10 s to connect), "
     "error 11205. `--webhook-timeout` lowers the limit for testing."},
    {"webhook.content_type", "webhook", "TwiML is served as text/xml or application/xml", "§4.2",
     must, "The Content-Type of the answer; anything else is error 12300 (text/html is accepted)."},
    {"webhook.size", "webhook", "the TwiML is at most 64 kB", "§4.2, §8", must,
     "The body size; Twilio refuses larger documents (error 11750)."},
    {"webhook.signature", "webhook", "an unsigned webhook is refused", "§6, §10.8", should,
     "With --auth-token the server claims to check X-Twilio-Signature: the same POST without "
     "the header must not get 200 TwiML. Skipped without --auth-token."},
    {"twiml.valid", "twiml", "the answer is valid TwiML", "§4", must,
     "Well-formed XML with a <Response> root, known verbs and valid attributes (Twilio: 12100 / "
     "12200). A problem that a more specific twiml.* case reports is left to that case."},
    {"twiml.stream", "twiml", "the TwiML opens a Media Stream", "§1, §4.1", must,
     "A <Connect><Stream> or <Start><Stream> among the verbs; without one no stream ever opens."},
    {"twiml.stream_url", "twiml", "the Stream url is an absolute or relative ws/wss URL", "§4.1",
     must,
     "The url attribute resolves against the webhook URL to a ws:// or wss:// URL with a host "
     "(Twilio: 31922 / 31923)."},
    {"twiml.stream_wss", "twiml", "the Stream url is wss:// when the webhook is https://",
     "§1, §4.1", must,
     "Twilio connects only to wss:// (31922). Skipped when the webhook itself is plain http:// "
     "(a local test, where ws:// is what the server can offer)."},
    {"twiml.stream_query", "twiml", "no query string in the Stream url", "§4.1, §10.3", should,
     "Twilio drops the query of a stream URL; data belongs in <Parameter>."},
    {"twiml.parameters", "twiml", "<Parameter> names are non-empty and unique", "§4.1", should,
     "Each <Parameter> has a name and a value; a repeated name leaves one value in "
     "customParameters."},
    {"twiml.connect_track", "twiml", "<Connect><Stream> asks for inbound_track only", "§4.1", must,
     "<Connect> allows only inbound_track; any other track fails the stream (error 31941)."},
    {"twiml.start_not_last", "twiml", "<Start><Stream> is not the last verb", "§4.1, §10.10", must,
     "<Start> does not block: when nothing follows it the document ends and Twilio hangs up at "
     "once."},
    {"twiml.status_callback", "twiml", "the stream statusCallback answers 2xx", "§5.3", should,
     "The signed stream-started / stream-stopped requests to the <Stream statusCallback>. "
     "Skipped when the TwiML names none."},
    // ---- handshake ---------------------------------------------------------------------------
    {"handshake.upgrade", "handshake", "the signed WebSocket upgrade is accepted", "§1, §5.2, §7",
     must,
     "The upgrade Twilio sends (X-Twilio-Signature, no subprotocol) is answered 101; refused, "
     "unreachable or not 101 ends the stream (31901-31920)."},
    {"handshake.unsigned_refused", "handshake", "an unsigned upgrade is refused", "§5.2, §6, §10.8",
     should,
     "With --auth-token the server claims to check signatures: an upgrade without "
     "X-Twilio-Signature must not be answered 101. Skipped without --auth-token."},
    {"handshake.bad_signature_refused", "handshake",
     "an upgrade signed with another token is "
     "refused",
     "§5.2, §6", should,
     "As handshake.unsigned_refused, with a signature made from a different auth token."},
    // ---- what the server sends -----------------------------------------------------------------
    {"messages.text", "messages", "every frame is a text frame", "§1, §7", must,
     "A binary frame is dropped by Twilio (warning 31950): whatever it carried never plays."},
    {"messages.json", "messages", "every frame is one JSON object", "§3, §7", must,
     "Anything else is dropped (warning 31951)."},
    {"messages.known_events", "messages", "only media, mark and clear are sent", "§3, §7", must,
     "An unknown or missing event is dropped (31951); what it meant never happens."},
    {"messages.stream_sid", "messages", "every message carries this stream's streamSid",
     "§3, §10.12", must, "A missing or wrong streamSid gets the message dropped (31951)."},
    {"messages.fields", "messages", "required fields are present and well typed", "§3", must,
     "media.payload and mark.name are strings; a message missing them is dropped (31951)."},
    {"messages.extra_fields", "messages", "no fields beyond the spec", "§3, §7", should,
     "Extra fields such as media.track are among the causes of warning 31951."},
    {"media.base64", "media", "media payloads are valid base64", "§3", must,
     "Standard padded base64; an undecodable payload cannot play."},
    {"media.no_header", "media", "payloads are headerless μ-law (no WAV/MP3 header)", "§3, §10.2",
     must, "A payload starting with RIFF or ID3 is a file, not μ-law: it plays as noise."},
    {"media.frame_size", "media", "media messages have sensible sizes", "§3", should,
     "Every payload holds 1 byte to 1 s (8000 bytes) of audio; 160-byte (20 ms) frames are "
     "customary, huge messages make marks and clear coarse."},
    {"marks.names", "marks", "mark names are non-empty and not reused while pending", "§3, §10.5",
     should,
     "An empty name, or a name still pending, makes the echo ambiguous: the server cannot tell "
     "which audio has played."},
    {"clear.stale_audio", "clear", "no stale audio right after a clear", "§3, §10.4", should,
     "In the conversation, audio arriving within 300 ms after a clear (more than 100 ms of it) "
     "is the old answer still being sent: the caller hears it after barging in. Skipped when no "
     "clear came."},
    {"stop.nothing_after", "stop", "nothing is sent after stop", "§2, §10.12", should,
     "In the conversation, frames arriving more than 250 ms after `stop` (the client keeps "
     "reading 750 ms, as the socket may stay open; a server that leaves it open is fine)."},
    {"unidirectional.silent", "unidirectional", "nothing is sent on a <Start> stream", "§3, §10.1",
     must,
     "On a unidirectional stream Twilio plays no media and echoes no mark: a server talking "
     "there is never heard. Needs a <Start> stream (from the TwiML, or --stream-mode start)."},
    // ---- behaviour ---------------------------------------------------------------------------
    {"behaviour.dtmf", "behaviour", "the stream survives a dtmf message", "§2", must,
     "After the caller presses 1 the server keeps the connection (no drop without a close "
     "frame, 31903) for the rest of the call."},
    {"behaviour.both_tracks", "behaviour", "a both_tracks <Start> stream is served to the end",
     "§2, §4.1, §10.9", must,
     "Inbound and outbound media interleaved, chunk counted per track: the server keeps the "
     "stream until the caller hangs up. Needs a both_tracks <Start> stream (from the TwiML, or "
     "--stream-mode start)."},
    {"behaviour.hangup_mid_word", "behaviour",
     "a caller hanging up mid-word leaves the server "
     "serving",
     "§2", must,
     "`stop` arrives 0.7 s into the caller's words; a call placed right after must still connect "
     "and stream."},
    {"behaviour.long_call", "behaviour", "a 10-minute call stays up", "§8", must,
     "One call held for --long-duration (600 s with --long): the server neither closes nor drops "
     "it. Skipped unless --long or --long-duration is given."},
    {"behaviour.concurrent", "behaviour", "50 calls at once are all served", "§8", must,
     "--concurrency calls (50) started together: every one connects its stream and none fails "
     "at the transport (protocol faults are reported by their own cases)."},
    {"behaviour.response_time", "behaviour", "the server answers the caller in time", "§8", should,
     "Where the server talks back after the caller's words, its first audio comes within "
     "--response-within (2 s). Skipped when it never answers (a listen-only server)."},
    {"behaviour.barge_in", "behaviour", "talking over the bot gets a clear", "§3, §10.4", should,
     "The caller speaks while the bot's audio plays: a clear should come within 1.5 s, or stale "
     "audio keeps playing. Skipped when the bot was not talking at that moment."},
    // ---- timing ------------------------------------------------------------------------------
    {"timing.ahead", "timing", "audio is not pushed far ahead of real time", "§3, §8", should,
     "The most audio ever queued at Twilio (sent minus played) stays under 60 s; far more makes "
     "barge-in and marks slow to settle."},
    {"timing.buffer", "timing", "queued audio stays within Twilio's buffer", "§3, §7, §8", must,
     "Twilio queues about 10 minutes of audio and drops the rest (warning 31931): the queue "
     "never exceeds 600 s."},
};

}  // namespace

const char* to_string(Severity s) {
    return s == Severity::must ? "must" : "should";
}

std::span<const CaseInfo> catalogue() {
    return kCases;
}

bool glob_match(std::string_view p, std::string_view t) {
    std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
            ++pi;
            ++ti;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

namespace {
// Tags such as <Stream> would vanish in rendered Markdown.
std::string markdown_text(std::string_view text) {
    std::string out;
    for (char ch : text) out += ch == '<' ? std::string("&lt;") : std::string(1, ch);
    return out;
}
}  // namespace

std::string catalogue_markdown() {
    std::string md =
        "# Conformance cases of `mediasim check`\n\n"
        "Generated from `simulator/check_catalogue.cpp` by `mediasim check --list --markdown`; "
        "a test keeps\nthis file equal to the catalogue. Spec sections refer to\n"
        "[twilio-media-streams.md](../../shared/spec/twilio-media-streams.md). Severity "
        "`must`: Twilio would fail or\nmisplay the call; `should`: it works but is fragile or "
        "wasteful. `mediasim check` exits 1 when a\n`must` case fails, 0 otherwise (a failed "
        "`should` case is reported as WARN).\n";
    std::string group;
    for (const auto& c : kCases) {
        if (group != c.group) {
            group = c.group;
            md += fmt::format(
                "\n## {}\n\n| id | severity | spec | case | evidence |\n"
                "|---|---|---|---|---|\n",
                group);
        }
        md += fmt::format("| `{}` | {} | {} | {} | {} |\n", c.id, to_string(c.severity), c.spec,
                          markdown_text(c.title), markdown_text(c.evidence));
    }
    return md;
}

}  // namespace mediasim::sim
