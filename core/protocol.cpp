#include "core/protocol.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/base64.hpp"

namespace mediasim::core {

namespace {

using Json = nlohmann::ordered_json;

// Frames nest three levels deep; anything much deeper is not a Media Streams message. Both
// parsers enforce the same limit so that they accept the same frames.
constexpr int kMaxDepth = 32;

// ---- JSON text output --------------------------------------------------------------------------

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
        if (i + k >= s.size()) return false;
        const auto b = static_cast<unsigned char>(s[i + k]);
        return b >= lo && b <= hi;
    };
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
    if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    if (b0 == 0xF0) return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
    if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

// Appends s as a JSON string literal. UTF-8 passes through as is (like Twilio and nlohmann's
// default dump); invalid UTF-8 becomes U+FFFD so the output is always valid JSON.
void append_quoted(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0;  // start of the pending run of bytes that need no escaping
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0x80) {
            if (const auto n = utf8_sequence_length(s, i); n != 0) {
                i += n;
                continue;
            }
        }
        out.append(s.data() + run, i - run);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                    out.append(esc, sizeof esc);
                } else {
                    out += "\\ufffd";  // invalid UTF-8 byte
                }
        }
        run = ++i;
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

void append_uint(std::string& out, std::uint64_t v) {
    char buf[20];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_uint_string(std::string& out, std::uint64_t v) {
    out += '"';
    append_uint(out, v);
    out += '"';
}

// The one writer of a Twilio → server media frame; `write_payload` appends the base64 text.
template <class WritePayload>
void append_media_frame(std::string& out, std::string_view stream_sid, std::uint64_t seq,
                        Track track, std::uint64_t chunk, std::uint64_t timestamp_ms,
                        WritePayload&& write_payload) {
    out += R"({"event":"media","sequenceNumber":)";
    append_uint_string(out, seq);
    out += track == Track::inbound ? R"(,"media":{"track":"inbound","chunk":)"
                                   : R"(,"media":{"track":"outbound","chunk":)";
    append_uint_string(out, chunk);
    out += R"(,"timestamp":)";
    append_uint_string(out, timestamp_ms);
    out += R"(,"payload":")";
    write_payload();
    out += R"("},"streamSid":)";
    append_quoted(out, stream_sid);
    out += '}';
}

template <class WritePayload>
void append_server_media_frame(std::string& out, std::string_view stream_sid,
                               WritePayload&& write_payload) {
    out += R"({"event":"media","streamSid":)";
    append_quoted(out, stream_sid);
    out += R"(,"media":{"payload":")";
    write_payload();
    out += R"("}})";
}

// Base64 written straight into the string: one resize within the reserved capacity.
void append_base64(std::string& out, std::span<const std::uint8_t> bytes) {
    const auto at = out.size();
    out.resize(at + base64_encoded_size(bytes.size()));
    base64_encode(bytes, out.data() + at);
}

// A base64 string that came from a message: appended as is unless it needs escaping.
void append_payload_text(std::string& out, std::string_view payload) {
    std::string quoted;
    const bool plain = std::all_of(payload.begin(), payload.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
    });
    if (plain) {
        out += payload;
        return;
    }
    append_quoted(quoted, payload);
    out.append(quoted, 1, quoted.size() - 2);
}

// ---- general parser ----------------------------------------------------------------------------

// Thrown inside this file only; parse_* turn it into a Diagnostic.
struct FieldError {
    std::string path;
    std::string message;
};

[[noreturn]] void fail(std::string path, std::string message) {
    throw FieldError{std::move(path), std::move(message)};
}

std::string join(std::string_view parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    std::string p(parent);
    p += '.';
    p += key;
    return p;
}

// A string value quoted for an error message, shortened when long.
std::string quote_for_message(std::string_view s) {
    constexpr std::size_t kMax = 40;
    bool cut = false;
    if (s.size() > kMax) {
        std::size_t n = kMax;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // UTF-8 boundary
        s = s.substr(0, n);
        cut = true;
    }
    std::string out;
    append_quoted(out, s);
    if (cut) out.insert(out.size() - 1, "...");
    return out;
}

