#include "core/protocol.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base64.hpp"

// Every heap allocation in this binary goes through here, so a test can count the allocations
// made by a stretch of code (the fast path must make none once warmed up).
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// These replacements pair malloc with free by design; GCC 12 at -O3 sees the inlined pair across
// the replaced operators and warns (a false positive for replaced global operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return ::operator new(n, t);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace mediasim::core {
namespace {

// ---- the spec's examples -------------------------------------------------------------------
// Copied verbatim from ../shared/spec/twilio-media-streams.md §2 and §3. The start and media
// examples are wrapped over several lines there; unwrap() joins the lines as they are on the
// wire. "AC…", "MZ…", "CA…" and the payload "/v7+/v7+…" are the spec's abbreviations.

const char* const kSpecConnected = R"({"event":"connected","protocol":"Call","version":"1.0.0"})";
const char* const kSpecStart = R"({"event":"start","sequenceNumber":"1",
 "start":{"accountSid":"AC…","streamSid":"MZ…","callSid":"CA…","tracks":["inbound"],
          "customParameters":{"FirstName":"Jane"},
          "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},
 "streamSid":"MZ…"})";
const char* const kSpecMedia = R"({"event":"media","sequenceNumber":"3",
 "media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/v7+/v7+…"},
 "streamSid":"MZ…"})";
const char* const kSpecDtmf =
    R"({"event":"dtmf","streamSid":"MZ…","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}})";
const char* const kSpecMark =
    R"({"event":"mark","sequenceNumber":"4","streamSid":"MZ…","mark":{"name":"my label"}})";
const char* const kSpecStop =
    R"({"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC…","callSid":"CA…"},"streamSid":"MZ…"})";
const char* const kSpecServerMedia =
    R"({"event":"media","streamSid":"MZ…","media":{"payload":"<base64 μ-law>"}})";
const char* const kSpecServerMark =
    R"({"event":"mark","streamSid":"MZ…","mark":{"name":"utt-17"}})";
const char* const kSpecServerClear = R"({"event":"clear","streamSid":"MZ…"})";

// Joins a wrapped example: each line break and the indentation after it go.
std::string unwrap(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n') {
            while (i + 1 < s.size() && s[i + 1] == ' ') ++i;
            continue;
        }
        out += s[i];
    }
    return out;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

const std::string kAccountSid = "AC0123456789abcdef0123456789abcdef";
const std::string kCallSid = "CA89abcdef0123456789abcdef01234567";
const std::string kStreamSid = "MZ0123456789abcdef0123456789abcdef";

// A 20 ms frame of μ-law 0xFE: 160 bytes, 216 base64 characters ending in "==" (spec §2).
std::string frame_payload() {
    const std::vector<std::uint8_t> bytes(160, 0xFE);
    return base64_encode(bytes);
}

// The example with its abbreviations filled in: full SIDs and a whole 20 ms payload.
std::string filled(std::string_view example) {
    std::string s = unwrap(example);
    replace_all(s, "AC…", kAccountSid);
    replace_all(s, "CA…", kCallSid);
    replace_all(s, "MZ…", kStreamSid);
    replace_all(s, "/v7+/v7+…", frame_payload());
    replace_all(s, "<base64 μ-law>", frame_payload());
    return s;
}

std::string twilio_round_trip(const std::string& text) {
    auto p = parse_twilio_message(text);
    if (!p) return "error: " + p.error().to_string();
    EXPECT_TRUE(p->extra_fields.empty()) << text;
    return to_json(p->message);
}

std::string server_round_trip(const std::string& text) {
    auto p = parse_server_message(text);
    if (!p) return "error: " + p.error().to_string();
    EXPECT_TRUE(p->extra_fields.empty()) << text;
    return to_json(p->message);
}

TEST(ProtocolSpecExamples, VerbatimExamplesRoundTripByteIdentical) {
    for (const char* ex : {kSpecConnected, kSpecStart, kSpecDtmf, kSpecMark, kSpecStop}) {
        const auto wire = unwrap(ex);
        EXPECT_EQ(twilio_round_trip(wire), wire);
    }
    for (const char* ex : {kSpecServerMark, kSpecServerClear}) {
        const auto wire = unwrap(ex);
        EXPECT_EQ(server_round_trip(wire), wire);
    }
}

