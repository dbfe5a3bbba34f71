#include "simulator/call.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <ctime>

#include "core/form.hpp"
#include "core/ids.hpp"
#include "core/signature.hpp"
#include "simulator/script.hpp"
#include "simulator/stream_client.hpp"
#include "simulator/twiml.hpp"

namespace mediasim::sim {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

constexpr std::size_t kMaxTwimlBytes = 64 * 1024;  // Twilio: error 11750 beyond
constexpr int kMaxDocuments = 100;                 // a Redirect loop ends the call

std::string iso8601_now() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

bool twiml_content_type(std::string_view ct) {
    auto semi = ct.find(';');
    std::string t(ct.substr(0, semi));
    while (!t.empty() && t.back() == ' ') t.pop_back();
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t == "text/xml" || t == "application/xml" || t == "text/html";
}

class CallSession : public std::enable_shared_from_this<CallSession> {
  public:
    CallSession(asio::io_context& io, std::shared_ptr<const CallConfig> config, std::uint64_t n,
                std::uint64_t seed, WorkerStats* stats, std::function<void(CallReport)> done,
                Clock::time_point due)
        : io_(io),
          cfg_(std::move(config)),
          stats_(stats),
          done_(std::move(done)),
          sids_(seed),
          wait_(io),
          deadline_(io),
          due_(due) {
        report_.outcome.n = n;
        call_sid_ = sids_.next("CA");
        account_sid_ = cfg_->account_sid.empty() ? sids_.next("AC") : cfg_->account_sid;
        report_.outcome.call_sid = call_sid_;
        report_.account_sid = account_sid_;
    }

    void start() {
        started_ = Clock::now();
        if (due_ == Clock::time_point{}) due_ = started_;
        deadline_.expires_after(cfg_->max_duration);
        deadline_.async_wait([self = shared_from_this()](error_code ec) {
            if (ec) return;
            self->failure(FailureClass::timeout, fmt::format("the call lasted longer than {} s",
                                                             self->cfg_->max_duration.count()));
            self->hang_up("the call's time limit");
        });
        if (!cfg_->stream_url.empty()) {
            auto url = core::parse_url(cfg_->stream_url);
            if (!url) return abort(FailureClass::other, "--stream: " + url.error().to_string());
            if (url->scheme != "ws" && url->scheme != "wss")
                return abort(
                    FailureClass::other,
                    fmt::format("--stream {}: the scheme must be ws or wss", cfg_->stream_url));
            log(fmt::format("call {} (no webhook: stream {})", call_sid_, cfg_->stream_url));
            twiml::Stream s;
            s.url = cfg_->stream_url;
            s.parameters = cfg_->params;
            const bool bidi = cfg_->stream_bidirectional;
            if (!bidi && cfg_->stream_track == "outbound_track")
                s.track = twiml::StreamTrack::outbound_track;
            else if (!bidi && cfg_->stream_track == "both_tracks")
                s.track = twiml::StreamTrack::both_tracks;
            open_stream(s, *url, bidi, /*connect=*/bidi);
            return;
        }
        auto url = core::parse_url(cfg_->webhook_url);
        if (!url) return abort(FailureClass::other, "--webhook: " + url.error().to_string());
        log(fmt::format("call {} from {} to {}", call_sid_, cfg_->from, cfg_->to));
        fetch(*url, "POST", {}, "webhook");
    }

  private:
    // ---- timeline and outcome ------------------------------------------------------------------
    void log(const std::string& line) {
        if (cfg_->timeline)
            cfg_->timeline(
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_),
                line);
    }

    void failure(FailureClass cls, std::string message) {
        if (report_.outcome.failure == FailureClass::none) {
            report_.outcome.failure = cls;
            report_.outcome.first_error = message;
        }
        log(fmt::format("error ({}): {}", failure_class_name(cls), message));
    }

    void abort(FailureClass cls, std::string message) {
        failure(cls, std::move(message));
        hang_up("the call failed");
    }

