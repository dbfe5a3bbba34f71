#include "simulator/session.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/base64.hpp"
#include "core/form.hpp"
#include "core/wav.hpp"

namespace mediasim::sim::session {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string iso_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const std::regex& phone_re() {
    // +E.164 (7 to 15 digits), also URL-encoded (%2B).
    static const std::regex re(R"((\+|%2B)[0-9]{7,15})", std::regex::icase);
    return re;
}

bool is_phone_key(std::string_view k) {
    for (std::string_view p : {"From", "To", "Caller", "Called", "ForwardedFrom", "CallerName",
                               "CallerCity", "FromCity", "ToCity"})
        if (k == p) return true;
    return false;
}

std::vector<std::uint8_t> payload_bytes(const json& msg) {
    std::vector<std::uint8_t> out;
    if (!msg.contains("media") || !msg["media"].is_object()) return out;
    const auto& m = msg["media"];
    if (!m.contains("payload") || !m["payload"].is_string()) return out;
    const auto& p = m["payload"].get_ref<const std::string&>();
    out.resize(core::base64_decoded_max_size(p.size()));
    auto n = core::base64_decode(p, out.data());
    out.resize(n ? *n : 0);
    return out;
}

}  // namespace

std::string redact_text(std::string_view text) {
    return std::regex_replace(std::string(text), phone_re(), kRedacted);
}

std::string redact_form(std::string_view body) {
    auto params = core::form_decode(body);
    if (!params) return redact_text(body);
    for (auto& [k, v] : *params) {
        if (is_phone_key(k) && !v.empty())
            v = kRedacted;
        else
            v = redact_text(v);
    }
    return core::form_encode(*params);
}

std::string redact_twiml(std::string_view body) {
    static const std::regex param(R"(<Parameter\b[^>]*?(/>|>\s*</Parameter\s*>))");
    std::string s = std::regex_replace(std::string(body), param, "");
    static const std::regex number(R"((<Number\b[^>]*>|<Dial\b[^>]*>)\s*[^<]+)");
    s = std::regex_replace(s, number, std::string("$1") + kRedacted);
    return redact_text(s);
}

std::string redact_ws(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return redact_text(text);
    if (j.value("event", "") == "start" && j.contains("start") && j["start"].is_object())
        j["start"]["customParameters"] = json::object();
    return redact_text(j.dump());
}

core::Status Writer::open(const std::filesystem::path& path, std::string upstream, bool redact) {
    path_ = path;
    redact_ = redact;
    if (path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
    }
    out_.open(path, std::ios::trunc);
    if (!out_) return core::make_error(fmt::format("cannot write {}", path.string()), "--session");
    ordered_json h;
    h["type"] = "session";
    h["format"] = kFormat;
    h["started_at"] = iso_now();
    h["upstream"] = std::move(upstream);
    h["redacted"] = redact;
    line(h.dump());
    return core::Ok{};
}

void Writer::line(const std::string& text) {
    out_ << text << '\n';
    out_.flush();
}