TEST(ProtocolSpecExamples, AbbreviatedPayloadsAreNotBase64) {
    // The spec shortens payloads with "…" and "<base64 μ-law>": strict parsing says where.
    auto m = parse_twilio_message(unwrap(kSpecMedia));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().to_string(), "media.payload: invalid base64 character 0xE2 at position 8");
    auto s = parse_server_message(kSpecServerMedia);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().to_string(), "media.payload: invalid base64 character '<' at position 0");
}

TEST(ProtocolSpecExamples, FilledExamplesRoundTripByteIdentical) {
    for (const char* ex :
         {kSpecConnected, kSpecStart, kSpecMedia, kSpecDtmf, kSpecMark, kSpecStop}) {
        const auto wire = filled(ex);
        EXPECT_EQ(twilio_round_trip(wire), wire);
    }
    for (const char* ex : {kSpecServerMedia, kSpecServerMark, kSpecServerClear}) {
        const auto wire = filled(ex);
        EXPECT_EQ(server_round_trip(wire), wire);
    }
}

TEST(ProtocolSpecExamples, ParsedValues) {
    auto start = parse_twilio_message(filled(kSpecStart));
    ASSERT_TRUE(start.ok()) << start.error().to_string();
    const auto& s = std::get<StartMsg>(start->message);
    EXPECT_EQ(s.sequence_number, 1u);
    EXPECT_EQ(s.account_sid, kAccountSid);
    EXPECT_EQ(s.call_sid, kCallSid);
    EXPECT_EQ(s.stream_sid, kStreamSid);
    EXPECT_EQ(s.tracks, std::vector<Track>{Track::inbound});
    EXPECT_EQ(s.custom_parameters, (Parameters{{"FirstName", "Jane"}}));
    EXPECT_EQ(s.media_format, (MediaFormat{"audio/x-mulaw", 8000, 1}));

    auto media = parse_twilio_message(filled(kSpecMedia));
    ASSERT_TRUE(media.ok()) << media.error().to_string();
    const auto& m = std::get<MediaMsg>(media->message);
    EXPECT_EQ(m.sequence_number, 3u);
    EXPECT_EQ(m.track, Track::inbound);
    EXPECT_EQ(m.chunk, 1u);
    EXPECT_EQ(m.timestamp_ms, 20u);
    EXPECT_EQ(m.payload.size(), 216u);
    EXPECT_EQ(m.payload.substr(m.payload.size() - 2), "==");
    EXPECT_EQ(event_name(media->message), std::string("media"));

    auto dtmf = parse_twilio_message(filled(kSpecDtmf));
    ASSERT_TRUE(dtmf.ok());
    EXPECT_EQ(std::get<DtmfMsg>(dtmf->message).digit, '1');
    EXPECT_EQ(std::get<DtmfMsg>(dtmf->message).sequence_number, 5u);

    auto clear = parse_server_message(filled(kSpecServerClear));
    ASSERT_TRUE(clear.ok());
    EXPECT_EQ(std::get<ClearMsg>(clear->message).stream_sid, kStreamSid);
    EXPECT_EQ(event_name(clear->message), std::string("clear"));
}

// ---- every message, both directions --------------------------------------------------------

std::vector<TwilioMessage> twilio_samples() {
    StartMsg both;
    both.sequence_number = 1;
    both.stream_sid = kStreamSid;
    both.account_sid = kAccountSid;
    both.call_sid = kCallSid;
    both.tracks = {Track::inbound, Track::outbound};
    both.custom_parameters = {{"tenant", "42"}, {"note", "quote \" backslash \\ newline \n é"}};
    both.media_format = {"audio/x-mulaw", 8000, 1};
    StartMsg no_params = both;
    no_params.tracks = {Track::outbound};
    no_params.custom_parameters.clear();
    return {
        ConnectedMsg{},
        both,
        no_params,
        MediaMsg{2, kStreamSid, Track::inbound, 1, 0, frame_payload()},
        MediaMsg{18446744073709551615u, kStreamSid, Track::outbound, 7, 140, ""},
        DtmfMsg{5, kStreamSid, "inbound_track", '#'},
        DtmfMsg{6, kStreamSid, "inbound_track", '*'},
        MarkMsg{4, kStreamSid, "utt-17 \"quoted\" \t\x01"},
        StopMsg{9, kStreamSid, kAccountSid, kCallSid},
    };
}

