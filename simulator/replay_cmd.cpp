// mediasim replay SESSION: plays the Twilio side of a recorded session against a server with
// the original timing (or --speed), re-signed with the given auth token and with fresh ids, and
// compares what the server does with what the recorded server did: the HTTP answers (status,
// TwiML verbs, Stream urls) and, per stream, the sequence of audio runs, marks and clears and
// their timing. Exit 1 on a difference beyond the tolerance. --to-scenario writes the caller's
// side as a scenario YAML instead.
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/base64.hpp"
#include "core/cli.hpp"
#include "core/form.hpp"
#include "core/g711.hpp"
#include "core/ids.hpp"
#include "core/signature.hpp"
#include "core/wav.hpp"
#include "simulator/commands.hpp"
#include "simulator/http_client.hpp"
#include "simulator/playout.hpp"
#include "simulator/replay.hpp"
#include "simulator/scenario.hpp"
#include "simulator/twiml.hpp"
#include "simulator/ws_client.hpp"

namespace mediasim::sim {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using session::WsMessage;

namespace {

std::string event_of(const json& j) {
    return j.is_object() && j.contains("event") && j["event"].is_string()
               ? j["event"].get<std::string>()
               : std::string();
}

std::string mark_name(const json& j) {
    if (j.contains("mark") && j["mark"].is_object() && j["mark"].contains("name") &&
        j["mark"]["name"].is_string())
        return j["mark"]["name"].get<std::string>();
    return {};
}

std::vector<std::uint8_t> payload_of(const json& j) {
    std::vector<std::uint8_t> out;
    if (!j.contains("media") || !j["media"].is_object() || !j["media"].contains("payload") ||
        !j["media"]["payload"].is_string())
        return out;
    const auto& p = j["media"]["payload"].get_ref<const std::string&>();
    out.resize(core::base64_decoded_max_size(p.size()));
    auto n = core::base64_decode(p, out.data());
    out.resize(n ? *n : 0);
    return out;
}

bool speech(const std::vector<std::uint8_t>& ulaw) {
    if (ulaw.empty()) return false;
    double sum = 0;
    for (auto b : ulaw) sum += std::abs(static_cast<double>(core::ulaw_to_linear(b)));
    return sum / static_cast<double>(ulaw.size()) > 330.0;  // ≈ -40 dBFS
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (std::size_t i = 0; (i = s.find(from, i)) != std::string::npos; i += to.size())
        s.replace(i, from.size(), to);
}

std::string ms(std::int64_t us) {
    return fmt::format("{:.0f} ms", static_cast<double>(us) / 1000.0);
}

std::string describe(const ServerEvent& e) {
    if (e.kind == "audio") return fmt::format("audio ({} frames)", e.frames);
    if (e.kind == "mark") return fmt::format("mark \"{}\"", e.name);
    return e.kind;
}

}  // namespace

bool payload_has_speech(const std::string& media_json) {
    json j = json::parse(media_json, nullptr, false);
    return !j.is_discarded() && event_of(j) == "media" && speech(payload_of(j));
}

std::vector<ServerEvent> server_events(const std::vector<WsMessage>& server,
                                       const std::vector<WsMessage>& caller) {
    // When the caller last spoke, for each audio run's latency.
    std::vector<std::int64_t> speech_ends;
    for (const auto& m : caller) {
        if (m.binary) continue;
        json j = json::parse(m.text, nullptr, false);
        if (!j.is_discarded() && event_of(j) == "media" && speech(payload_of(j)))
            speech_ends.push_back(m.t_us + 20000);
    }
    std::vector<ServerEvent> out;
    std::int64_t last_media = -1;
    for (const auto& m : server) {
        if (m.binary) {
            out.push_back({"binary", {}, m.t_us, 0, -1});
            last_media = -1;
            continue;
        }
        json j = json::parse(m.text, nullptr, false);
        const std::string ev = j.is_discarded() ? "invalid" : event_of(j);
        if (ev == "media") {
            if (last_media >= 0 && m.t_us - last_media < 400000 && !out.empty() &&
                out.back().kind == "audio") {
                ++out.back().frames;
            } else {
                ServerEvent e{"audio", {}, m.t_us, 1, -1};
                auto it = std::upper_bound(speech_ends.begin(), speech_ends.end(), m.t_us);
                if (it != speech_ends.begin()) e.latency_us = m.t_us - *std::prev(it);
                out.push_back(e);
            }
            last_media = m.t_us;
            continue;
        }
        last_media = -1;
        out.push_back({ev, ev == "mark" ? mark_name(j) : std::string(), m.t_us, 0, -1});
    }
    return out;
}

namespace {

struct Options {
    core::Url webhook;
    std::string auth_token;
    double speed = 1;
    std::int64_t tolerance_us = 250000;
    std::shared_ptr<NetConfig> net;
};

struct HttpResult {
    bool done = false;
    HttpOutcome outcome;
    std::string url;
    std::vector<std::string> stream_urls;
    std::vector<std::string> verbs;
};

struct StreamRun {
    const session::StreamRecord* rec = nullptr;
    std::string url;
    bool url_known = false, due = false, started = false, ended = false;
    std::string error, closed_by;
    int close_code = 0;
    std::shared_ptr<WsClient> ws;
    Clock::time_point origin;
    std::vector<WsMessage> server, caller;  // replayed, times since open in recorded units
    std::vector<std::size_t> plan;          // twilio messages sent by time (not mark echoes)
    // Twilio's play-out of the server's audio: marks are echoed when their audio has played or
    // a clear flushed them, as Twilio does, not at the recorded times.
    std::optional<Playout> playout;
    std::unique_ptr<asio::steady_timer> mark_timer;
    std::map<std::string, std::string> echo_text;  // mark name → the recorded echo
    std::string echo_template;                     // any recorded echo (for other names)
    std::size_t next = 0;
    std::unique_ptr<asio::steady_timer> timer;
};

class Replayer {
  public:
    Replayer(asio::io_context& io, const session::Session& s, Options o)
        : io_(io), s_(s), o_(std::move(o)), deadline_(io) {}