    // ---- HTTP: webhook, actions, redirects, status callbacks -----------------------------------
    core::Parameters call_parameters(bool first) const {
        core::Parameters p = {
            {"AccountSid", account_sid_},
            {"ApiVersion", "2010-04-01"},
            {"CallSid", call_sid_},
            {"CallStatus", first ? "ringing" : "in-progress"},
            {"Called", cfg_->to},
            {"CalledCity", ""},
            {"CalledCountry", "US"},
            {"CalledState", ""},
            {"CalledZip", ""},
            {"Caller", cfg_->from},
            {"CallerCity", ""},
            {"CallerCountry", "US"},
            {"CallerState", ""},
            {"CallerZip", ""},
            {"Direction", "inbound"},
            {"From", cfg_->from},
            {"FromCity", ""},
            {"FromCountry", "US"},
            {"FromState", ""},
            {"FromZip", ""},
            {"To", cfg_->to},
            {"ToCity", ""},
            {"ToCountry", "US"},
            {"ToState", ""},
            {"ToZip", ""},
        };
        for (const auto& kv : cfg_->params) p.push_back(kv);
        return p;
    }

    // A signed form request (POST) or a signed GET with the parameters in the query.
    HttpRequest signed_request(const core::Url& url, const std::string& method,
                               const core::Parameters& params) const {
        HttpRequest r;
        r.method = method;
        r.url = url;
        if (method == "GET") {
            std::string q = core::form_encode(params);
            if (!q.empty())
                r.url.target += (r.url.target.find('?') == std::string::npos ? "?" : "&") + q;
            if (!cfg_->auth_token.empty())
                r.headers.emplace_back(
                    "X-Twilio-Signature",
                    core::compute_signature(cfg_->auth_token, r.url.to_string()));
        } else {
            r.content_type = "application/x-www-form-urlencoded; charset=utf-8";
            r.body = core::form_encode(params);
            if (!cfg_->auth_token.empty())
                r.headers.emplace_back(
                    "X-Twilio-Signature",
                    core::compute_signature(cfg_->auth_token, url.to_string(), params));
        }
        r.headers.emplace_back("I-Twilio-Idempotency-Token",
                               call_sid_ + "-" + std::to_string(++requests_));
        return r;
    }

    // Requests a TwiML document (webhook, action, redirect) and runs it.
    void fetch(const core::Url& url, const std::string& method, const core::Parameters& extra,
               const char* what) {
        if (hung_up_) return;
        if (++documents_ > kMaxDocuments)
            return abort(FailureClass::twiml_invalid,
                         fmt::format("more than {} TwiML documents in one call (a Redirect loop?)",
                                     kMaxDocuments));
        const bool first = documents_ == 1;
        auto params = call_parameters(first);
        for (const auto& kv : extra) params.push_back(kv);
        auto req = signed_request(url, method, params);
        const auto sent = Clock::now();
        log(fmt::format("{} {} {}", what, method, url.to_string()));
        ++pending_;
        const auto delay =
            cfg_->impair ? cfg_->impair->webhook_delay : std::chrono::milliseconds(0);
        if (delay.count() <= 0) {
            http_request(io_, cfg_->net, std::move(req),
                         [self = shared_from_this(), url, first, sent](HttpOutcome o) {
                             --self->pending_;
                             self->on_document(url, first, sent, std::move(o));
                         });
            return;
        }
        // A slow webhook path (impairment): the request leaves `delay` late and its answer
        // arrives `delay` late again; the latency counts all of it.
        auto timer = std::make_shared<asio::steady_timer>(io_, delay);
        timer->async_wait([self = shared_from_this(), timer, url, first, sent, delay,
                           req = std::move(req)](error_code) mutable {
            http_request(self->io_, self->cfg_->net, std::move(req),
                         [self, timer, url, first, sent, delay](HttpOutcome o) {
                             timer->expires_after(delay);
                             timer->async_wait([self, timer, url, first, sent,
                                                o = std::move(o)](error_code) mutable {
                                 --self->pending_;
                                 self->on_document(url, first, sent, std::move(o));
                             });
                         });
        });
    }