std::vector<ServerMessage> server_samples() {
    return {
        ServerMediaMsg{kStreamSid, frame_payload()},
        ServerMarkMsg{kStreamSid, "utt-17"},
        ServerMarkMsg{kStreamSid, "ünïcödé ✓"},
        ClearMsg{kStreamSid},
    };
}

TEST(ProtocolMessages, TwilioToServerRoundTrip) {
    for (const auto& m : twilio_samples()) {
        const auto text = to_json(m);
        auto p = parse_twilio_message(text);
        ASSERT_TRUE(p.ok()) << text << " → " << p.error().to_string();
        EXPECT_EQ(p->message, m) << text;
        EXPECT_TRUE(p->extra_fields.empty());
        EXPECT_EQ(to_json(p->message), text);
        std::string appended = "prefix";
        append_json(m, appended);
        EXPECT_EQ(appended, "prefix" + text);
    }
}

TEST(ProtocolMessages, ServerToTwilioRoundTrip) {
    for (const auto& m : server_samples()) {
        const auto text = to_json(m);
        auto p = parse_server_message(text);
        ASSERT_TRUE(p.ok()) << text << " → " << p.error().to_string();
        EXPECT_EQ(p->message, m) << text;
        EXPECT_EQ(to_json(p->message), text);
    }
}

TEST(ProtocolMessages, ExactWireText) {
    EXPECT_EQ(
        to_json(TwilioMessage{MarkMsg{4, "MZ1", "a\"b\\c\nd\x1f"}}),
        R"({"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"a\"b\\c\nd\u001f"}})");
    EXPECT_EQ(to_json(ServerMessage{ServerMarkMsg{"MZ1", "x"}}),
              R"({"event":"mark","streamSid":"MZ1","mark":{"name":"x"}})");
    EXPECT_EQ(to_json(ServerMessage{ServerMediaMsg{"MZ1", "AAAA"}}),
              R"({"event":"media","streamSid":"MZ1","media":{"payload":"AAAA"}})");
    // Invalid UTF-8 handed to a serialiser still gives valid JSON.
    EXPECT_EQ(to_json(ServerMessage{ClearMsg{"MZ\xff"}}),
              R"({"event":"clear","streamSid":"MZ\ufffd"})");
    StartMsg two;
    two.stream_sid = "MZ1";
    two.account_sid = "AC1";
    two.call_sid = "CA1";
    two.tracks = {Track::inbound, Track::outbound};
    two.media_format = {"audio/x-mulaw", 8000, 1};
    EXPECT_EQ(
        to_json(TwilioMessage{two}),
        R"({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"})");
}

TEST(ProtocolMessages, FastBuildersMatchTheSerialisers) {
    std::vector<std::uint8_t> mulaw(160);
    for (std::size_t i = 0; i < mulaw.size(); ++i) mulaw[i] = static_cast<std::uint8_t>(i * 7);
    std::string out = "x";
    append_media_json(out, kStreamSid, 12, Track::outbound, 5, 80, mulaw);
    EXPECT_EQ(out, "x" + to_json(TwilioMessage{MediaMsg{12, kStreamSid, Track::outbound, 5, 80,
                                                        base64_encode(mulaw)}}));
    std::string server;
    append_server_media_json(server, kStreamSid, mulaw);
    EXPECT_EQ(server, to_json(ServerMessage{ServerMediaMsg{kStreamSid, base64_encode(mulaw)}}));
    auto back = parse_server_message(server);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(std::get<ServerMediaMsg>(back->message).payload, base64_encode(mulaw));
}

TEST(ProtocolMessages, ExtraFieldsAreReportedNotRejected) {
    auto s = parse_server_message(
        R"({"event":"media","streamSid":"MZ1","media":{"payload":"AAAA","track":"outbound"},"x":{"y":[1]}})");
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_EQ(s->extra_fields, (std::vector<std::string>{"media.track", "x"}));
    auto t = parse_twilio_message(
        R"({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1,"bitDepth":8},"foo":null},"streamSid":"MZ1"})");
    ASSERT_TRUE(t.ok()) << t.error().to_string();
    EXPECT_EQ(t->extra_fields,
              (std::vector<std::string>{"start.mediaFormat.bitDepth", "start.foo"}));
    // customParameters missing: read as none ([U] in the spec whether Twilio sends {}).
    EXPECT_TRUE(std::get<StartMsg>(t->message).custom_parameters.empty());
}