    void run() {
        core::SidGenerator ids;
        // Fresh ids: every CallSid and StreamSid of the session maps to a new one.
        for (const auto& h : s_.http)
            if (auto p = core::form_decode(h.body))
                for (const auto& [k, v] : *p)
                    if (k == "CallSid" && !sids_.count(v)) sids_[v] = ids.next("CA");
        for (const auto& [n, st] : s_.streams)
            for (const auto& m : st.messages) {
                if (!m.from_twilio || m.binary) continue;
                json j = json::parse(m.text, nullptr, false);
                if (event_of(j) != "start" || !j.contains("start")) continue;
                const auto& sj = j["start"];
                for (auto [key, prefix] : {std::pair{"streamSid", "MZ"}, {"callSid", "CA"}})
                    if (sj.contains(key) && sj[key].is_string() &&
                        !sids_.count(sj[key].get<std::string>()))
                        sids_[sj[key].get<std::string>()] = ids.next(prefix);
                if (j.contains("streamSid") && j["streamSid"].is_string() &&
                    !sids_.count(j["streamSid"].get<std::string>()))
                    sids_[j["streamSid"].get<std::string>()] = ids.next("MZ");
            }
        base_ = INT64_MAX;
        for (const auto& h : s_.http) base_ = std::min(base_, h.t_request_us);
        for (const auto& [n, st] : s_.streams)
            if (st.t_open_us >= 0) base_ = std::min(base_, st.t_open_us);
        if (base_ == INT64_MAX) base_ = 0;
        t0_ = Clock::now();

        std::int64_t end_us = base_;
        http_.resize(s_.http.size());
        for (std::size_t i = 0; i < s_.http.size(); ++i) {
            end_us = std::max(end_us, s_.http[i].t_request_us);
            auto t = std::make_shared<asio::steady_timer>(io_, at(s_.http[i].t_request_us));
            ++pending_;
            t->async_wait([this, i, t](boost::system::error_code) { send_http(i); });
        }
        for (const auto& [n, st] : s_.streams) {
            auto& r = streams_[n];
            r.rec = &st;
            r.timer = std::make_unique<asio::steady_timer>(io_);
            r.mark_timer = std::make_unique<asio::steady_timer>(io_);
            prepare(r);
            end_us = std::max({end_us, st.t_open_us, st.t_close_us});
            if (!st.messages.empty()) end_us = std::max(end_us, st.messages.back().t_us);
            ++pending_;
            auto t = std::make_shared<asio::steady_timer>(io_, at(st.t_open_us));
            t->async_wait([this, n, t](boost::system::error_code) {
                auto& rr = streams_[n];
                rr.due = true;
                maybe_open(n);
            });
        }
        // Everything recorded, then 10 s for late answers.
        deadline_.expires_at(at(end_us) + std::chrono::seconds(10));
        deadline_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            timed_out_ = true;
            for (auto& [n, r] : streams_) {
                if (r.ws && !r.ended) r.ws->close(1000);
                r.timer->cancel();
                r.mark_timer->cancel();
            }
            io_.stop();
        });
        if (pending_ == 0) deadline_.cancel();
        io_.run();
    }