    void on_document(const core::Url& url, bool first, Clock::time_point sent, HttpOutcome o) {
        if (hung_up_) return maybe_finish();
        const auto now = Clock::now();
        const auto from = first ? std::min(due_, sent) : sent;
        if (!o.ok) return abort(o.failure, o.error);
        if (stats_)
            stats_->record(
                Metric::webhook_latency,
                std::chrono::duration_cast<std::chrono::microseconds>(now - from).count());
        if (first) {
            report_.webhook_status = o.response.status;
            report_.webhook_content_type = o.response.content_type;
            report_.twiml = o.response.body;
            report_.webhook_latency =
                std::chrono::duration_cast<std::chrono::microseconds>(now - sent);
        }
        log(fmt::format("  → {} {} in {} ms ({} bytes)", o.response.status, o.response.content_type,
                        std::chrono::duration_cast<std::chrono::milliseconds>(now - sent).count(),
                        o.response.body.size()));
        if (o.response.status != 200)
            return abort(FailureClass::http_status,
                         fmt::format("{} answered HTTP {} (Twilio: error 11200, the call ends)",
                                     url.to_string(), o.response.status));
        if (!twiml_content_type(o.response.content_type))
            return abort(FailureClass::twiml_invalid,
                         fmt::format("{} answered Content-Type \"{}\"; TwiML must be text/xml, "
                                     "application/xml or text/html (Twilio error 12300)",
                                     url.to_string(), o.response.content_type));
        if (o.response.body.size() > kMaxTwimlBytes)
            return abort(
                FailureClass::twiml_invalid,
                fmt::format("{} answered {} bytes of TwiML; Twilio allows 64 kB (error 11750)",
                            url.to_string(), o.response.body.size()));
        auto doc = twiml::parse(o.response.body, url.to_string());
        if (!doc)
            return abort(FailureClass::twiml_invalid,
                         doc.error().to_string() + " (Twilio error 12100)");
        for (const auto& w : doc->warnings) log("TwiML warning: " + w);
        doc_ = std::move(*doc);
        doc_url_ = url;
        next_ = 0;
        run_next();
    }

    void status_callback(const std::string& stream_sid, const std::string& name,
                         const twiml::Stream& s, const char* event, const std::string& error) {
        if (s.status_callback.empty()) return;
        auto url = core::resolve_url(doc_url_, s.status_callback);
        if (!url) {
            log(fmt::format("statusCallback \"{}\": {}", s.status_callback,
                            url.error().to_string()));
            return;
        }
        core::Parameters p = {{"AccountSid", account_sid_},
                              {"CallSid", call_sid_},
                              {"StreamSid", stream_sid},
                              {"StreamName", name.empty() ? stream_sid : name},
                              {"StreamEvent", event}};
        if (!error.empty()) p.emplace_back("StreamError", error);
        p.emplace_back("Timestamp", iso8601_now());
        auto req = signed_request(*url, s.status_callback_method, p);
        log(fmt::format("status callback {} → {} {}", event, s.status_callback_method,
                        url->to_string()));
        ++pending_;
        http_request(io_, cfg_->net, std::move(req),
                     [self = shared_from_this(), ev = std::string(event),
                      u = url->to_string()](HttpOutcome o) {
                         --self->pending_;
                         self->report_.status_callbacks.push_back(
                             {ev, u, o.ok ? o.response.status : 0, o.ok ? "" : o.error});
                         if (!o.ok)
                             self->log(fmt::format("status callback {} failed: {}", ev, o.error));
                         else if (o.response.status >= 300)
                             self->log(fmt::format("status callback {} answered HTTP {}", ev,
                                                   o.response.status));
                         self->maybe_finish();
                     });
    }

    // ---- verbs ---------------------------------------------------------------------------------
    void wait_then(Clock::duration d, std::function<void()> then) {
        wait_.expires_after(d);
        wait_.async_wait([self = shared_from_this(), then = std::move(then)](error_code ec) {
            if (ec || self->hung_up_) return;
            then();
        });
    }