// ---- malformed frames ------------------------------------------------------------------------

struct Bad {
    bool server;  // parse as server → Twilio
    std::string text;
    std::string error;
};

const std::string kPay = "AAAA";
std::string media_with(std::string_view media_fields,
                       std::string_view top = R"("sequenceNumber":"3",)") {
    return std::string(R"({"event":"media",)") + std::string(top) + R"("media":{)" +
           std::string(media_fields) + R"(},"streamSid":"MZ1"})";
}
const std::string kMediaFields =
    R"("track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA")";
std::string start_with(std::string_view format, std::string_view tracks = R"(["inbound"])",
                       std::string_view params = "{}") {
    return std::string(
               R"({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":)") +
           std::string(tracks) + R"(,"customParameters":)" + std::string(params) +
           R"(,"mediaFormat":)" + std::string(format) + R"(},"streamSid":"MZ1"})";
}
const std::string kFormat = R"({"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1})";

std::vector<Bad> malformed() {
    return {
        // not JSON at all
        {false, "",
         "invalid JSON at byte 1: syntax error while parsing value - unexpected end of input; "
         "expected '[', '{', or a literal"},
        {false, R"({"event":"media",)",
         "invalid JSON at byte 18: syntax error while parsing object key - unexpected end of "
         "input; expected string literal"},
        {false, R"({"event":"media" "x":1})",
         "invalid JSON at byte 20: syntax error while parsing object - unexpected string literal; "
         "expected '}'"},
        {false, R"({"event":"mark"} trailing)",
         R"(invalid JSON at byte 20: syntax error while parsing value - invalid literal; last read: '"mark"} tra'; expected end of input)"},
        {false, "{\"event\":\"m\xff\"}",
         "invalid JSON at byte 12: syntax error while parsing value - invalid string: ill-formed "
         "UTF-8 byte; last read: '\"m\xff'"},
        {false, "\xEF\xBB\xBF{}", "invalid JSON at byte 1: byte order mark before the JSON text"},
        {false, std::string(R"({"event":"mark"})") + '\0', "invalid JSON at byte 17: NUL byte"},
        {false, "[1,2]", "expected a JSON object, got an array"},
        {false, "\"media\"", "expected a JSON object, got the string \"media\""},
        // the event
        {false, R"({"streamSid":"MZ1"})", "event: missing"},
        {false, R"({"event":7})", "event: expected a string, got the number 7"},
        {false, R"({"event":"foo"})", R"(event: unknown event "foo")"},
        {false, R"({"event":"closed","streamSid":"MZ1"})", R"(event: unknown event "closed")"},
        {true, R"({"event":"start"})", R"(event: unknown event "start")"},
        {false, R"({"event":"media","event":"media"})", "event: duplicate field"},
        // media
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":"20")"),
         "media.payload: missing"},
        {false, media_with(R"("track":"both","chunk":"1","timestamp":"20","payload":"AAAA")"),
         R"(media.track: expected "inbound" or "outbound", got "both")"},
        {false,
         media_with(R"("track":"inbound_track","chunk":"1","timestamp":"20","payload":"AAAA")"),
         R"(media.track: expected "inbound" or "outbound", got "inbound_track")"},
        {false, media_with(R"("track":1,"chunk":"1","timestamp":"20","payload":"AAAA")"),
         R"(media.track: expected "inbound" or "outbound", got the number 1)"},
        {false, media_with(R"("track":"inbound","chunk":1,"timestamp":"20","payload":"AAAA")"),
         "media.chunk: expected a string of decimal digits, got the number 1"},
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":20,"payload":"AAAA")"),
         "media.timestamp: expected a string of decimal digits, got the number 20"},
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":"-20","payload":"AAAA")"),
         R"(media.timestamp: expected a string of decimal digits, got "-20")"},
        {false, media_with(R"("track":"inbound","chunk":"","timestamp":"20","payload":"AAAA")"),
         R"(media.chunk: expected a string of decimal digits, got "")"},
        {false, media_with(R"("track":"inbound","chunk":"01","timestamp":"20","payload":"AAAA")"),
         R"(media.chunk: leading zero in "01")"},
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":"20","payload":"AAA!")"),
         "media.payload: invalid base64 character '!' at position 3"},
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":"20","payload":"AAAAA")"),
         "media.payload: base64 length 5 is not a multiple of 4"},
        {false, media_with(R"("track":"inbound","chunk":"1","timestamp":"20","payload":null)"),
         "media.payload: expected a string, got null"},
        {false, media_with(kMediaFields, R"("sequenceNumber":3,)"),
         "sequenceNumber: expected a string of decimal digits, got the number 3"},
        {false, media_with(kMediaFields, R"("sequenceNumber":"99999999999999999999",)"),
         R"(sequenceNumber: "99999999999999999999" is out of range)"},
        {false, media_with(kMediaFields, ""), "sequenceNumber: missing"},
        {false, media_with(kMediaFields + R"(,"chunk":"2")"), "media.chunk: duplicate field"},
        {false, R"({"event":"media","sequenceNumber":"3","media":"AAAA","streamSid":"MZ1"})",
         R"(media: expected an object, got the string "AAAA")"},
        {false,
         R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"}})",
         "streamSid: missing"},
        {false,
         R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"},"streamSid":true})",
         "streamSid: expected a string, got true"},
        // start
        {false, start_with(R"({"encoding":"audio/x-mulaw","sampleRate":"8000","channels":1})"),
         R"(start.mediaFormat.sampleRate: expected a number, got the string "8000")"},
        {false, start_with(R"({"encoding":"audio/x-mulaw","sampleRate":8000.5,"channels":1})"),
         "start.mediaFormat.sampleRate: expected a positive integer, got 8000.5"},
        {false, start_with(R"({"encoding":"audio/x-mulaw","sampleRate":8000,"channels":0})"),
         "start.mediaFormat.channels: expected a positive integer, got 0"},
        {false, start_with(R"({"encoding":"audio/x-mulaw","sampleRate":4294967296,"channels":1})"),
         "start.mediaFormat.sampleRate: 4294967296 is out of range"},
        {false, start_with(R"({"encoding":"audio/x-mulaw","sampleRate":8000})"),
         "start.mediaFormat.channels: missing"},
        {false, start_with(kFormat, R"(["inbound","both"])"),
         R"(start.tracks[1]: expected "inbound" or "outbound", got "both")"},
        {false, start_with(kFormat, R"(["inbound","inbound"])"),
         R"(start.tracks[1]: "inbound" is listed twice)"},
        {false, start_with(kFormat, "[]"),
         "start.tracks: expected at least one track, got an empty array"},
        {false, start_with(kFormat, R"("inbound")"),
         R"(start.tracks: expected an array, got the string "inbound")"},
        {false, start_with(kFormat, R"(["inbound"])", R"({"FirstName":3})"),
         "start.customParameters.FirstName: expected a string, got the number 3"},
        {false,
         R"({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ2","callSid":"CA1","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"})",
         R"(start.streamSid: "MZ2" differs from streamSid "MZ1")"},
        // dtmf, mark, stop, connected
        {false,
         R"({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"A"}})",
         R"(dtmf.digit: expected one of 0-9, * or #, got "A")"},
        {false,
         R"({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"12"}})",
         R"(dtmf.digit: expected one of 0-9, * or #, got "12")"},
        {false,
         R"({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":1}})",
         R"(dtmf.digit: expected one of 0-9, * or #, got the number 1)"},
        {false,
         R"({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"outbound_track","digit":"1"}})",
         R"(dtmf.track: expected "inbound_track", got "outbound_track")"},
        {false, R"({"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{}})",
         "mark.name: missing"},
        {false, R"({"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":["a"]}})",
         "mark.name: expected a string, got an array"},
        {false,
         R"({"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1"},"streamSid":"MZ1"})",
         "stop.callSid: missing"},
        {false, R"({"event":"connected","protocol":"Call"})", "version: missing"},
        // server → Twilio
        {true, R"({"event":"media","streamSid":"MZ1","media":{}})", "media.payload: missing"},
        {true, R"({"event":"media","media":{"payload":"AAAA"}})", "streamSid: missing"},
        {true, R"({"event":"media","streamSid":"MZ1","media":{"payload":"AA=A"}})",
         "media.payload: base64 data after padding at position 3"},
        {true, R"({"event":"mark","streamSid":"MZ1","mark":{"name":false}})",
         "mark.name: expected a string, got false"},
        {true, R"({"event":"clear"})", "streamSid: missing"},
        {true, R"({"event":"clear","streamSid":"MZ1","streamSid":"MZ1"})",
         "streamSid: duplicate field"},
        {true,
         R"({"event":"clear","streamSid":"MZ1","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})",
         "x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]["
         "0][0]: nested deeper than 32 levels"},
    };
}