    // Prints the comparison; returns the number of differences.
    int compare(bool verbose) const {
        int diffs = 0;
        auto diff = [&](const std::string& what) {
            ++diffs;
            std::printf("  DIFFERENCE: %s\n", what.c_str());
        };
        for (std::size_t i = 0; i < s_.http.size(); ++i) {
            const auto& h = s_.http[i];
            const auto& r = http_[i];
            std::printf("%s %s: recorded %d in %s; replayed %s\n", h.method.c_str(),
                        h.target.c_str(), h.status,
                        ms(h.t_response_us >= 0 ? h.t_response_us - h.t_request_us : 0).c_str(),
                        !r.done         ? "no answer (timed out)"
                        : !r.outcome.ok ? r.outcome.error.c_str()
                                        : fmt::format("{} in {}", r.outcome.response.status,
                                                      ms(r.outcome.elapsed.count()))
                                              .c_str());
            if (!r.done || !r.outcome.ok) {
                if (h.status != 0) diff(fmt::format("{} {} was not answered", h.method, h.target));
                continue;
            }
            if (r.outcome.response.status != h.status)
                diff(fmt::format("{} {}: status {} (recorded {})", h.method, h.target,
                                 r.outcome.response.status, h.status));
            auto recorded_verbs = verbs_of(h.response_body);
            if (recorded_verbs != r.verbs)
                diff(fmt::format("{} {}: TwiML verbs [{}] (recorded [{}])", h.method, h.target,
                                 fmt::join(r.verbs, " "), fmt::join(recorded_verbs, " ")));
            const auto lat = r.outcome.elapsed.count() -
                             (h.t_response_us >= 0 ? h.t_response_us - h.t_request_us : 0);
            if (std::llabs(lat) > o_.tolerance_us)
                diff(fmt::format("{} {}: answered {} {} than recorded", h.method, h.target,
                                 ms(std::llabs(lat)), lat > 0 ? "slower" : "faster"));
        }
        for (const auto& [n, r] : streams_) {
            const auto& rec = *r.rec;
            std::vector<WsMessage> rs, rc;
            for (const auto& m : rec.messages) {
                WsMessage x = m;
                x.t_us -= rec.t_open_us;
                (m.from_twilio ? rc : rs).push_back(std::move(x));
            }
            const auto want = server_events(rs, rc);
            const auto got = server_events(r.server, r.caller);
            std::printf("stream %d (%s): %zu server event(s) recorded, %zu replayed%s\n", n,
                        r.url_known ? r.url.c_str() : "no url", want.size(), got.size(),
                        r.error.empty() ? "" : (" — " + r.error).c_str());
            if (!r.url_known) {
                diff(fmt::format("stream {}: the server's TwiML did not declare it", n));
                continue;
            }
            if (!r.started) {
                diff(fmt::format("stream {}: could not connect: {}", n, r.error));
                continue;
            }
            const std::size_t count = std::max(want.size(), got.size());
            for (std::size_t i = 0; i < count; ++i) {
                const ServerEvent* w = i < want.size() ? &want[i] : nullptr;
                const ServerEvent* g = i < got.size() ? &got[i] : nullptr;
                std::string line = fmt::format("  {:>3}. ", i + 1);
                if (w)
                    line += fmt::format("{} at {}", describe(*w), ms(w->t_us));
                else
                    line += "-";
                line += "  |  ";
                if (g)
                    line += fmt::format("{} at {}", describe(*g), ms(g->t_us));
                else
                    line += "-";
                if (w && g) line += fmt::format("  ({:+.0f} ms)", (g->t_us - w->t_us) / 1000.0);
                if (w && g && w->kind == "audio" && g->kind == "audio" && w->latency_us >= 0 &&
                    g->latency_us >= 0)
                    line += fmt::format("  response latency {} (recorded {})", ms(g->latency_us),
                                        ms(w->latency_us));
                if (verbose || !w || !g || w->kind != g->kind) std::printf("%s\n", line.c_str());
                if (!w) {
                    diff(fmt::format("stream {}: the server also sent {}", n, describe(*g)));
                    continue;
                }
                if (!g) {
                    diff(fmt::format("stream {}: the server never sent {} (recorded at {})", n,
                                     describe(*w), ms(w->t_us)));
                    continue;
                }
                if (w->kind != g->kind || w->name != g->name) {
                    diff(fmt::format("stream {} event {}: {} (recorded {})", n, i + 1, describe(*g),
                                     describe(*w)));
                    continue;
                }
                if (w->kind == "audio") {
                    const auto slack = std::max<std::int64_t>(2, w->frames / 10);
                    if (std::llabs(g->frames - w->frames) > slack)
                        diff(fmt::format("stream {} event {}: {} frames of audio (recorded {})", n,
                                         i + 1, g->frames, w->frames));
                }
                const auto dt = g->t_us - w->t_us;
                if (std::llabs(dt) > o_.tolerance_us)
                    diff(fmt::format("stream {} event {} ({}): {} {} than recorded{}", n, i + 1,
                                     describe(*g), ms(std::llabs(dt)), dt > 0 ? "later" : "earlier",
                                     w->kind == "audio" && w->latency_us >= 0 && g->latency_us >= 0
                                         ? fmt::format(" (response latency {} vs {})",
                                                       ms(g->latency_us), ms(w->latency_us))
                                         : std::string()));
            }
            if (rec.closed_by == "server" && r.closed_by != "server")
                diff(
                    fmt::format("stream {}: the recorded server closed the stream; this one did "
                                "not",
                                n));
            if (rec.closed_by == "twilio" && r.closed_by == "server")
                diff(
                    fmt::format("stream {}: the server closed the stream (code {}) before the "
                                "caller hung up",
                                n, r.close_code));
        }
        if (timed_out_) diff("the replay did not finish in time (the recording's length + 10 s)");
        return diffs;
    }