    void run_next() {
        if (hung_up_) return;
        if (next_ >= doc_.verbs.size()) return hang_up("end of the TwiML document");
        const twiml::Verb& v = doc_.verbs[next_++];
        std::string d = twiml::describe(v);
        report_.verbs.push_back(d);
        log(d);
        std::visit([this](const auto& verb) { run(verb); }, v);
    }

    void go_on() {
        asio::post(io_, [self = shared_from_this()] { self->run_next(); });
    }

    void run(const twiml::Say& s) {
        wait_then(twiml::say_duration(s), [this] { run_next(); });
    }
    Clock::duration play_time(const twiml::Play& p) const {
        Clock::duration t{};
        if (!p.url.empty()) t += cfg_->play_duration * (p.loop == 0 ? twiml::kMaxLoop : p.loop);
        for (char c : p.digits) t += (c == 'w' || c == 'W') ? 500ms : 100ms;
        return t;
    }
    void run(const twiml::Play& p) {
        wait_then(play_time(p), [this] { run_next(); });
    }
    void run(const twiml::Pause& p) {
        wait_then(p.length, [this] { run_next(); });
    }
    void run(const twiml::StartStream& s) {
        auto url = stream_url(s.stream);
        if (!url) {
            failure(FailureClass::twiml_invalid, url.error().to_string());
            return go_on();
        }
        open_stream(s.stream, *url, false, false);
        go_on();  // <Start> does not block
    }
    void run(const twiml::ConnectStream& c) {
        auto url = stream_url(c.stream);
        if (!url) return abort(FailureClass::twiml_invalid, url.error().to_string());
        connect_action_ = c.action;
        connect_method_ = c.method;
        open_stream(c.stream, *url, true, true);
        // Blocks until the stream ends (on_stream_ended).
    }
    void run(const twiml::StopStream& s) {
        bool any = false;
        for (auto& e : streams_) {
            if (e.ended || e.connect) continue;
            if (s.name.empty() ? e.name.empty() : e.name == s.name) {
                e.client->hang_up();
                any = true;
            }
        }
        if (!any) log(fmt::format("<Stop>: no running stream named \"{}\"", s.name));
        go_on();
    }
    void run(const twiml::Gather& g) {
        Clock::duration prompts{};
        for (const auto& p : g.prompts) {
            if (auto* say = std::get_if<twiml::Say>(&p)) prompts += twiml::say_duration(*say);
            if (auto* play = std::get_if<twiml::Play>(&p)) prompts += play_time(*play);
            if (auto* pause = std::get_if<twiml::Pause>(&p)) prompts += pause->length;
        }
        core::Parameters input;
        Clock::duration input_time{};
        if (g.dtmf && !dtmf_left_.empty()) {
            std::string digits;
            std::string finished_on;
            std::size_t i = 0;
            for (; i < dtmf_left_.size(); ++i) {
                char c = dtmf_left_[i];
                if (c == 'w' || c == 'W') {
                    input_time += 500ms;
                    continue;
                }
                input_time += 250ms;
                if (!g.finish_on_key.empty() && c == g.finish_on_key[0]) {
                    finished_on = std::string(1, c);
                    ++i;
                    break;
                }
                digits += c;
                if (g.num_digits > 0 && static_cast<int>(digits.size()) >= g.num_digits) {
                    ++i;
                    break;
                }
            }
            dtmf_left_.erase(0, i);
            input.emplace_back("Digits", digits);
            if (!finished_on.empty()) input.emplace_back("FinishedOnKey", finished_on);
            input.emplace_back("msg", "Gather End");
            log(fmt::format("caller presses {}{}", digits, finished_on));
        } else if (g.speech && !speech_left_.empty()) {
            input = {{"SpeechResult", speech_left_}, {"Confidence", "0.9"}};
            input_time = std::chrono::milliseconds(
                300 + 70 * static_cast<std::int64_t>(speech_left_.size()));
            log(fmt::format("caller says \"{}\"", speech_left_));
            speech_left_.clear();
        }
        const twiml::Gather gather = g;
        if (input.empty()) {
            // No input: the timeout passes, then the next verb (or the action when asked).
            wait_then(prompts + g.timeout, [this, gather] {
                log("<Gather>: no input");
                if (gather.action_on_empty_result) return gather_action(gather, {});
                run_next();
            });
            return;
        }
        wait_then(prompts + input_time, [this, gather, input] { gather_action(gather, input); });
    }
    void gather_action(const twiml::Gather& g, const core::Parameters& input) {
        auto url = g.action.empty() ? core::Result<core::Url>(doc_url_)
                                    : core::resolve_url(doc_url_, g.action);
        if (!url)
            return abort(FailureClass::twiml_invalid,
                         "<Gather action>: " + url.error().to_string());
        fetch(*url, g.method, input, "gather action");
    }
    void run(const twiml::Redirect& r) {
        auto url = core::resolve_url(doc_url_, r.url);
        if (!url)
            return abort(FailureClass::twiml_invalid, "<Redirect>: " + url.error().to_string());
        fetch(*url, r.method, {}, "redirect");
    }
    void run(const twiml::Dial& d) {
        report_.outcome.handoff = d.target;
        log(fmt::format("handed off to {}", d.target));
        if (d.action.empty()) return hang_up("handed off by <Dial>");
        auto url = core::resolve_url(doc_url_, d.action);
        if (!url)
            return abort(FailureClass::twiml_invalid, "<Dial action>: " + url.error().to_string());
        fetch(*url, d.method,
              {{"DialCallStatus", "completed"},
               {"DialCallSid", sids_.next("CA")},
               {"DialCallDuration", "0"}},
              "dial action");
    }
    void run(const twiml::Hangup&) { hang_up("<Hangup>"); }
    void run(const twiml::Reject& r) { hang_up(fmt::format("<Reject reason=\"{}\">", r.reason)); }