// "the string \"8000\"", "the number 8000", "an object", ...
std::string describe(const Json& v) {
    switch (v.type()) {
        case Json::value_t::string:
            return "the string " + quote_for_message(v.get_ref<const std::string&>());
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float:
            return "the number " + v.dump();
        case Json::value_t::boolean:
            return v.get<bool>() ? "true" : "false";
        case Json::value_t::null:
            return "null";
        case Json::value_t::array:
            return v.empty() ? "an empty array" : "an array";
        case Json::value_t::object:
            return v.empty() ? "an empty object" : "an object";
        default:
            return "an unsupported value";
    }
}

// For "expected X or Y, got ..." where a string is the expected type: strings are shown bare.
std::string describe_choice(const Json& v) {
    if (v.is_string()) return quote_for_message(v.get_ref<const std::string&>());
    return describe(v);
}

class ObjectReader {
  public:
    ObjectReader(const Json& obj, std::string path, std::vector<std::string>& extras)
        : obj_(obj), path_(std::move(path)), extras_(extras) {}

    const Json& required(std::string_view key) {
        known_.push_back(key);
        const auto it = obj_.find(std::string(key));
        if (it == obj_.end()) fail(join(path_, key), "missing");
        return *it;
    }
    const Json* optional(std::string_view key) {
        known_.push_back(key);
        const auto it = obj_.find(std::string(key));
        return it == obj_.end() ? nullptr : &*it;
    }

    std::string string(std::string_view key) {
        const Json& v = required(key);
        if (!v.is_string()) fail(join(path_, key), "expected a string, got " + describe(v));
        return v.get<std::string>();
    }

    // sequenceNumber, chunk, timestamp: decimal integers sent as JSON strings.
    std::uint64_t decimal_string(std::string_view key) {
        const Json& v = required(key);
        const auto path = join(path_, key);
        if (!v.is_string()) fail(path, "expected a string of decimal digits, got " + describe(v));
        const auto& s = v.get_ref<const std::string&>();
        const bool digits = !s.empty() && std::all_of(s.begin(), s.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) fail(path, "expected a string of decimal digits, got " + quote_for_message(s));
        if (s.size() > 1 && s[0] == '0') fail(path, "leading zero in " + quote_for_message(s));
        std::uint64_t out = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
        if (r.ec != std::errc{}) fail(path, quote_for_message(s) + " is out of range");
        return out;
    }

    // sampleRate, channels: positive JSON integers.
    int positive_int(std::string_view key) {
        const Json& v = required(key);
        const auto path = join(path_, key);
        if (!v.is_number()) fail(path, "expected a number, got " + describe(v));
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0)
            fail(path, "expected a positive integer, got " + v.dump());
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT32_MAX))
            fail(path, v.dump() + " is out of range");
        return static_cast<int>(v.get<std::uint64_t>());
    }

    ObjectReader object(std::string_view key) {
        const Json& v = required(key);
        const auto path = join(path_, key);
        if (!v.is_object()) fail(path, "expected an object, got " + describe(v));
        return ObjectReader(v, path, extras_);
    }

    const std::string& path() const { return path_; }

    // Every field not read is an extra (31951 territory): recorded, not an error.
    void finish() {
        for (const auto& [key, value] : obj_.items()) {
            if (std::find(known_.begin(), known_.end(), key) == known_.end())
                extras_.push_back(join(path_, key));
        }
    }

  private:
    const Json& obj_;
    std::string path_;
    std::vector<std::string>& extras_;
    std::vector<std::string_view> known_;
};

Track read_track(const Json& v, const std::string& path) {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (s == "inbound") return Track::inbound;
        if (s == "outbound") return Track::outbound;
    }
    fail(path, R"(expected "inbound" or "outbound", got )" + describe_choice(v));
}

void check_payload(std::string_view payload, const std::string& path) {
    std::vector<std::uint8_t> scratch(base64_decoded_max_size(payload.size()) + 3);
    auto r = base64_decode(payload, scratch.data());
    if (!r) fail(path, r.error().message);
}