  private:
    Clock::time_point at(std::int64_t t_us) const {
        const double rel = static_cast<double>(std::max<std::int64_t>(0, t_us - base_)) / o_.speed;
        return t0_ + std::chrono::microseconds(static_cast<std::int64_t>(rel));
    }
    // Time since `origin` in the recording's units (× speed).
    std::int64_t since(Clock::time_point origin) const {
        return static_cast<std::int64_t>(
            std::chrono::duration<double, std::micro>(Clock::now() - origin).count() * o_.speed);
    }

    std::string fresh(std::string s) const {
        for (const auto& [from, to] : sids_) replace_all(s, from, to);
        return s;
    }

    static std::vector<std::string> verbs_of(const std::string& body) {
        std::vector<std::string> v;
        auto doc = twiml::parse(body);
        if (!doc) return v;
        for (const auto& verb : doc->verbs) v.emplace_back(twiml::verb_name(verb));
        return v;
    }

    void done_one() {
        if (--pending_ == 0) deadline_.cancel();
    }

    void send_http(std::size_t i) {
        const auto& h = s_.http[i];
        HttpRequest req;
        req.method = h.method;
        const auto& webhook_target = s_.http.front().target;
        if (h.target == webhook_target) {
            req.url = o_.webhook;
        } else if (auto u = core::resolve_url(o_.webhook, h.target)) {
            req.url = *u;
        } else {
            req.url = o_.webhook;
        }
        req.content_type = h.content_type;
        core::Parameters params;
        const bool form = h.content_type.find("x-www-form-urlencoded") != std::string::npos;
        if (form) {
            if (auto p = core::form_decode(h.body)) params = std::move(*p);
            for (auto& [k, v] : params) {
                v = fresh(v);
                if (v == session::kRedacted) {
                    if (k == "From" || k == "Caller")
                        v = "+14155550100";
                    else if (k == "To" || k == "Called")
                        v = "+15005550006";
                    else
                        v.clear();
                }
            }
            req.body = core::form_encode(params);
        } else {
            req.body = fresh(h.body);
        }
        if (!o_.auth_token.empty())
            req.headers.emplace_back("X-Twilio-Signature",
                                     core::compute_signature(o_.auth_token, req.url.to_string(),
                                                             form ? params : core::Parameters{}));
        http_[i].url = req.url.to_string();
        const core::Url doc = req.url;
        http_request(io_, o_.net, std::move(req), [this, i, doc](HttpOutcome out) {
            auto& r = http_[i];
            r.done = true;
            if (out.ok) {
                r.verbs = verbs_of(out.response.body);
                if (auto d = twiml::parse(out.response.body))
                    for (const auto& v : d->verbs) {
                        const twiml::Stream* st = nullptr;
                        if (auto* a = std::get_if<twiml::StartStream>(&v)) st = &a->stream;
                        if (auto* c = std::get_if<twiml::ConnectStream>(&v)) st = &c->stream;
                        if (!st) continue;
                        auto u = core::resolve_url(doc, st->url);
                        r.stream_urls.push_back(u ? u->to_string() : st->url);
                    }
            }
            r.outcome = std::move(out);
            // The recorded exchange declared streams; this answer's urls take their places.
            const auto& declared = s_.http[i].streams;
            for (std::size_t k = 0; k < declared.size(); ++k) {
                auto it = streams_.find(declared[k]);
                if (it == streams_.end() || k >= r.stream_urls.size()) continue;
                it->second.url = r.stream_urls[k];
                it->second.url_known = true;
                maybe_open(declared[k]);
            }
            for (int n : declared) {
                auto it = streams_.find(n);
                if (it != streams_.end() && !it->second.url_known) finish_stream(n);
            }
            done_one();
        });
    }