    core::Result<core::Url> stream_url(const twiml::Stream& s) const {
        auto url = core::resolve_url(doc_url_, s.url);
        if (!url)
            return core::make_error(
                fmt::format("<Stream url=\"{}\">: {}", s.url, url.error().message));
        // A relative stream URL resolves against the document with a WebSocket scheme [U].
        if (url->scheme == "https") url->scheme = "wss";
        if (url->scheme == "http") url->scheme = "ws";
        return url;
    }

    // ---- streams -------------------------------------------------------------------------------
    struct StreamEntry {
        std::shared_ptr<StreamClient> client;
        twiml::Stream spec;
        std::string sid;
        std::string name;
        std::string url;
        bool bidirectional = false, inbound = true, outbound = false;
        bool connect = false;
        bool ended = false;
    };

    void open_stream(const twiml::Stream& s, const core::Url& url, bool bidirectional,
                     bool connect) {
        StreamPlan plan;
        plan.url = url;
        plan.auth_token = cfg_->auth_token;
        plan.account_sid = account_sid_;
        plan.call_sid = call_sid_;
        plan.stream_sid = sids_.next("MZ");
        plan.name = s.name;
        plan.bidirectional = bidirectional;
        plan.inbound = s.track != twiml::StreamTrack::outbound_track;
        plan.outbound = s.track != twiml::StreamTrack::inbound_track;
        plan.custom_parameters = s.parameters;
        // The caller speaks once: into the first stream that opens.
        if (!caller_spoke_) {
            plan.audio = cfg_->audio;
            plan.caller = cfg_->caller;
            if (bidirectional) {
                plan.dtmf = dtmf_left_;
                dtmf_left_.clear();
            }
            caller_spoke_ = true;
            caller_stream_ = streams_.size();
        }
        plan.tail = cfg_->tail;
        plan.record = cfg_->record;
        plan.linger_after_stop = cfg_->linger_after_stop;
        plan.impair = cfg_->impair;
        const std::size_t index = streams_.size();
        ++report_.streams;
        StreamEvents ev;
        std::weak_ptr<CallSession> weak = shared_from_this();
        ev.log = [weak](std::string line) {
            if (auto self = weak.lock()) self->log("  " + line);
        };
        ev.on_started = [weak, index] {
            if (auto self = weak.lock()) {
                auto& e = self->streams_[index];
                self->status_callback(e.sid, e.name, e.spec, "stream-started", "");
            }
        };
        ev.on_caller_done = [weak, index] {
            if (auto self = weak.lock())
                if (index == self->caller_stream_) self->hang_up("the caller hung up");
        };
        ev.on_ended = [weak, index](StreamResult r) {
            if (auto self = weak.lock()) self->on_stream_ended(index, std::move(r));
        };
        StreamEntry entry;
        entry.url = url.to_string();
        entry.bidirectional = bidirectional;
        entry.inbound = plan.inbound;
        entry.outbound = plan.outbound;
        entry.spec = s;
        entry.sid = plan.stream_sid;
        entry.name = s.name;
        entry.connect = connect;
        entry.client = make_stream_client(io_, cfg_->net, std::move(plan), std::move(ev), stats_);
        streams_.push_back(std::move(entry));
        streams_.back().client->start();
    }