// Parses the text into an ordered DOM, rejecting duplicate keys and deep nesting (the fast parser
// rejects the same frames). Throws FieldError.
Json parse_dom(std::string_view text) {
    struct Level {
        std::string path;
        bool array = false;
        std::size_t index = 0;
        std::vector<std::string> keys;
    };
    std::vector<Level> stack;
    std::string pending_key;
    std::optional<FieldError> structural;

    auto child_path = [&]() -> std::string {
        if (stack.empty()) return {};
        auto& top = stack.back();
        if (top.array) return top.path + '[' + std::to_string(top.index) + ']';
        return join(top.path, pending_key);
    };
    auto child_done = [&] {
        if (!stack.empty() && stack.back().array) ++stack.back().index;
    };

    Json::parser_callback_t cb = [&](int /*depth*/, Json::parse_event_t ev, Json& parsed) {
        using E = Json::parse_event_t;
        switch (ev) {
            case E::object_start:
            case E::array_start: {
                auto path = child_path();
                if (static_cast<int>(stack.size()) >= kMaxDepth && !structural)
                    structural = FieldError{
                        path, "nested deeper than " + std::to_string(kMaxDepth) + " levels"};
                stack.push_back(Level{std::move(path), ev == E::array_start, 0, {}});
                break;
            }
            case E::key: {
                pending_key = parsed.get<std::string>();
                auto& keys = stack.back().keys;
                if (std::find(keys.begin(), keys.end(), pending_key) != keys.end()) {
                    if (!structural) structural = FieldError{child_path(), "duplicate field"};
                } else {
                    keys.push_back(pending_key);
                }
                break;
            }
            case E::object_end:
            case E::array_end:
                stack.pop_back();
                child_done();
                break;
            case E::value:
                child_done();
                break;
        }
        return !structural;  // stop building the DOM once the frame is known to be bad
    };

    // nlohmann skips a leading byte order mark and stops at a NUL byte; neither is JSON that
    // Twilio sends, and the fast parser rejects both, so both parsers reject them.
    if (text.starts_with("\xEF\xBB\xBF"))
        fail("", "invalid JSON at byte 1: byte order mark before the JSON text");
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
        fail("", "invalid JSON at byte " + std::to_string(nul + 1) + ": NUL byte");

    Json j;
    try {
        j = Json::parse(text.begin(), text.end(), cb);
    } catch (const Json::parse_error& e) {
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 17: syntax error ..."
        const auto col = what.find("column ");
        const auto colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
        std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
        fail("", "invalid JSON at byte " + std::to_string(e.byte) + ": " + detail);
    } catch (const Json::exception& e) {
        // out_of_range 406: a number too large for a double
        std::string what = e.what();
        const auto close = what.find("] ");
        fail("", "invalid JSON: " + (close == std::string::npos ? what : what.substr(close + 2)));
    }
    if (structural) throw *structural;
    return j;
}

std::string read_event(const Json& j) {
    if (!j.is_object()) fail("", "expected a JSON object, got " + describe(j));
    const auto it = j.find("event");
    if (it == j.end()) fail("event", "missing");
    if (!it->is_string()) fail("event", "expected a string, got " + describe(*it));
    return it->get<std::string>();
}