    void prepare(StreamRun& r) {
        const auto& msgs = r.rec->messages;
        for (std::size_t i = 0; i < msgs.size(); ++i) {
            const auto& m = msgs[i];
            if (!m.from_twilio) continue;
            if (!m.binary) {
                json j = json::parse(m.text, nullptr, false);
                if (event_of(j) == "mark") {
                    r.echo_text.emplace(mark_name(j), m.text);
                    if (r.echo_template.empty()) r.echo_template = m.text;
                    continue;
                }
            }
            r.plan.push_back(i);
        }
    }

    std::string echo_for(const StreamRun& r, const std::string& name) const {
        auto it = r.echo_text.find(name);
        if (it != r.echo_text.end()) return fresh(it->second);
        json j = json::parse(
            r.echo_template.empty() ? std::string("{\"event\":\"mark\"}") : fresh(r.echo_template),
            nullptr, false);
        j["mark"] = {{"name", name}};
        if (!j.contains("streamSid"))
            for (const auto& m : r.caller) {
                json c = json::parse(m.text, nullptr, false);
                if (!c.is_discarded() && c.contains("streamSid")) {
                    j["streamSid"] = c["streamSid"];
                    break;
                }
            }
        return j.dump();
    }

    // Sends the echoes that are due and arms the timer for the next one.
    void pump_echoes(int n) {
        auto& r = streams_[n];
        if (!r.playout || r.ended || !r.ws) return;
        r.playout->advance(Clock::now());
        for (auto& e : r.playout->take_echoes()) {
            auto text = echo_for(r, e.name);
            r.caller.push_back({since(r.origin), true, false, text});
            r.ws->send(std::move(text));
        }
        if (auto due = r.playout->next_mark_due()) {
            r.mark_timer->expires_at(*due);
            r.mark_timer->async_wait([this, n](boost::system::error_code ec) {
                if (!ec) pump_echoes(n);
            });
        }
    }

    void maybe_open(int n) {
        auto& r = streams_[n];
        if (!r.due || !r.url_known || r.started || r.ended) return;
        auto url = core::parse_url(r.url);
        if (!url || (url->scheme != "ws" && url->scheme != "wss")) {
            r.error = fmt::format("the stream url \"{}\" is not ws:// or wss://", r.url);
            return finish_stream(n);
        }
        std::vector<std::pair<std::string, std::string>> headers;
        if (!o_.auth_token.empty())
            headers.emplace_back("X-Twilio-Signature",
                                 core::compute_signature(o_.auth_token, url->to_string()));
        r.started = true;
        WsClientEvents ev;
        ev.on_open = [this, n] {
            auto& rr = streams_[n];
            rr.origin = Clock::now();
            rr.playout.emplace(rr.origin);
            play_next(n);
        };
        ev.on_message = [this, n](std::string data, bool binary) {
            auto& rr = streams_[n];
            WsMessage m{since(rr.origin), false, binary, data};
            if (!binary && rr.playout) {
                json j = json::parse(data, nullptr, false);
                const auto what = event_of(j);
                const auto now = Clock::now();
                if (what == "media") {
                    auto bytes = payload_of(j);
                    rr.playout->push_audio(now, bytes);
                } else if (what == "mark") {
                    rr.playout->push_mark(now, mark_name(j));
                } else if (what == "clear") {
                    rr.playout->clear(now);
                }
            }
            rr.server.push_back(std::move(m));
            pump_echoes(n);
        };
        ev.on_closed = [this, n](int code, std::string error) {
            auto& rr = streams_[n];
            rr.close_code = code;
            if (!error.empty()) rr.error = error;
            if (rr.closed_by.empty()) rr.closed_by = error.empty() ? "server" : "error";
            finish_stream(n);
        };
        r.ws = ws_connect(io_, o_.net, *url, std::move(headers), std::move(ev));
    }