    void on_stream_ended(std::size_t index, StreamResult r) {
        auto& e = streams_[index];
        e.ended = true;
        report_.marks_echoed += r.marks_echoed;
        report_.clears += r.clears;
        report_.violations += r.violations;
        report_.media_sent += r.media_sent;
        report_.bot_bytes_received += r.bot_bytes_received;
        report_.outcome.frames_sent += r.frames_sent;
        report_.outcome.frames_received += r.frames_received;
        for (auto& x : r.expectation_failures)
            report_.outcome.expectation_failures.push_back(std::move(x));
        if (!r.caller_failure.empty()) failure(FailureClass::timeout, r.caller_failure);
        if (r.violations > 0)
            failure(FailureClass::protocol_violation,
                    fmt::format(
                        "stream {}: {}{}", e.sid, r.first_violation,
                        r.violations > 1 ? fmt::format(" (and {} more)", r.violations - 1) : ""));
        if (cfg_->record && r.connected)
            report_.recordings.push_back(
                {e.sid, e.name, std::move(r.bot_audio), std::move(r.caller_audio)});
        log(fmt::format("stream {} {} ({} frames sent, {} received)", e.sid, to_string(r.end),
                        r.frames_sent, r.frames_received));
        const auto end = r.end;
        const bool connected = r.connected;
        const std::string error = r.error;
        report_.stream_reports.push_back(
            {e.url, e.bidirectional, e.inbound, e.outbound, std::move(r)});
        if (end == StreamEnd::failed) {
            failure(report_.stream_reports.back().result.failure,
                    fmt::format("stream {}: {}", e.spec.url, error));
            status_callback(e.sid, e.name, e.spec, "stream-error", error);
        } else if (connected) {
            status_callback(e.sid, e.name, e.spec, "stream-stopped", "");
        }
        if (e.connect && !hung_up_) {
            // <Connect> is over: TwiML resumes after it, or at its action.
            if (!cfg_->stream_url.empty()) return hang_up("the stream ended");
            if (!connect_action_.empty()) {
                auto url = core::resolve_url(doc_url_, connect_action_);
                if (!url)
                    return abort(FailureClass::twiml_invalid,
                                 "<Connect action>: " + url.error().to_string());
                return fetch(*url, connect_method_, {}, "connect action");
            }
            return run_next();
        }
        maybe_finish();
    }

    // ---- the end -------------------------------------------------------------------------------
    void hang_up(const std::string& why) {
        if (hung_up_) return maybe_finish();
        hung_up_ = true;
        log("hang-up: " + why);
        wait_.cancel();
        for (auto& e : streams_)
            if (!e.ended) e.client->hang_up();
        maybe_finish();
    }