TEST(ProtocolMalformed, EveryFrameGetsItsExactError) {
    const auto cases = malformed();
    EXPECT_GE(cases.size(), 25u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.text);
        if (c.server) {
            auto r = parse_server_message(c.text);
            ASSERT_FALSE(r.ok());
            EXPECT_EQ(r.error().to_string(), c.error);
        } else {
            auto r = parse_twilio_message(c.text);
            ASSERT_FALSE(r.ok());
            EXPECT_EQ(r.error().to_string(), c.error);
        }
    }
}

// ---- the fast path ---------------------------------------------------------------------------

// Frames for the fast/general comparison: valid and invalid, media and not, both directions.
std::vector<std::string> corpus() {
    std::vector<std::string> out;
    for (const char* ex : {kSpecConnected, kSpecStart, kSpecMedia, kSpecDtmf, kSpecMark, kSpecStop,
                           kSpecServerMedia, kSpecServerMark, kSpecServerClear}) {
        out.push_back(unwrap(ex));
        out.push_back(filled(ex));
        out.push_back(ex);  // with the spec's line breaks: whitespace is fine
    }
    for (const auto& m : twilio_samples()) out.push_back(to_json(m));
    for (const auto& m : server_samples()) out.push_back(to_json(m));
    for (const auto& c : malformed()) out.push_back(c.text);
    const std::string p = frame_payload();
    out.insert(
        out.end(),
        {
            // media with fields in another order, escaped keys and values, extras, whitespace
            R"({"streamSid":"MZ1","media":{"payload":"AAAA","timestamp":"20","chunk":"1","track":"outbound"},"sequenceNumber":"3","event":"media"})",
            R"({"ev\u0065nt":"media","sequenceNumber":"\u0033","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AA\u003d="},"streamSid":"MZ\"1"})",
            R"( { "event" : "media" , "sequenceNumber" : "3" , "media" : { "track" : "inbound" , "chunk" : "1" , "timestamp" : "20" , "payload" : "" } , "streamSid" : "MZ1" } )",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA","extra":{"a":[1,2.5,-3e2,true,false,null,"s"]}},"streamSid":"MZ1","x":1})",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA","extra":{"a":1,"a":2}},"streamSid":"MZ1"})",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"},"streamSid":"MZ1","x":tru})",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"},"streamSid":"MZ1"}})",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"},"streamSid":"MZ1","x":1e999})",
            R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"AAAA"},"streamSid":"MZ1","media":{}})",
            R"({"event":"media","sequenceNumber":"18446744073709551615","media":{"track":"inbound","chunk":"18446744073709551616","timestamp":"20","payload":"AAAA"},"streamSid":"MZ1"})",
            R"({"event":"media","streamSid":"MZ1","media":{"payload":")" + p +
                R"(","track":"inbound"}})",
            R"({"event":"media","streamSid":"MZ1","media":{"payload":"QR=="}})",
            R"({"event":"mark","streamSid":"MZ1","mark":{"name":"x"},"x":[})",
            "\xEF\xBB\xBF" + media_with(kMediaFields),                          // byte order mark
            media_with(kMediaFields) + std::string(1, '\0'),                    // trailing NUL
            media_with(kMediaFields, R"("sequenceNumber":"3","x":"\ud800",)"),  // lone surrogate
            media_with(kMediaFields, R"("sequenceNumber":"3","x":123456789012345678901234567890,)"),
            media_with(kMediaFields, R"("sequenceNumber":"3","x":-0.0e-5,"y":"\u0000",)"),
            media_with(kMediaFields, R"("sequenceNumber":"3","x":[],"y":{},"z":[{}],)"),
            R"({"event":"media"})",
            R"({"event":null})",
            "null",
            "{}",
            "[]",
            "123",
        });
    return out;
}