    void play_next(int n) {
        auto& r = streams_[n];
        if (r.ended) return;
        const auto& msgs = r.rec->messages;
        const auto to_origin = [&](std::int64_t t_us) {
            return r.origin + std::chrono::microseconds(static_cast<std::int64_t>(
                                  static_cast<double>(t_us - r.rec->t_open_us) / o_.speed));
        };
        if (r.next < r.plan.size()) {
            const auto& m = msgs[r.plan[r.next]];
            r.timer->expires_at(to_origin(m.t_us));
            r.timer->async_wait([this, n](boost::system::error_code ec) {
                if (ec) return;
                auto& rr = streams_[n];
                if (rr.ended) return;
                pump_echoes(n);  // marks due before this frame go first
                const auto& mm = rr.rec->messages[rr.plan[rr.next++]];
                std::string data = mm.binary ? mm.text : fresh(mm.text);
                if (mm.binary) {
                    std::vector<std::uint8_t> raw(core::base64_decoded_max_size(mm.text.size()));
                    auto k = core::base64_decode(mm.text, raw.data());
                    data.assign(reinterpret_cast<const char*>(raw.data()), k ? *k : 0);
                }
                rr.caller.push_back({since(rr.origin), true, mm.binary, data});
                rr.ws->send(std::move(data), mm.binary);
                play_next(n);
            });
            return;
        }
        // Everything sent: hang up as the recording did, or wait for the server to close.
        const bool twilio_closed = r.rec->closed_by == "twilio" || r.rec->closed_by == "recorder";
        std::int64_t close_at = r.rec->t_close_us >= 0
                                    ? r.rec->t_close_us
                                    : (msgs.empty() ? r.rec->t_open_us : msgs.back().t_us);
        auto when = to_origin(close_at);
        if (!twilio_closed) when += std::chrono::seconds(5);  // the server should close first
        r.timer->expires_at(when);
        r.timer->async_wait([this, n, twilio_closed](boost::system::error_code ec) {
            if (ec) return;
            auto& rr = streams_[n];
            if (rr.ended || !rr.ws) return;
            if (rr.closed_by.empty()) rr.closed_by = twilio_closed ? "twilio" : "timeout";
            rr.ws->close(rr.rec->close_code > 0 ? rr.rec->close_code : 1000);
        });
    }

    void finish_stream(int n) {
        auto& r = streams_[n];
        if (r.ended) return;
        r.ended = true;
        r.timer->cancel();
        r.mark_timer->cancel();
        done_one();
    }

    asio::io_context& io_;
    const session::Session& s_;
    Options o_;
    asio::steady_timer deadline_;
    std::map<std::string, std::string> sids_;
    std::int64_t base_ = 0;
    Clock::time_point t0_;
    std::vector<HttpResult> http_;
    std::map<int, StreamRun> streams_;
    int pending_ = 0;
    bool timed_out_ = false;
};