TwilioMessage read_twilio(const Json& j, std::vector<std::string>& extras) {
    const auto event = read_event(j);
    ObjectReader top(j, "", extras);
    top.required("event");
    if (event == "connected") {
        ConnectedMsg m;
        m.protocol = top.string("protocol");
        m.version = top.string("version");
        top.finish();
        return m;
    }
    if (event == "start") {
        StartMsg m;
        m.sequence_number = top.decimal_string("sequenceNumber");
        auto start = top.object("start");
        m.account_sid = start.string("accountSid");
        const auto inner_sid = start.string("streamSid");
        m.call_sid = start.string("callSid");
        {
            const Json& tracks = start.required("tracks");
            const std::string path = "start.tracks";
            if (!tracks.is_array()) fail(path, "expected an array, got " + describe(tracks));
            if (tracks.empty()) fail(path, "expected at least one track, got an empty array");
            m.tracks.clear();
            for (std::size_t i = 0; i < tracks.size(); ++i) {
                const auto item_path = path + '[' + std::to_string(i) + ']';
                const auto t = read_track(tracks[i], item_path);
                if (std::find(m.tracks.begin(), m.tracks.end(), t) != m.tracks.end())
                    fail(item_path, quote_for_message(to_string(t)) + " is listed twice");
                m.tracks.push_back(t);
            }
        }
        if (const Json* params = start.optional("customParameters")) {
            const std::string path = "start.customParameters";
            if (!params->is_object()) fail(path, "expected an object, got " + describe(*params));
            for (const auto& [key, value] : params->items()) {
                if (!value.is_string())
                    fail(join(path, key), "expected a string, got " + describe(value));
                m.custom_parameters.emplace_back(key, value.get<std::string>());
            }
        }
        {
            auto fmt = start.object("mediaFormat");
            m.media_format.encoding = fmt.string("encoding");
            m.media_format.sample_rate = fmt.positive_int("sampleRate");
            m.media_format.channels = fmt.positive_int("channels");
            fmt.finish();
        }
        start.finish();
        m.stream_sid = top.string("streamSid");
        if (inner_sid != m.stream_sid)
            fail("start.streamSid", quote_for_message(inner_sid) + " differs from streamSid " +
                                        quote_for_message(m.stream_sid));
        top.finish();
        return m;
    }
    if (event == "media") {
        MediaMsg m;
        m.sequence_number = top.decimal_string("sequenceNumber");
        auto media = top.object("media");
        m.track = read_track(media.required("track"), "media.track");
        m.chunk = media.decimal_string("chunk");
        m.timestamp_ms = media.decimal_string("timestamp");
        m.payload = media.string("payload");
        check_payload(m.payload, "media.payload");
        media.finish();
        m.stream_sid = top.string("streamSid");
        top.finish();
        return m;
    }
    if (event == "dtmf") {
        DtmfMsg m;
        m.stream_sid = top.string("streamSid");
        m.sequence_number = top.decimal_string("sequenceNumber");
        auto dtmf = top.object("dtmf");
        {
            const Json& t = dtmf.required("track");
            if (!t.is_string() || t.get_ref<const std::string&>() != "inbound_track")
                fail("dtmf.track", R"(expected "inbound_track", got )" + describe_choice(t));
            m.track = t.get<std::string>();
        }
        {
            const Json& d = dtmf.required("digit");
            const std::string* s = d.is_string() ? &d.get_ref<const std::string&>() : nullptr;
            const bool ok =
                s && s->size() == 1 &&
                (((*s)[0] >= '0' && (*s)[0] <= '9') || (*s)[0] == '*' || (*s)[0] == '#');
            if (!ok) fail("dtmf.digit", "expected one of 0-9, * or #, got " + describe_choice(d));
            m.digit = (*s)[0];
        }
        dtmf.finish();
        top.finish();
        return m;
    }
    if (event == "mark") {
        MarkMsg m;
        m.sequence_number = top.decimal_string("sequenceNumber");
        m.stream_sid = top.string("streamSid");
        auto mark = top.object("mark");
        m.name = mark.string("name");
        mark.finish();
        top.finish();
        return m;
    }
    if (event == "stop") {
        StopMsg m;
        m.sequence_number = top.decimal_string("sequenceNumber");
        auto stop = top.object("stop");
        m.account_sid = stop.string("accountSid");
        m.call_sid = stop.string("callSid");
        stop.finish();
        m.stream_sid = top.string("streamSid");
        top.finish();
        return m;
    }
    fail("event", "unknown event " + quote_for_message(event));
}

ServerMessage read_server(const Json& j, std::vector<std::string>& extras) {
    const auto event = read_event(j);
    ObjectReader top(j, "", extras);
    top.required("event");
    if (event == "media") {
        ServerMediaMsg m;
        m.stream_sid = top.string("streamSid");
        auto media = top.object("media");
        m.payload = media.string("payload");
        check_payload(m.payload, "media.payload");
        media.finish();
        top.finish();
        return m;
    }
    if (event == "mark") {
        ServerMarkMsg m;
        m.stream_sid = top.string("streamSid");
        auto mark = top.object("mark");
        m.name = mark.string("name");
        mark.finish();
        top.finish();
        return m;
    }
    if (event == "clear") {
        ClearMsg m;
        m.stream_sid = top.string("streamSid");
        top.finish();
        return m;
    }
    fail("event", "unknown event " + quote_for_message(event));
}

template <class M, class Read>
Result<Parsed<M>> parse_with(std::string_view text, Read read) {
    try {
        const Json j = parse_dom(text);
        Parsed<M> out;
        out.message = read(j, out.extra_fields);
        return out;
    } catch (const FieldError& e) {
        return make_error(e.message, e.path);
    } catch (const std::exception& e) {  // e.g. bad_alloc; never escapes to the caller
        return make_error(std::string("cannot parse frame: ") + e.what());
    }
}

// ---- serialisers -------------------------------------------------------------------------------

struct TwilioWriter {
    std::string& out;