// Kind::other is the fast parser's answer for every well-formed frame whose event is not
// "media", valid or not (the caller then runs the general parser). True when the general
// parser's error is of that kind: about a field of a frame with some other event.
bool well_formed_not_media(const std::string& text, const Diagnostic& general_error) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return false;
    const auto ev = j.find("event");
    if (ev == j.end() || !ev->is_string() || *ev == "media") return false;
    return !general_error.path.empty() && general_error.message != "duplicate field" &&
           general_error.message.rfind("nested deeper", 0) != 0;
}

// Checks that the fast parser agrees with the general one on a frame.
void expect_agreement(FastParser& fast, const std::string& text, bool server) {
    SCOPED_TRACE((server ? "server: " : "twilio: ") + text);
    const auto kind = server ? fast.parse_server(text) : fast.parse_twilio(text);
    std::uint8_t decoded[1024];
    if (server) {
        auto g = parse_server_message(text);
        if (!g) {
            if (kind == FastParser::Kind::other) {
                EXPECT_TRUE(well_formed_not_media(text, g.error()));
            } else {
                ASSERT_EQ(kind, FastParser::Kind::invalid);
                EXPECT_EQ(fast.error().to_string(), g.error().to_string());
            }
        } else if (const auto* m = std::get_if<ServerMediaMsg>(&g->message)) {
            ASSERT_EQ(kind, FastParser::Kind::media);
            EXPECT_EQ(fast.server_media().stream_sid, m->stream_sid);
            EXPECT_EQ(fast.server_media().payload, m->payload);
        } else {
            EXPECT_EQ(kind, FastParser::Kind::other);
        }
    } else {
        auto g = parse_twilio_message(text);
        if (!g) {
            if (kind == FastParser::Kind::other) {
                EXPECT_TRUE(well_formed_not_media(text, g.error()));
            } else {
                ASSERT_EQ(kind, FastParser::Kind::invalid);
                EXPECT_EQ(fast.error().to_string(), g.error().to_string());
            }
        } else if (const auto* m = std::get_if<MediaMsg>(&g->message)) {
            ASSERT_EQ(kind, FastParser::Kind::media);
            const auto& v = fast.media();
            EXPECT_EQ(v.sequence_number, m->sequence_number);
            EXPECT_EQ(v.stream_sid, m->stream_sid);
            EXPECT_EQ(v.track, m->track);
            EXPECT_EQ(v.chunk, m->chunk);
            EXPECT_EQ(v.timestamp_ms, m->timestamp_ms);
            EXPECT_EQ(v.payload, m->payload);
        } else {
            EXPECT_EQ(kind, FastParser::Kind::other);
        }
    }
    if (kind == FastParser::Kind::media) {
        const auto payload = server ? fast.server_media().payload : fast.media().payload;
        std::uint8_t expected[1024];
        auto want = base64_decode(payload, expected);
        ASSERT_TRUE(want.ok());
        auto got = fast.decode_payload(decoded);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, *want);
        EXPECT_EQ(std::memcmp(decoded, expected, *got), 0);
    } else {
        EXPECT_FALSE(fast.decode_payload(decoded).ok());
    }
}