// --to-scenario: the caller's side of the first stream as scenario steps.
int write_scenario(const session::Session& s, const std::filesystem::path& out) {
    const session::StreamRecord* st = nullptr;
    for (const auto& [n, r] : s.streams)
        if (!r.messages.empty()) {
            st = &r;
            break;
        }
    if (!st) {
        std::fprintf(stderr, "mediasim replay: the session has no stream to make a scenario of\n");
        return 2;
    }
    struct Frame {
        std::int64_t t;
        std::vector<std::uint8_t> audio;
        bool speech;
    };
    std::vector<Frame> frames;
    std::vector<std::pair<std::int64_t, std::string>> digits;
    std::vector<WsMessage> server, caller;
    bool bidirectional = false;
    for (const auto& m : st->messages) {
        WsMessage x = m;
        x.t_us -= st->t_open_us;
        if (!m.from_twilio) {
            bidirectional = true;
            server.push_back(x);
            continue;
        }
        caller.push_back(x);
        if (m.binary) continue;
        json j = json::parse(m.text, nullptr, false);
        const auto ev = event_of(j);
        if (ev == "media") {
            const auto track = j["media"].value("track", "inbound");
            if (track != "inbound") continue;
            auto a = payload_of(j);
            frames.push_back({x.t_us, a, speech(a)});
        } else if (ev == "dtmf" && j.contains("dtmf") && j["dtmf"].is_object()) {
            digits.emplace_back(x.t_us, j["dtmf"].value("digit", ""));
        }
    }
    for (const auto& h : s.http)
        if (h.response_body.find("<Connect") != std::string::npos) bidirectional = true;
    const auto bot = server_events(server, caller);

    // Speech segments: speech frames with gaps shorter than 300 ms between them.
    struct Segment {
        std::size_t first, last;
    };
    std::vector<Segment> segs;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (!frames[i].speech) continue;
        if (!segs.empty() && frames[i].t - frames[segs.back().last].t < 300000)
            segs.back().last = i;
        else
            segs.push_back({i, i});
    }
    const auto stem = out.stem().string();
    const auto dir = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string y = fmt::format(
        "# Made by mediasim replay --to-scenario from a session recorded {} (upstream {}).\n"
        "# The caller's words are the recorded audio; each bot answer the recording had is a\n"
        "# wait with `within` = the recorded response latency + 1000 ms.\n"
        "name: {}\n"
        "description: Replayed from a recorded session.\n",
        s.started_at, s.upstream, stem);
    std::int64_t end_t = frames.empty() ? 0 : frames.back().t + 20000;
    y += fmt::format("max_call_duration: {}s\n", end_t / 1000000 + 60);
    y += fmt::format("stream:\n  mode: {}\nsteps:\n", bidirectional ? "connect" : "start");
    // Walk the timeline: silence up to each segment (waiting for the bot's answers and pressing
    // digits on the way), then the segment's audio.
    std::int64_t now = 0;
    std::size_t next_bot = 0, next_digit = 0;
    auto gap_until = [&](std::int64_t t) {
        // The bot's answers (audio runs: a wait consumes the time until they came) and the
        // digits (after silence) before t; marks and clears are the server's, not steps.
        while (true) {
            while (next_bot < bot.size() && bot[next_bot].kind != "audio") ++next_bot;
            std::int64_t tb = next_bot < bot.size() ? bot[next_bot].t_us : INT64_MAX;
            std::int64_t td = next_digit < digits.size() ? digits[next_digit].first : INT64_MAX;
            if (std::min(tb, td) >= t) break;
            if (tb <= td) {
                const auto& e = bot[next_bot++];
                if (e.latency_us >= 0)
                    y += fmt::format("  - wait: {{for: audio, within: {}ms, timeout: 15s}}\n",
                                     e.latency_us / 1000 + 1000);
                else
                    y += "  - wait: {for: audio, timeout: 15s}\n";
                now = std::max(now, tb);
            } else {
                if (td > now + 20000) y += fmt::format("  - silence: {}ms\n", (td - now) / 1000);
                now = std::max(now, td);
                // Consecutive digits become one dtmf step.
                std::string ds = digits[next_digit++].second;
                while (next_digit < digits.size() && digits[next_digit].first - now < 600000)
                    ds += digits[next_digit++].second;
                y += fmt::format("  - dtmf: \"{}\"\n", ds);
                now += 250000 * static_cast<std::int64_t>(ds.size());
            }
        }
        if (t != INT64_MAX && t > now + 20000)
            y += fmt::format("  - silence: {}ms\n", (t - now) / 1000);
        if (t != INT64_MAX) now = std::max(now, t);
    };
    for (std::size_t k = 0; k < segs.size(); ++k) {
        const auto& sg = segs[k];
        gap_until(frames[sg.first].t);
        std::vector<std::uint8_t> audio;
        for (std::size_t i = sg.first; i <= sg.last; ++i)
            audio.insert(audio.end(), frames[i].audio.begin(), frames[i].audio.end());
        const auto wav = fmt::format("{}-{}.wav", stem, k + 1);
        if (auto st2 = core::write_wav(dir / wav, core::AudioFormat{}, audio); !st2) {
            std::fprintf(stderr, "mediasim replay: %s\n", st2.error().to_string().c_str());
            return 1;
        }
        y += fmt::format("  - speak: {{audio: {}}}\n", wav);
        now = frames[sg.first].t + static_cast<std::int64_t>(audio.size()) * 125;
    }
    gap_until(end_t);
    y += "  - hangup\n";
    std::ofstream f(out);
    f << y;
    if (!f) {
        std::fprintf(stderr, "mediasim replay: cannot write %s\n", out.string().c_str());
        return 1;
    }
    std::printf("wrote %s (%zu utterance(s), %zu bot answer(s), %zu digit(s))\n",
                out.string().c_str(), segs.size(), bot.size(), digits.size());
    return 0;
}

}  // namespace