    void operator()(const ConnectedMsg& m) const {
        out += R"({"event":"connected","protocol":)";
        append_quoted(out, m.protocol);
        out += R"(,"version":)";
        append_quoted(out, m.version);
        out += '}';
    }
    void operator()(const StartMsg& m) const {
        out += R"({"event":"start","sequenceNumber":)";
        append_uint_string(out, m.sequence_number);
        out += R"(,"start":{"accountSid":)";
        append_quoted(out, m.account_sid);
        out += R"(,"streamSid":)";
        append_quoted(out, m.stream_sid);
        out += R"(,"callSid":)";
        append_quoted(out, m.call_sid);
        out += R"(,"tracks":[)";
        for (std::size_t i = 0; i < m.tracks.size(); ++i) {
            if (i) out += ',';
            append_quoted(out, to_string(m.tracks[i]));
        }
        out += R"(],"customParameters":{)";
        for (std::size_t i = 0; i < m.custom_parameters.size(); ++i) {
            if (i) out += ',';
            append_quoted(out, m.custom_parameters[i].first);
            out += ':';
            append_quoted(out, m.custom_parameters[i].second);
        }
        out += R"(},"mediaFormat":{"encoding":)";
        append_quoted(out, m.media_format.encoding);
        out += R"(,"sampleRate":)";
        append_uint(out, static_cast<std::uint64_t>(std::max(m.media_format.sample_rate, 0)));
        out += R"(,"channels":)";
        append_uint(out, static_cast<std::uint64_t>(std::max(m.media_format.channels, 0)));
        out += R"(}},"streamSid":)";
        append_quoted(out, m.stream_sid);
        out += '}';
    }
    void operator()(const MediaMsg& m) const {
        append_media_frame(out, m.stream_sid, m.sequence_number, m.track, m.chunk, m.timestamp_ms,
                           [&] { append_payload_text(out, m.payload); });
    }
    void operator()(const DtmfMsg& m) const {
        out += R"({"event":"dtmf","streamSid":)";
        append_quoted(out, m.stream_sid);
        out += R"(,"sequenceNumber":)";
        append_uint_string(out, m.sequence_number);
        out += R"(,"dtmf":{"track":)";
        append_quoted(out, m.track);
        out += R"(,"digit":)";
        append_quoted(out, std::string_view(&m.digit, 1));
        out += "}}";
    }
    void operator()(const MarkMsg& m) const {
        out += R"({"event":"mark","sequenceNumber":)";
        append_uint_string(out, m.sequence_number);
        out += R"(,"streamSid":)";
        append_quoted(out, m.stream_sid);
        out += R"(,"mark":{"name":)";
        append_quoted(out, m.name);
        out += "}}";
    }
    void operator()(const StopMsg& m) const {
        out += R"({"event":"stop","sequenceNumber":)";
        append_uint_string(out, m.sequence_number);
        out += R"(,"stop":{"accountSid":)";
        append_quoted(out, m.account_sid);
        out += R"(,"callSid":)";
        append_quoted(out, m.call_sid);
        out += R"(},"streamSid":)";
        append_quoted(out, m.stream_sid);
        out += '}';
    }
};

struct ServerWriter {
    std::string& out;

    void operator()(const ServerMediaMsg& m) const {
        append_server_media_frame(out, m.stream_sid, [&] { append_payload_text(out, m.payload); });
    }
    void operator()(const ServerMarkMsg& m) const {
        out += R"({"event":"mark","streamSid":)";
        append_quoted(out, m.stream_sid);
        out += R"(,"mark":{"name":)";
        append_quoted(out, m.name);
        out += "}}";
    }
    void operator()(const ClearMsg& m) const {
        out += R"({"event":"clear","streamSid":)";
        append_quoted(out, m.stream_sid);
        out += '}';
    }
};

}  // namespace

const char* to_string(Track t) {
    return t == Track::inbound ? "inbound" : "outbound";
}

Result<Parsed<TwilioMessage>> parse_twilio_message(std::string_view text) {
    return parse_with<TwilioMessage>(text, read_twilio);
}

Result<Parsed<ServerMessage>> parse_server_message(std::string_view text) {
    return parse_with<ServerMessage>(text, read_server);
}

void append_json(const TwilioMessage& m, std::string& out) {
    std::visit(TwilioWriter{out}, m);
}
void append_json(const ServerMessage& m, std::string& out) {
    std::visit(ServerWriter{out}, m);
}

