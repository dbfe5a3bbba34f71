#include "fuzz/fuzz_entries.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "core/base64.hpp"
#include "core/protocol.hpp"
#include "core/wav.hpp"

namespace mediasim::fuzz {

namespace {

using core::FastParser;

std::string_view as_text(std::span<const std::uint8_t> data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// The fast parser answers Kind::other for every well-formed frame whose event is a string
// other than "media", valid or not; true when the general parser's error is of that kind.
bool well_formed_not_media(std::string_view text, const core::Diagnostic& general_error) {
    const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    const auto ev = j.find("event");
    if (ev == j.end() || !ev->is_string() || *ev == "media") return false;
    return !general_error.path.empty() && general_error.message != "duplicate field" &&
           general_error.message.rfind("nested deeper", 0) != 0;
}

template <class Parse>
std::string check_round_trip(std::string_view text, Parse parse, const char* direction) {
    auto first = parse(text);
    if (!first) return {};
    const std::string again = core::to_json(first->message);
    auto second = parse(again);
    if (!second)
        return std::string(direction) +
               ": re-serialised frame does not parse: " + second.error().to_string() +
               "\n  frame: " + again;
    if (!(second->message == first->message))
        return std::string(direction) + ": re-serialised frame parses to a different message\n" +
               "  frame: " + again;
    if (!second->extra_fields.empty())
        return std::string(direction) + ": re-serialised frame has extra fields";
    if (core::to_json(second->message) != again)
        return std::string(direction) + ": serialising is not stable";
    return {};
}

std::string check_payload(FastParser& fast, std::string_view payload) {
    std::vector<std::uint8_t> want(core::base64_decoded_max_size(payload.size()) + 4);
    std::vector<std::uint8_t> got(core::base64_decoded_max_size(payload.size()));
    auto w = core::base64_decode(payload, want.data());
    auto g = fast.decode_payload(got.data());
    if (!w || !g) return "fast: media frame with a payload that does not decode";
    if (*w != *g || std::memcmp(want.data(), got.data(), *g) != 0)
        return "fast: decode_payload differs from base64_decode";
    return {};
}

std::string check_fast_twilio(FastParser& fast, std::string_view text) {
    const auto kind = fast.parse_twilio(text);
    auto general = core::parse_twilio_message(text);
    if (!general) {
        if (kind == FastParser::Kind::other && well_formed_not_media(text, general.error()))
            return {};
        if (kind != FastParser::Kind::invalid)
            return "fast(twilio): accepts a frame the general parser rejects with " +
                   general.error().to_string();
        if (fast.error().to_string() != general.error().to_string())
            return "fast(twilio): error \"" + fast.error().to_string() + "\" but general says \"" +
                   general.error().to_string() + "\"";
        return {};
    }
    const auto* m = std::get_if<core::MediaMsg>(&general->message);
    if (!m) {
        if (kind != FastParser::Kind::other) return "fast(twilio): not media, yet not Kind::other";
        return {};
    }
    if (kind != FastParser::Kind::media)
        return "fast(twilio): general parser reads a media frame, fast parser says kind " +
               std::to_string(static_cast<int>(kind));
    const auto& v = fast.media();
    if (v.sequence_number != m->sequence_number || v.stream_sid != m->stream_sid ||
        v.track != m->track || v.chunk != m->chunk || v.timestamp_ms != m->timestamp_ms ||
        v.payload != m->payload)
        return "fast(twilio): fields differ from the general parser's";
    if (auto e = check_payload(fast, v.payload); !e.empty()) return e;

    // The fast builder gives a frame both parsers read back to the same values.
    std::vector<std::uint8_t> mulaw(core::base64_decoded_max_size(v.payload.size()));
    auto n = fast.decode_payload(mulaw.data());
    mulaw.resize(*n);
    const core::MediaMsg copy{v.sequence_number, std::string(v.stream_sid), v.track, v.chunk,
                              v.timestamp_ms,    std::string(v.payload)};
    std::string built;
    core::append_media_json(built, copy.stream_sid, copy.sequence_number, copy.track, copy.chunk,
                            copy.timestamp_ms, mulaw);
    auto back = core::parse_twilio_message(built);
    if (!back) return "append_media_json: output does not parse: " + back.error().to_string();
    const auto& b = std::get<core::MediaMsg>(back->message);
    if (b.sequence_number != copy.sequence_number || b.stream_sid != copy.stream_sid ||
        b.track != copy.track || b.chunk != copy.chunk || b.timestamp_ms != copy.timestamp_ms ||
        b.payload != core::base64_encode(mulaw))
        return "append_media_json: output reads back different";
    if (fast.parse_twilio(built) != FastParser::Kind::media)
        return "append_media_json: output is not a media frame for the fast parser";
    return {};
}

std::string check_fast_server(FastParser& fast, std::string_view text) {
    const auto kind = fast.parse_server(text);
    auto general = core::parse_server_message(text);
    if (!general) {
        if (kind == FastParser::Kind::other && well_formed_not_media(text, general.error()))
            return {};
        if (kind != FastParser::Kind::invalid)
            return "fast(server): accepts a frame the general parser rejects with " +
                   general.error().to_string();
        if (fast.error().to_string() != general.error().to_string())
            return "fast(server): error \"" + fast.error().to_string() + "\" but general says \"" +
                   general.error().to_string() + "\"";
        return {};
    }
    const auto* m = std::get_if<core::ServerMediaMsg>(&general->message);
    if (!m) {
        if (kind != FastParser::Kind::other) return "fast(server): not media, yet not Kind::other";
        return {};
    }
    if (kind != FastParser::Kind::media)
        return "fast(server): general parser reads a media frame, fast parser says kind " +
               std::to_string(static_cast<int>(kind));
    if (fast.server_media().stream_sid != m->stream_sid ||
        fast.server_media().payload != m->payload)
        return "fast(server): fields differ from the general parser's";
    if (auto e = check_payload(fast, fast.server_media().payload); !e.empty()) return e;
    std::vector<std::uint8_t> mulaw(core::base64_decoded_max_size(m->payload.size()));
    auto n = fast.decode_payload(mulaw.data());
    mulaw.resize(*n);
    std::string built;
    core::append_server_media_json(built, m->stream_sid, mulaw);
    auto back = core::parse_server_message(built);
    if (!back) return "append_server_media_json: output does not parse";
    const auto& b = std::get<core::ServerMediaMsg>(back->message);
    if (b.stream_sid != m->stream_sid || b.payload != core::base64_encode(mulaw))
        return "append_server_media_json: output reads back different";
    return {};
}

}  // namespace

std::string check_protocol(std::span<const std::uint8_t> data) {
    const auto text = as_text(data);
    // One parser for the whole run, as a session keeps one: reuse across frames is tested too.
    static FastParser fast;
    if (auto e = check_round_trip(text, core::parse_twilio_message, "twilio"); !e.empty()) return e;
    if (auto e = check_round_trip(text, core::parse_server_message, "server"); !e.empty()) return e;
    if (auto e = check_fast_twilio(fast, text); !e.empty()) return e;
    if (auto e = check_fast_server(fast, text); !e.empty()) return e;
    return {};
}

std::string check_base64(std::span<const std::uint8_t> data) {
    const auto text = as_text(data);
    // Exactly the documented size: ASan catches a write past it.
    std::vector<std::uint8_t> out(core::base64_decoded_max_size(text.size()));
    auto r = core::base64_decode(text, out.data());
    if (r) {
        if (*r > out.size()) return "decode: returned more bytes than base64_decoded_max_size";
        out.resize(*r);
        const auto encoded = core::base64_encode(out);
        if (encoded.size() != text.size())
            return "decode then encode: " + std::to_string(text.size()) + " characters became " +
                   std::to_string(encoded.size());
        std::vector<std::uint8_t> again(core::base64_decoded_max_size(encoded.size()));
        auto r2 = core::base64_decode(encoded, again.data());
        if (!r2) return "encode output does not decode: " + r2.error().to_string();
        again.resize(*r2);
        if (again != out) return "decode(encode(decode(x))) != decode(x)";
    } else if (r.error().message.empty()) {
        return "decode error without a message";
    }
    // The bytes as data.
    const auto encoded = core::base64_encode(data);
    if (encoded.size() != core::base64_encoded_size(data.size())) return "encode: wrong length";
    std::string appended = "x";
    core::base64_encode_append(data, appended);
    if (appended.compare(1, std::string::npos, encoded) != 0)
        return "base64_encode_append differs from base64_encode";
    std::vector<std::uint8_t> back(core::base64_decoded_max_size(encoded.size()));
    auto rb = core::base64_decode(encoded, back.data());
    if (!rb) return "encode output does not decode: " + rb.error().to_string();
    back.resize(*rb);
    if (!std::equal(back.begin(), back.end(), data.begin(), data.end()))
        return "decode(encode(x)) != x";
    return {};
}

std::string check_wav(std::span<const std::uint8_t> data) {
    auto wav = core::parse_wav(data, "fuzz");
    if (!wav) {
        if (wav.error().message.empty()) return "parse_wav error without a message";
        return {};
    }
    const auto& f = wav->format;
    if (f.channels < 1 || f.sample_rate_hz < 1)
        return "parse_wav accepted a format with no channels or no rate";
    if (wav->data.size() % static_cast<std::size_t>(f.block_align()) != 0)
        return "parse_wav data is not whole sample frames";
    const auto bytes = core::make_wav(f, wav->data);
    auto again = core::parse_wav(bytes, "fuzz-rewritten");
    if (!again) return "make_wav output does not parse: " + again.error().to_string();
    if (!(again->format == f)) return "make_wav → parse_wav changed the format";
    if (again->data != wav->data) return "make_wav → parse_wav changed the data";
    if (core::make_wav(again->format, again->data) != bytes) return "make_wav is not stable";
    // Decoding to PCM works on anything that parsed.
    const auto pcm = core::decode_to_pcm(*wav);
    if (pcm.samples.size() != wav->data.size() / static_cast<std::size_t>(f.bytes_per_sample()))
        return "decode_to_pcm gave the wrong number of samples";
    return {};
}

}  // namespace mediasim::fuzz