TEST(ProtocolFastParser, AgreesWithTheGeneralParser) {
    FastParser fast;
    const auto frames = corpus();
    for (const auto& text : frames) {
        expect_agreement(fast, text, false);
        expect_agreement(fast, text, true);
    }
    // Reused across calls, in both directions and after errors.
    for (const auto& text : frames) expect_agreement(fast, text, false);
}

TEST(ProtocolFastParser, MediaFrame) {
    FastParser fast;
    const auto text = filled(kSpecMedia);
    ASSERT_EQ(fast.parse_twilio(text), FastParser::Kind::media);
    EXPECT_EQ(fast.media().sequence_number, 3u);
    EXPECT_EQ(fast.media().chunk, 1u);
    EXPECT_EQ(fast.media().timestamp_ms, 20u);
    EXPECT_EQ(fast.media().stream_sid, kStreamSid);
    std::uint8_t mulaw[base64_decoded_max_size(216)];
    auto n = fast.decode_payload(mulaw);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(*n, 160u);
    for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(mulaw[i], 0xFE);
    EXPECT_EQ(fast.parse_twilio(filled(kSpecMark)), FastParser::Kind::other);
    EXPECT_EQ(fast.parse_twilio(R"({"event":"media","sequenceNumber":"3"})"),
              FastParser::Kind::invalid);
    EXPECT_EQ(fast.error().to_string(), "media: missing");
    FastParser moved = std::move(fast);
    EXPECT_EQ(moved.parse_server(filled(kSpecServerMedia)), FastParser::Kind::media);
}