std::string to_json(const TwilioMessage& m) {
    std::string out;
    append_json(m, out);
    return out;
}

std::string to_json(const ServerMessage& m) {
    std::string out;
    append_json(m, out);
    return out;
}

const char* event_name(const TwilioMessage& m) {
    static constexpr const char* names[] = {"connected", "start", "media", "dtmf", "mark", "stop"};
    return names[m.index()];
}

const char* event_name(const ServerMessage& m) {
    static constexpr const char* names[] = {"media", "mark", "clear"};
    return names[m.index()];
}

void append_media_json(std::string& out, std::string_view stream_sid, std::uint64_t sequence_number,
                       Track track, std::uint64_t chunk, std::uint64_t timestamp_ms,
                       std::span<const std::uint8_t> mulaw) {
    append_media_frame(out, stream_sid, sequence_number, track, chunk, timestamp_ms,
                       [&] { append_base64(out, mulaw); });
}

void append_server_media_json(std::string& out, std::string_view stream_sid,
                              std::span<const std::uint8_t> mulaw) {
    append_server_media_frame(out, stream_sid, [&] { append_base64(out, mulaw); });
}

// ---- fast parser -------------------------------------------------------------------------------

namespace od = simdjson::ondemand;

// Compares with a literal of known length: inlined, unlike string_view's operator== (memcmp call).
template <std::size_t N>
bool is(std::string_view s, const char (&literal)[N]) {
    return s.size() == N - 1 && std::memcmp(s.data(), literal, N - 1) == 0;
}

struct FastParser::Impl {
    od::parser parser;
    std::vector<char> buffer;            // the frame plus SIMDJSON_PADDING, reused
    std::vector<std::string_view> keys;  // keys of the open objects, for duplicate detection
    std::vector<std::uint8_t> decoded;   // the payload of the last media frame, decoded
    std::size_t decoded_size = 0;
    bool have_media = false;

    // Verdict of the fast checks. `reject` covers both invalid JSON and a field the fast path
    // finds wrong; the general parser then words the diagnostic (one wording for both paths).
    enum class Verdict { media, other, reject };

    od::document doc;