void Writer::http_request(std::uint64_t id, std::int64_t t_us, std::string_view method,
                          std::string_view target, std::string_view content_type,
                          std::string_view body) {
    ordered_json j;
    j["type"] = "http_request";
    j["t_us"] = t_us;
    j["id"] = id;
    j["method"] = method;
    j["target"] = redact_ ? redact_text(target) : std::string(target);
    j["content_type"] = content_type;
    const bool form = content_type.find("x-www-form-urlencoded") != std::string_view::npos;
    j["body"] = !redact_ ? std::string(body) : form ? redact_form(body) : redact_text(body);
    line(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void Writer::http_response(std::uint64_t id, std::int64_t t_us, int status,
                           std::string_view content_type, std::string_view body,
                           const std::vector<int>& streams, std::string_view error) {
    ordered_json j;
    j["type"] = "http_response";
    j["t_us"] = t_us;
    j["id"] = id;
    j["status"] = status;
    j["content_type"] = content_type;
    j["body"] = redact_ ? redact_twiml(body) : std::string(body);
    j["streams"] = streams;
    if (!error.empty()) j["error"] = error;
    line(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void Writer::ws_open(int stream, std::int64_t t_us, std::string_view url) {
    ordered_json j;
    j["type"] = "ws_open";
    j["t_us"] = t_us;
    j["stream"] = stream;
    j["url"] = redact_ ? redact_text(url) : std::string(url);
    line(j.dump());
    audio_[stream];
}

void Writer::ws_message(int stream, std::int64_t t_us, bool from_twilio, bool binary,
                        std::string_view text) {
    ordered_json j;
    j["type"] = "ws";
    j["t_us"] = t_us;
    j["stream"] = stream;
    j["from"] = from_twilio ? "twilio" : "server";
    if (binary) {
        j["binary"] = true;
        j["text"] = core::base64_encode(std::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    } else {
        j["text"] = redact_ ? redact_ws(text) : std::string(text);
    }
    line(j.dump(-1, ' ', false, json::error_handler_t::replace));
    if (binary) return;
    json m = json::parse(text, nullptr, false);
    if (m.is_discarded() || !m.is_object() || m.value("event", "") != "media") return;
    auto bytes = payload_bytes(m);
    auto& [caller, server] = audio_[stream];
    if (from_twilio) {
        const auto& media = m["media"];
        const std::string track = media.contains("track") && media["track"].is_string()
                                      ? media["track"].get<std::string>()
                                      : "inbound";
        if (track == "inbound") caller.insert(caller.end(), bytes.begin(), bytes.end());
    } else {
        server.insert(server.end(), bytes.begin(), bytes.end());
    }
}

void Writer::ws_close(int stream, std::int64_t t_us, std::string_view by, int code) {
    ordered_json j;
    j["type"] = "ws_close";
    j["t_us"] = t_us;
    j["stream"] = stream;
    j["by"] = by;
    j["code"] = code;
    line(j.dump());
    auto it = audio_.find(stream);
    if (it == audio_.end()) return;
    const auto stem = path_.parent_path() / path_.stem();
    core::AudioFormat f;  // μ-law 8 kHz mono
    (void)core::write_wav(fmt::format("{}-stream{}-caller.wav", stem.string(), stream), f,
                          it->second.first);
    (void)core::write_wav(fmt::format("{}-stream{}-server.wav", stem.string(), stream), f,
                          it->second.second);
    audio_.erase(it);
}

void Writer::finish(std::int64_t t_us) {
    std::vector<int> open;
    for (const auto& [n, _] : audio_) open.push_back(n);
    for (int n : open) ws_close(n, t_us, "recorder", 0);
}

core::Result<Session> read_session(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
        return core::make_error(fmt::format("{}: cannot open the session file", path.string()));
    Session s;
    std::map<std::uint64_t, std::size_t> by_id;
    std::string text;
    int lineno = 0;
    auto bad = [&](const std::string& why) {
        return core::make_error(fmt::format("{}:{}: {}", path.string(), lineno, why));
    };
    while (std::getline(in, text)) {
        ++lineno;
        if (text.empty()) continue;
        json j = json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
        const std::string type = j.value("type", "");
        try {
            if (lineno == 1) {
                if (type != "session" || j.value("format", "") != kFormat)
                    return bad(
                        fmt::format("not a session file (the first line must be "
                                    "{{\"type\":\"session\",\"format\":\"{}\",...}})",
                                    kFormat));
                s.started_at = j.value("started_at", "");
                s.upstream = j.value("upstream", "");
                s.redacted = j.value("redacted", false);
                continue;
            }
            const std::int64_t t = j.at("t_us").get<std::int64_t>();
            if (type == "http_request") {
                HttpExchange h;
                h.id = j.at("id").get<std::uint64_t>();
                h.t_request_us = t;
                h.method = j.at("method").get<std::string>();
                h.target = j.at("target").get<std::string>();
                h.content_type = j.value("content_type", "");
                h.body = j.value("body", "");
                by_id[h.id] = s.http.size();
                s.http.push_back(std::move(h));
            } else if (type == "http_response") {
                auto it = by_id.find(j.at("id").get<std::uint64_t>());
                if (it == by_id.end()) return bad("a response to a request not in the file");
                auto& h = s.http[it->second];
                h.t_response_us = t;
                h.status = j.at("status").get<int>();
                h.response_content_type = j.value("content_type", "");
                h.response_body = j.value("body", "");
                h.error = j.value("error", "");
                if (j.contains("streams")) h.streams = j["streams"].get<std::vector<int>>();
            } else if (type == "ws_open") {
                const int n = j.at("stream").get<int>();
                auto& st = s.streams[n];
                st.index = n;
                st.url = j.value("url", "");
                st.t_open_us = t;
            } else if (type == "ws") {
                const int n = j.at("stream").get<int>();
                auto it = s.streams.find(n);
                if (it == s.streams.end()) return bad(fmt::format("stream {} was not opened", n));
                WsMessage m;
                m.t_us = t;
                const std::string from = j.at("from").get<std::string>();
                if (from != "twilio" && from != "server")
                    return bad("\"from\" must be \"twilio\" or \"server\"");
                m.from_twilio = from == "twilio";
                m.binary = j.value("binary", false);
                m.text = j.at("text").get<std::string>();
                it->second.messages.push_back(std::move(m));
            } else if (type == "ws_close") {
                const int n = j.at("stream").get<int>();
                auto it = s.streams.find(n);
                if (it == s.streams.end()) return bad(fmt::format("stream {} was not opened", n));
                it->second.t_close_us = t;
                it->second.closed_by = j.value("by", "");
                it->second.close_code = j.value("code", 0);
            } else {
                return bad(fmt::format("unknown line type \"{}\"", type));
            }
        } catch (const json::exception& e) {
            return bad(fmt::format("a field is missing or of the wrong type ({})", e.what()));
        }
    }
    if (lineno == 0) return core::make_error(fmt::format("{}: empty session file", path.string()));
    return s;
}

}  // namespace mediasim::sim::session