    void maybe_finish() {
        if (!hung_up_ || finished_ || pending_ > 0) return;
        for (const auto& e : streams_)
            if (!e.ended) return;
        finished_ = true;
        deadline_.cancel();
        report_.outcome.completed = report_.outcome.failure == FailureClass::none;
        report_.outcome.duration_seconds =
            std::chrono::duration<double>(Clock::now() - started_).count();
        auto done = std::move(done_);
        done_ = nullptr;
        // Drop the streams (and the callbacks that point back here) before reporting.
        streams_.clear();
        asio::post(io_, [done = std::move(done), r = std::move(report_)]() mutable {
            done(std::move(r));
        });
    }

    asio::io_context& io_;
    std::shared_ptr<const CallConfig> cfg_;
    WorkerStats* stats_;
    std::function<void(CallReport)> done_;
    core::SidGenerator sids_;
    asio::steady_timer wait_;
    asio::steady_timer deadline_;
    Clock::time_point due_;
    Clock::time_point started_;
    std::string call_sid_, account_sid_;
    CallReport report_;
    twiml::Document doc_;
    core::Url doc_url_;
    std::size_t next_ = 0;
    int documents_ = 0;
    mutable int requests_ = 0;
    int pending_ = 0;  // HTTP requests in flight
    std::vector<StreamEntry> streams_;
    std::string connect_action_, connect_method_ = "POST";
    std::string dtmf_left_ = cfg_->dtmf;
    std::string speech_left_ = cfg_->speech;
    bool caller_spoke_ = false;
    std::size_t caller_stream_ = static_cast<std::size_t>(-1);
    bool hung_up_ = false;
    bool finished_ = false;
};

class ScriptCaller : public CallerSource {
  public:
    ScriptCaller(std::shared_ptr<const std::vector<ScriptStep>> steps, TimePoint origin,
                 WorkerStats* stats)
        : steps_(std::move(steps)), player_(*steps_, origin, [stats](Metric m, std::int64_t v) {
              if (stats) stats->record(m, v);
          }) {}
    Frame next_frame(std::uint64_t index, bool bot_playing,
                     std::span<std::uint8_t, 160> out) override {
        auto f = player_.next_frame(index, bot_playing, out);
        return {std::move(f.dtmf), f.hangup};
    }
    void bot_audio(TimePoint t) override { player_.bot_audio(t); }
    void bot_mark(TimePoint t, std::string_view name) override { player_.bot_mark(t, name); }
    void bot_clear(TimePoint t) override { player_.bot_clear(t); }
    std::string failure() const override { return player_.failure(); }
    std::vector<std::string> expectation_failures() const override {
        return player_.expectation_failures();
    }

  private:
    std::shared_ptr<const std::vector<ScriptStep>> steps_;  // outlives player_
    ScriptPlayer player_;
};

}  // namespace

CallerFactory make_script_caller(std::shared_ptr<const std::vector<ScriptStep>> steps) {
    return [steps](CallerSource::TimePoint origin,
                   WorkerStats* stats) -> std::shared_ptr<CallerSource> {
        return std::make_shared<ScriptCaller>(steps, origin, stats);
    };
}

void start_call(asio::io_context& io, std::shared_ptr<const CallConfig> config, std::uint64_t n,
                std::uint64_t seed, WorkerStats* stats, std::function<void(CallReport)> done,
                Clock::time_point due) {
    auto s =
        std::make_shared<CallSession>(io, std::move(config), n, seed, stats, std::move(done), due);
    asio::post(io, [s] { s->start(); });
}

CallStarter make_call_starter(std::shared_ptr<const CallConfig> config) {
    return [config](const CallSlot& slot, std::function<void(CallOutcome)> done) {
        start_call(
            *slot.io, config, slot.n, slot.seed, slot.stats,
            [done = std::move(done)](CallReport r) { done(std::move(r.outcome)); }, slot.due);
    };
}

}  // namespace mediasim::sim