    bool load(std::string_view text) {
        const std::size_t need = text.size() + simdjson::SIMDJSON_PADDING;
        if (buffer.size() < need) buffer.resize(std::max(need, buffer.size() * 2));
        std::memcpy(buffer.data(), text.data(), text.size());
        std::memset(buffer.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
        // The parser would grow to exactly each larger frame; grow it geometrically instead, so
        // frames that lengthen by a digit now and then do not reallocate each time.
        if (text.size() > parser.capacity() &&
            parser.allocate(std::max(text.size(), 2 * parser.capacity())) != simdjson::SUCCESS)
            return false;
        return parser.iterate(buffer.data(), text.size(), buffer.size()).get(doc) ==
               simdjson::SUCCESS;
    }

    // True when nothing but whitespace follows the value just read (trailing content is invalid
    // JSON; the on-demand API does not look at it unless asked).
    bool at_end() {
        const char* loc = nullptr;
        return doc.current_location().get(loc) == simdjson::OUT_OF_BOUNDS;
    }

    // Adds a key to the innermost open object (whose keys start at `level_start`); false when
    // it is already there.
    bool add_key(std::size_t level_start, std::string_view key) {
        for (std::size_t i = level_start; i < keys.size(); ++i)
            if (keys[i] == key) return false;
        keys.push_back(key);
        return true;
    }

    // Reads a value the schema does not define, checking it is well-formed JSON with no
    // duplicate keys and no deeper nesting than kMaxDepth (`depth` is the value's own level).
    bool walk(od::value v, int depth) {
        od::json_type type;
        if (v.type().get(type)) return false;
        switch (type) {
            case od::json_type::object: {
                if (depth > kMaxDepth) return false;
                od::object obj;
                if (v.get_object().get(obj)) return false;
                const auto level = keys.size();
                for (auto field : obj) {
                    if (field.error()) return false;
                    std::string_view key;
                    if (field.unescaped_key().get(key) || !add_key(level, key)) return false;
                    od::value child;
                    if (field.value().get(child) || !walk(child, depth + 1)) return false;
                }
                keys.resize(level);
                return true;
            }
            case od::json_type::array: {
                if (depth > kMaxDepth) return false;
                od::array arr;
                if (v.get_array().get(arr)) return false;
                for (auto item : arr) {
                    od::value child;
                    if (item.get(child) || !walk(child, depth + 1)) return false;
                }
                return true;
            }
            case od::json_type::string: {
                std::string_view s;
                return !v.get_string().get(s);
            }
            case od::json_type::number: {
                double d;
                return !v.get_double().get(d);
            }
            case od::json_type::boolean: {
                bool b;
                return !v.get_bool().get(b);
            }
            case od::json_type::null: {
                bool is_null = false;
                return !v.is_null().get(is_null) && is_null;
            }
        }
        return false;
    }

    static bool decimal(od::value v, std::uint64_t& out) {
        std::string_view s;
        if (v.get_string().get(s) || s.empty() || (s.size() > 1 && s[0] == '0')) return false;
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return std::from_chars(s.data(), s.data() + s.size(), out).ec == std::errc{};
    }

    bool decode(std::string_view payload) {
        const auto need = base64_decoded_max_size(payload.size()) + 3;
        if (decoded.size() < need) decoded.resize(need);
        auto r = base64_decode(payload, decoded.data());
        if (!r) return false;
        decoded_size = *r;
        return true;
    }

    // Walks a frame whose "event" turned out to be a string other than "media". It is
    // Kind::other (the caller goes to the general parser) only when the whole frame is
    // well-formed JSON with no duplicate keys and no deep nesting; that is all the fast path says
    // about frames that are not media.
    Verdict rest_is_valid() {
        doc.rewind();
        od::value v;
        if (doc.get_value().get(v)) return Verdict::reject;
        keys.clear();
        if (!walk(v, 1) || !at_end()) return Verdict::reject;
        return Verdict::other;
    }

    // The media frame Twilio → server.
    Verdict twilio(MediaView& out) {
        keys.clear();
        have_media = false;
        od::object top;
        if (doc.get_object().get(top)) return Verdict::reject;
        enum : unsigned {
            kEvent = 1,
            kSeq = 2,
            kSid = 4,
            kMedia = 8,
            kTrack = 16,
            kChunk = 32,
            kTimestamp = 64,
            kPayload = 128
        };
        unsigned seen = 0;
        std::string_view payload;
        for (auto field : top) {
            std::string_view key;
            if (field.unescaped_key().get(key)) return Verdict::reject;
            od::value v;
            if (field.value().get(v)) return Verdict::reject;
            auto once = [&](unsigned bit) {
                const bool first = !(seen & bit);
                seen |= bit;
                return first;
            };
            if (is(key, "event")) {
                std::string_view event;
                if (!once(kEvent) || v.get_string().get(event)) return Verdict::reject;
                if (!is(event, "media")) return rest_is_valid();
            } else if (is(key, "sequenceNumber")) {
                if (!once(kSeq) || !decimal(v, out.sequence_number)) return Verdict::reject;
            } else if (is(key, "streamSid")) {
                if (!once(kSid) || v.get_string().get(out.stream_sid)) return Verdict::reject;
            } else if (is(key, "media")) {
                od::object media;
                if (!once(kMedia) || v.get_object().get(media)) return Verdict::reject;
                const auto level = keys.size();
                for (auto mfield : media) {
                    std::string_view mkey;
                    if (mfield.unescaped_key().get(mkey)) return Verdict::reject;
                    od::value mv;
                    if (mfield.value().get(mv)) return Verdict::reject;
                    if (is(mkey, "track")) {
                        std::string_view t;
                        if (!once(kTrack) || mv.get_string().get(t)) return Verdict::reject;
                        if (is(t, "inbound"))
                            out.track = Track::inbound;
                        else if (is(t, "outbound"))
                            out.track = Track::outbound;
                        else
                            return Verdict::reject;
                    } else if (is(mkey, "chunk")) {
                        if (!once(kChunk) || !decimal(mv, out.chunk)) return Verdict::reject;
                    } else if (is(mkey, "timestamp")) {
                        if (!once(kTimestamp) || !decimal(mv, out.timestamp_ms))
                            return Verdict::reject;
                    } else if (is(mkey, "payload")) {
                        if (!once(kPayload) || mv.get_string().get(payload)) return Verdict::reject;
                    } else if (!add_key(level, mkey) || !walk(mv, 3)) {
                        return Verdict::reject;
                    }
                }
                keys.resize(level);
            } else if (!add_key(0, key) || !walk(v, 2)) {
                return Verdict::reject;
            }
        }
        if (!at_end()) return Verdict::reject;
        if (!(seen & kEvent)) return Verdict::reject;
        if (seen != 255u) return Verdict::reject;
        if (!decode(payload)) return Verdict::reject;
        out.payload = payload;
        have_media = true;
        return Verdict::media;
    }

    // The media frame server → Twilio.
    Verdict server(ServerMediaView& out) {
        keys.clear();
        have_media = false;
        od::object top;
        if (doc.get_object().get(top)) return Verdict::reject;
        enum : unsigned { kEvent = 1, kSid = 2, kMedia = 4, kPayload = 8 };
        unsigned seen = 0;
        out.extra_fields = false;
        std::string_view payload;
        for (auto field : top) {
            std::string_view key;
            if (field.unescaped_key().get(key)) return Verdict::reject;
            od::value v;
            if (field.value().get(v)) return Verdict::reject;
            auto once = [&](unsigned bit) {
                const bool first = !(seen & bit);
                seen |= bit;
                return first;
            };
            if (is(key, "event")) {
                std::string_view event;
                if (!once(kEvent) || v.get_string().get(event)) return Verdict::reject;
                if (!is(event, "media")) return rest_is_valid();
            } else if (is(key, "streamSid")) {
                if (!once(kSid) || v.get_string().get(out.stream_sid)) return Verdict::reject;
            } else if (is(key, "media")) {
                od::object media;
                if (!once(kMedia) || v.get_object().get(media)) return Verdict::reject;
                const auto level = keys.size();
                for (auto mfield : media) {
                    std::string_view mkey;
                    if (mfield.unescaped_key().get(mkey)) return Verdict::reject;
                    od::value mv;
                    if (mfield.value().get(mv)) return Verdict::reject;
                    if (is(mkey, "payload")) {
                        if (!once(kPayload) || mv.get_string().get(payload)) return Verdict::reject;
                    } else if (!add_key(level, mkey) || !walk(mv, 3)) {
                        return Verdict::reject;
                    } else {
                        out.extra_fields = true;
                    }
                }
                keys.resize(level);
            } else if (!add_key(0, key) || !walk(v, 2)) {
                return Verdict::reject;
            } else {
                out.extra_fields = true;
            }
        }
        if (!at_end()) return Verdict::reject;
        if (seen != 15u) return Verdict::reject;
        if (!decode(payload)) return Verdict::reject;
        out.payload = payload;
        have_media = true;
        return Verdict::media;
    }
};

FastParser::FastParser() : impl_(std::make_unique<Impl>()) {}
FastParser::~FastParser() = default;
FastParser::FastParser(FastParser&&) noexcept = default;
FastParser& FastParser::operator=(FastParser&&) noexcept = default;

FastParser::Kind FastParser::parse_twilio(std::string_view text) {
    last_was_server_ = false;
    Impl::Verdict v = Impl::Verdict::reject;
    if (impl_->load(text)) v = impl_->twilio(media_);
    if (v == Impl::Verdict::media) return Kind::media;
    impl_->have_media = false;
    if (v == Impl::Verdict::other) return Kind::other;
    // Rejected: the general parser words the problem. Should it accept the frame after all
    // (a limit of the fast path), the caller is sent to it with Kind::other.
    auto general = parse_twilio_message(text);
    if (general) return Kind::other;
    error_ = general.error();
    return Kind::invalid;
}

FastParser::Kind FastParser::parse_server(std::string_view text) {
    last_was_server_ = true;
    Impl::Verdict v = Impl::Verdict::reject;
    if (impl_->load(text)) v = impl_->server(server_media_);
    if (v == Impl::Verdict::media) return Kind::media;
    impl_->have_media = false;
    if (v == Impl::Verdict::other) return Kind::other;
    auto general = parse_server_message(text);
    if (general) return Kind::other;
    error_ = general.error();
    return Kind::invalid;
}

Result<std::size_t> FastParser::decode_payload(std::uint8_t* mulaw_out) const {
    if (!impl_->have_media)
        return make_error("no media message: the last frame parsed was not a valid media message");
    std::memcpy(mulaw_out, impl_->decoded.data(), impl_->decoded_size);
    return impl_->decoded_size;
}

}  // namespace mediasim::core