// mediasim check reports extra fields on the server's media (warning 31951): the fast path
// flags them and the general parser names them.
TEST(ProtocolFastParser, ServerMediaFlagsExtraFields) {
    FastParser fast;
    EXPECT_EQ(
        fast.parse_server(R"({"event":"media","streamSid":"MZ1","media":{"payload":"AAAA"}})"),
        FastParser::Kind::media);
    EXPECT_FALSE(fast.server_media().extra_fields);
    const std::string extra =
        R"({"event":"media","streamSid":"MZ1","media":{"track":"outbound","payload":"AAAA"}})";
    EXPECT_EQ(fast.parse_server(extra), FastParser::Kind::media);
    EXPECT_TRUE(fast.server_media().extra_fields);
    auto general = parse_server_message(extra);
    ASSERT_TRUE(general.ok());
    EXPECT_EQ(general->extra_fields, (std::vector<std::string>{"media.track"}));
    EXPECT_EQ(fast.parse_server(
                  R"({"event":"media","streamSid":"MZ1","x":1,"media":{"payload":"AAAA"}})"),
              FastParser::Kind::media);
    EXPECT_TRUE(fast.server_media().extra_fields);
    EXPECT_EQ(
        fast.parse_server(R"({"event":"media","streamSid":"MZ1","media":{"payload":"AAAA"}})"),
        FastParser::Kind::media);
    EXPECT_FALSE(fast.server_media().extra_fields);
}

TEST(ProtocolFastParser, NoAllocationPerFrameOnceWarm) {
    std::vector<std::uint8_t> mulaw(160);
    for (std::size_t i = 0; i < mulaw.size(); ++i) mulaw[i] = static_cast<std::uint8_t>(i * 13);
    FastParser fast;
    std::string twilio_text, server_text;
    twilio_text.reserve(1024);
    server_text.reserve(1024);
    std::uint8_t decoded[256];
    std::size_t bytes = 0;
    auto one_round = [&](std::uint64_t i) {
        twilio_text.clear();
        append_media_json(twilio_text, kStreamSid, i + 2, Track::inbound, i + 1, 20 * i, mulaw);
        server_text.clear();
        append_server_media_json(server_text, kStreamSid, mulaw);
        bool ok = fast.parse_twilio(twilio_text) == FastParser::Kind::media &&
                  fast.media().chunk == i + 1;
        auto n = fast.decode_payload(decoded);
        ok = ok && n.ok() && *n == 160;
        bytes += ok ? *n : 0;
        ok = ok && fast.parse_server(server_text) == FastParser::Kind::media;
        auto m = fast.decode_payload(decoded);
        ok = ok && m.ok() && *m == 160;
        return ok;
    };
    for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(one_round(i));  // warm up
    g_allocations = 0;
    g_counting = true;
    bool all_ok = true;
    for (std::uint64_t i = 10; i < 1010; ++i) all_ok = one_round(i) && all_ok;
    g_counting = false;
    EXPECT_TRUE(all_ok);
    EXPECT_EQ(bytes, 160u * 1010);
    EXPECT_EQ(g_allocations.load(), 0);
    EXPECT_EQ(std::memcmp(decoded, mulaw.data(), 160), 0);

    // The counter does see allocations (the general parser makes plenty).
    g_counting = true;
    auto general = parse_twilio_message(twilio_text);
    g_counting = false;
    EXPECT_TRUE(general.ok());
    EXPECT_GT(g_allocations.load(), 0);
}

}  // namespace
}  // namespace mediasim::core