int cmd_replay(Args args) {
    std::string session_path, webhook, auth_token, to_scenario, tolerance = "250ms", ca_file;
    std::vector<std::string> connect_to;
    double speed = 1;
    bool insecure = false, verbose = false;
    core::ArgParser p("mediasim replay",
                      "Plays the Twilio side of a recorded session (mediasim record) against a "
                      "server and compares what it does with what the recorded server did; or "
                      "turns the session into a scenario.");
    p.positional("SESSION", &session_path, "the session file (JSON lines)")
        .option("webhook", &webhook, "URL", "the server's voice webhook to replay against")
        .option("auth-token", &auth_token, "TOKEN",
                "sign requests and upgrades with this token (default: $TWILIO_AUTH_TOKEN)")
        .option("speed", &speed, "X", "play X times as fast (default 1: the original timing)", 0.01)
        .option("tolerance", &tolerance, "TIME",
                "timing differences up to this are not reported (default 250ms)")
        .option("to-scenario", &to_scenario, "FILE",
                "write the caller's side as a scenario YAML (and its audio next to it) instead")
        .multi("connect-to", &connect_to, "HOST:PORT=HOST2:PORT2",
               "connect there instead (URLs, Host and signatures unchanged)")
        .flag("insecure", &insecure, "accept any TLS certificate")
        .option("ca-file", &ca_file, "FILE", "trust this CA certificate (PEM)")
        .flag("verbose", &verbose, "list every event, not only the differences");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim replay: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    auto s = session::read_session(session_path);
    if (!s) {
        std::fprintf(stderr, "mediasim replay: %s\n", s.error().to_string().c_str());
        return 2;
    }
    if (!to_scenario.empty()) return write_scenario(*s, to_scenario);
    if (webhook.empty()) {
        std::fprintf(stderr, "mediasim replay: give --webhook URL (or --to-scenario FILE)\n");
        return 2;
    }
    auto url = core::parse_url(webhook);
    if (!url || (url->scheme != "http" && url->scheme != "https")) {
        std::fprintf(stderr, "mediasim replay: --webhook: \"%s\" is not an http(s):// URL\n",
                     webhook.c_str());
        return 2;
    }
    auto tol = parse_duration(tolerance);
    if (!tol) {
        std::fprintf(stderr, "mediasim replay: --tolerance: %s\n", tol.error().message.c_str());
        return 2;
    }
    if (s->http.empty()) {
        std::fprintf(stderr, "mediasim replay: %s has no webhook request to replay\n",
                     session_path.c_str());
        return 2;
    }
    if (auth_token.empty())
        if (const char* t = std::getenv("TWILIO_AUTH_TOKEN")) auth_token = t;
    Options o;
    o.webhook = *url;
    o.auth_token = auth_token;
    o.speed = speed;
    o.tolerance_us = std::chrono::duration_cast<std::chrono::microseconds>(*tol).count();
    auto net = make_net_config(connect_to, insecure, ca_file);
    if (!net) {
        std::fprintf(stderr, "mediasim replay: %s\n", net.error().to_string().c_str());
        return 2;
    }
    o.net = *net;

    std::printf("replaying %s (%zu request(s), %zu stream(s)) against %s at %gx\n",
                session_path.c_str(), s->http.size(), s->streams.size(), webhook.c_str(), speed);
    std::fflush(stdout);
    asio::io_context io{1};
    Replayer r(io, *s, o);
    r.run();
    const int diffs = r.compare(verbose);
    if (diffs == 0) {
        std::printf("result: the server did what the recorded server did (tolerance %s)\n",
                    tolerance.c_str());
        return 0;
    }
    std::printf("result: %d difference(s) beyond the tolerance (%s)\n", diffs, tolerance.c_str());
    return 1;
}

}  // namespace mediasim::sim
