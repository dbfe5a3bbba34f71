#include "simulator/twiml.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>

#include "simulator/xml.hpp"

namespace mediasim::sim::twiml {

const char* to_string(StreamTrack t) {
    switch (t) {
        case StreamTrack::inbound_track:
            return "inbound_track";
        case StreamTrack::outbound_track:
            return "outbound_track";
        case StreamTrack::both_tracks:
            return "both_tracks";
    }
    return "?";
}

namespace {

struct VerbName {
    const char* operator()(const Say&) const { return "Say"; }
    const char* operator()(const Play&) const { return "Play"; }
    const char* operator()(const Pause&) const { return "Pause"; }
    const char* operator()(const StartStream&) const { return "Start"; }
    const char* operator()(const ConnectStream&) const { return "Connect"; }
    const char* operator()(const StopStream&) const { return "Stop"; }
    const char* operator()(const Gather&) const { return "Gather"; }
    const char* operator()(const Redirect&) const { return "Redirect"; }
    const char* operator()(const Dial&) const { return "Dial"; }
    const char* operator()(const Hangup&) const { return "Hangup"; }
    const char* operator()(const Reject&) const { return "Reject"; }
};

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

std::string describe_stream(const Stream& s) {
    std::string out = fmt::format("<Stream url=\"{}\"", s.url);
    if (!s.name.empty()) out += fmt::format(" name=\"{}\"", s.name);
    if (s.track != StreamTrack::inbound_track)
        out += fmt::format(" track=\"{}\"", to_string(s.track));
    out += ">";
    if (!s.parameters.empty())
        out += fmt::format(" ({} parameter{})", s.parameters.size(),
                           s.parameters.size() == 1 ? "" : "s");
    if (!s.status_callback.empty())
        out += fmt::format(" statusCallback {} {}", s.status_callback_method, s.status_callback);
    return out;
}

class Builder {
  public:
    explicit Builder(std::string_view name) : name_(name) {}

    core::Result<Document> build(const xml::Element& root) {
        if (root.name != "Response")
            return fail(root,
                        fmt::format("the root element must be <Response>, found <{}>", root.name));
        for (const auto& c : root.children) {
            if (const auto* t = std::get_if<std::string>(&c)) {
                if (!trim(*t).empty()) return fail(root, "<Response> holds text outside any verb");
                continue;
            }
            const auto& e = std::get<xml::Element>(c);
            auto v = verb(e);
            if (!v) return v.error();
            doc_.verbs.push_back(std::move(*v));
        }
        return std::move(doc_);
    }

  private:
    core::Diagnostic fail(const xml::Element& e, std::string message) {
        core::Diagnostic d;
        d.file = std::string(name_);
        d.line = e.line;
        d.column = e.column;
        d.message = std::move(message);
        return d;
    }

    void warn(const xml::Element& e, std::string message) {
        doc_.warnings.push_back(fmt::format("{}:{}:{}: {}", name_, e.line, e.column, message));
    }

    // Warns about attributes this verb does not know (Twilio logs 12200 and goes on).
    void check_attributes(const xml::Element& e, std::initializer_list<std::string_view> known) {
        for (const auto& [k, v] : e.attributes)
            if (std::find(known.begin(), known.end(), k) == known.end())
                warn(e, fmt::format("<{}>: attribute \"{}\" is ignored", e.name, k));
    }

    core::Status no_children(const xml::Element& e) {
        for (const auto& c : e.children) {
            if (const auto* t = std::get_if<std::string>(&c)) {
                if (!trim(*t).empty()) return fail(e, fmt::format("<{}> takes no text", e.name));
            } else {
                return fail(std::get<xml::Element>(c),
                            fmt::format("<{}> is not allowed inside <{}>",
                                        std::get<xml::Element>(c).name, e.name));
            }
        }
        return core::Ok{};
    }

    core::Result<int> integer(const xml::Element& e, std::string_view attr, int def, int min,
                              int max) {
        const std::string* v = e.attribute(attr);
        if (!v) return def;
        std::string s = trim(*v);
        int x = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
        if (s.empty() || ec != std::errc() || p != s.data() + s.size())
            return fail(e, fmt::format("<{}>: {}=\"{}\" is not a whole number", e.name, attr, *v));
        if (x < min || x > max)
            return fail(e, fmt::format("<{}>: {}=\"{}\" is out of range ({}..{})", e.name, attr, *v,
                                       min, max));
        return x;
    }

    core::Result<std::string> method(const xml::Element& e, std::string_view attr) {
        const std::string* v = e.attribute(attr);
        if (!v) return std::string("POST");
        std::string m = trim(*v);
        std::transform(m.begin(), m.end(), m.begin(),
                       [](char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); });
        if (m != "GET" && m != "POST")
            return fail(e, fmt::format("<{}>: {}=\"{}\" must be GET or POST", e.name, attr, *v));
        return m;
    }

    std::string attr(const xml::Element& e, std::string_view name, std::string def = {}) {
        const std::string* v = e.attribute(name);
        return v ? *v : def;
    }

    core::Result<Verb> verb(const xml::Element& e) {
        const std::string& n = e.name;
        if (n == "Say" || n == "Play" || n == "Pause") {
            auto p = prompt(e);
            if (!p) return p.error();
            return std::visit([](auto&& x) -> Verb { return x; }, std::move(*p));
        }
        if (n == "Start") return start(e);
        if (n == "Connect") return connect(e);
        if (n == "Stop") return stop(e);
        if (n == "Gather") return gather(e);
        if (n == "Redirect") {
            check_attributes(e, {"method"});
            Redirect r;
            auto m = method(e, "method");
            if (!m) return m.error();
            r.method = *m;
            for (auto* c : e.elements())
                return fail(*c, fmt::format("<{}> is not allowed inside <Redirect>", c->name));
            r.url = trim(e.text());
            if (r.url.empty()) return fail(e, "<Redirect> needs a URL as its text");
            return Verb(std::move(r));
        }
        if (n == "Dial") return dial(e);
        if (n == "Hangup") {
            check_attributes(e, {});
            if (auto s = no_children(e); !s) return s.error();
            return Verb(Hangup{});
        }
        if (n == "Reject") {
            check_attributes(e, {"reason"});
            if (auto s = no_children(e); !s) return s.error();
            Reject r;
            r.reason = attr(e, "reason", "rejected");
            if (r.reason != "rejected" && r.reason != "busy")
                return fail(e,
                            fmt::format("<Reject>: reason=\"{}\" must be \"rejected\" or \"busy\"",
                                        r.reason));
            return Verb(std::move(r));
        }
        static constexpr std::string_view kTwilioOnly[] = {
            "Record", "Enqueue", "Leave", "Pay", "Prompt", "Refer", "Sms", "Echo", "Queue"};
        for (auto t : kTwilioOnly)
            if (n == t)
                return fail(e,
                            fmt::format("<{}> is a Twilio verb that mediasim does not emulate", n));
        return fail(e, fmt::format("unknown TwiML verb <{}> (expected Say, Play, Pause, Start, "
                                   "Connect, Stop, Gather, Redirect, Dial, Hangup or Reject; "
                                   "TwiML is case-sensitive)",
                                   n));
    }

    core::Result<Prompt> prompt(const xml::Element& e) {
        if (e.name == "Say") {
            check_attributes(e, {"voice", "language", "loop"});
            Say s;
            auto loop = integer(e, "loop", 1, 0, kMaxLoop);
            if (!loop) return loop.error();
            s.loop = *loop;
            s.voice = attr(e, "voice");
            s.language = attr(e, "language");
            // SSML elements (<break>, <prosody>, …) may appear inside <Say>: keep their text.
            s.text = trim(e.text());
            return Prompt(std::move(s));
        }
        if (e.name == "Play") {
            check_attributes(e, {"loop", "digits"});
            Play p;
            auto loop = integer(e, "loop", 1, 0, kMaxLoop);
            if (!loop) return loop.error();
            p.loop = *loop;
            p.digits = attr(e, "digits");
            for (char c : p.digits)
                if (!((c >= '0' && c <= '9') || c == '*' || c == '#' || c == 'w' || c == 'W'))
                    return fail(e,
                                fmt::format("<Play>: digits=\"{}\" may hold only 0-9, *, # and w",
                                            p.digits));
            for (auto* c : e.elements())
                return fail(*c, fmt::format("<{}> is not allowed inside <Play>", c->name));
            p.url = trim(e.text());
            if (p.url.empty() && p.digits.empty())
                return fail(e, "<Play> needs a URL as its text or a digits attribute");
            return Prompt(std::move(p));
        }
        if (e.name == "Pause") {
            check_attributes(e, {"length"});
            if (auto s = no_children(e); !s) return s.error();
            auto len = integer(e, "length", 1, 0, 14400);
            if (!len) return len.error();
            return Prompt(Pause{std::chrono::seconds(*len)});
        }
        return fail(e, fmt::format("<{}> is not allowed here", e.name));
    }

    core::Result<Stream> stream(const xml::Element& e, const char* parent) {
        check_attributes(e, {"url", "name", "track", "statusCallback", "statusCallbackMethod",
                             "connectorName", "audioFormat", "sampleRate"});
        Stream s;
        s.url = trim(attr(e, "url"));
        if (s.url.empty())
            return fail(e, fmt::format("<{}><Stream> needs a url attribute", parent));
        if (s.url.rfind("ws://", 0) == 0)
            warn(e, fmt::format("<Stream url=\"{}\">: Twilio accepts only wss:// (error 31922); "
                                "mediasim allows ws:// for local testing",
                                s.url));
        else if (s.url.find("://") != std::string::npos && s.url.rfind("wss://", 0) != 0)
            return fail(
                e, fmt::format("<Stream url=\"{}\">: the scheme must be wss (error 31922)", s.url));
        if (s.url.find('?') != std::string::npos)
            warn(e, fmt::format("<Stream url=\"{}\">: Twilio drops query strings from stream URLs; "
                                "pass data with <Parameter>",
                                s.url));
        s.name = attr(e, "name");
        std::string track = attr(e, "track", "inbound_track");
        if (track == "inbound_track")
            s.track = StreamTrack::inbound_track;
        else if (track == "outbound_track")
            s.track = StreamTrack::outbound_track;
        else if (track == "both_tracks")
            s.track = StreamTrack::both_tracks;
        else
            return fail(e,
                        fmt::format("<Stream>: track=\"{}\" must be inbound_track, outbound_track "
                                    "or both_tracks (error 31941)",
                                    track));
        s.status_callback = attr(e, "statusCallback");
        auto m = method(e, "statusCallbackMethod");
        if (!m) return m.error();
        s.status_callback_method = *m;
        for (const auto& c : e.children) {
            if (const auto* t = std::get_if<std::string>(&c)) {
                if (!trim(*t).empty()) return fail(e, "<Stream> takes no text");
                continue;
            }
            const auto& p = std::get<xml::Element>(c);
            if (p.name != "Parameter")
                return fail(p, fmt::format("<{}> is not allowed inside <Stream> (only <Parameter>)",
                                           p.name));
            check_attributes(p, {"name", "value"});
            if (auto st = no_children(p); !st) return st.error();
            const std::string* pn = p.attribute("name");
            const std::string* pv = p.attribute("value");
            if (!pn || pn->empty()) return fail(p, "<Parameter> needs a name attribute");
            if (!pv)
                return fail(p, fmt::format("<Parameter name=\"{}\"> needs a value attribute", *pn));
            s.parameters.emplace_back(*pn, *pv);
        }
        return s;
    }

    // The single <Stream> child of <Start>, <Connect> or <Stop>.
    core::Result<const xml::Element*> only_stream(const xml::Element& e) {
        const xml::Element* found = nullptr;
        for (const auto& c : e.children) {
            if (const auto* t = std::get_if<std::string>(&c)) {
                if (!trim(*t).empty()) return fail(e, fmt::format("<{}> takes no text", e.name));
                continue;
            }
            const auto& s = std::get<xml::Element>(c);
            if (s.name != "Stream") {
                if (e.name == "Connect" &&
                    (s.name == "ConversationRelay" || s.name == "Room" || s.name == "VirtualAgent"))
                    return fail(s, fmt::format("<Connect><{}> is not emulated by mediasim "
                                               "(only <Connect><Stream>)",
                                               s.name));
                return fail(s, fmt::format("<{}> is not allowed inside <{}> (error 14300: "
                                           "expected <Stream>)",
                                           s.name, e.name));
            }
            if (found) return fail(s, fmt::format("<{}> holds more than one <Stream>", e.name));
            found = &s;
        }
        if (!found) return fail(e, fmt::format("<{}> needs a <Stream>", e.name));
        return found;
    }

    core::Result<Verb> start(const xml::Element& e) {
        check_attributes(e, {"action", "method"});
        auto se = only_stream(e);
        if (!se) return se.error();
        auto s = stream(**se, "Start");
        if (!s) return s.error();
        return Verb(StartStream{std::move(*s)});
    }

    core::Result<Verb> connect(const xml::Element& e) {
        check_attributes(e, {"action", "method"});
        auto se = only_stream(e);
        if (!se) return se.error();
        auto s = stream(**se, "Connect");
        if (!s) return s.error();
        if (s->track != StreamTrack::inbound_track)
            return fail(**se, fmt::format("<Connect><Stream>: track=\"{}\" is not allowed; "
                                          "<Connect> allows only inbound_track (error 31941)",
                                          to_string(s->track)));
        ConnectStream c;
        c.stream = std::move(*s);
        c.action = trim(attr(e, "action"));
        auto m = method(e, "method");
        if (!m) return m.error();
        c.method = *m;
        return Verb(std::move(c));
    }

    core::Result<Verb> stop(const xml::Element& e) {
        check_attributes(e, {});
        auto se = only_stream(e);
        if (!se) return se.error();
        check_attributes(**se, {"name"});
        if (auto st = no_children(**se); !st) return st.error();
        return Verb(StopStream{attr(**se, "name")});
    }

    core::Result<Verb> gather(const xml::Element& e) {
        check_attributes(
            e, {"input", "action", "method", "timeout", "numDigits", "finishOnKey", "speechTimeout",
                "language", "hints", "speechModel", "actionOnEmptyResult", "partialResultCallback",
                "partialResultCallbackMethod", "profanityFilter", "enhanced"});
        Gather g;
        std::string input = attr(e, "input", "dtmf");
        g.dtmf = g.speech = false;
        std::size_t i = 0;
        while (i < input.size()) {
            auto j = input.find(' ', i);
            std::string word = input.substr(i, j == std::string::npos ? std::string::npos : j - i);
            if (word == "dtmf")
                g.dtmf = true;
            else if (word == "speech")
                g.speech = true;
            else if (!word.empty())
                return fail(e, fmt::format("<Gather>: input=\"{}\" must be \"dtmf\", \"speech\" or "
                                           "\"dtmf speech\"",
                                           input));
            if (j == std::string::npos) break;
            i = j + 1;
        }
        if (!g.dtmf && !g.speech)
            return fail(e, fmt::format("<Gather>: input=\"{}\" names no input", input));
        g.action = trim(attr(e, "action"));
        auto m = method(e, "method");
        if (!m) return m.error();
        g.method = *m;
        auto t = integer(e, "timeout", 5, 0, 600);
        if (!t) return t.error();
        g.timeout = std::chrono::seconds(*t);
        auto nd = integer(e, "numDigits", 0, 1, 1000);
        if (!nd) return nd.error();
        g.num_digits = *nd;
        g.finish_on_key = attr(e, "finishOnKey", "#");
        if (g.finish_on_key.size() > 1 ||
            (g.finish_on_key.size() == 1 &&
             !((g.finish_on_key[0] >= '0' && g.finish_on_key[0] <= '9') ||
               g.finish_on_key[0] == '*' || g.finish_on_key[0] == '#')))
            return fail(e, fmt::format("<Gather>: finishOnKey=\"{}\" must be one of 0-9, *, # "
                                       "or empty",
                                       g.finish_on_key));
        g.language = attr(e, "language", "en-US");
        std::string aoer = attr(e, "actionOnEmptyResult", "false");
        if (aoer != "true" && aoer != "false")
            return fail(
                e, fmt::format("<Gather>: actionOnEmptyResult=\"{}\" must be true or false", aoer));
        g.action_on_empty_result = aoer == "true";
        for (const auto& c : e.children) {
            if (const auto* tx = std::get_if<std::string>(&c)) {
                if (!trim(*tx).empty()) return fail(e, "<Gather> takes no text (nest <Say>)");
                continue;
            }
            const auto& p = std::get<xml::Element>(c);
            if (p.name != "Say" && p.name != "Play" && p.name != "Pause")
                return fail(p, fmt::format("<{}> is not allowed inside <Gather> (error 13320: only "
                                           "Say, Play and Pause)",
                                           p.name));
            auto pr = prompt(p);
            if (!pr) return pr.error();
            g.prompts.push_back(std::move(*pr));
        }
        return Verb(std::move(g));
    }

    core::Result<Verb> dial(const xml::Element& e) {
        check_attributes(
            e, {"action", "method", "timeout", "callerId", "timeLimit", "record", "hangupOnStar",
                "answerOnBridge", "ringTone", "recordingStatusCallback"});
        Dial d;
        d.action = trim(attr(e, "action"));
        auto m = method(e, "method");
        if (!m) return m.error();
        d.method = *m;
        auto t = integer(e, "timeout", 30, 1, 600);
        if (!t) return t.error();
        d.timeout = std::chrono::seconds(*t);
        d.caller_id = attr(e, "callerId");
        auto kids = e.elements();
        if (kids.empty()) {
            d.target = trim(e.text());
        } else {
            const xml::Element* k = kids.front();
            static constexpr std::string_view kNouns[] = {
                "Number", "Client", "Sip", "Conference", "Queue", "Application", "WhatsApp"};
            if (std::find(std::begin(kNouns), std::end(kNouns), k->name) == std::end(kNouns))
                return fail(*k, fmt::format("<{}> is not allowed inside <Dial> (expected Number, "
                                            "Client, Sip, Conference or Queue)",
                                            k->name));
            d.target = fmt::format("{}:{}", k->name, trim(k->text()));
        }
        if (d.target.empty()) return fail(e, "<Dial> needs a number or a noun to dial");
        return Verb(std::move(d));
    }

    std::string_view name_;
    Document doc_;
};

}  // namespace

const char* verb_name(const Verb& v) {
    return std::visit(VerbName{}, v);
}

std::string describe(const Verb& v) {
    struct D {
        std::string operator()(const Say& s) const {
            std::string t = s.text.size() > 60 ? s.text.substr(0, 57) + "..." : s.text;
            return fmt::format("<Say> \"{}\"{}", t,
                               s.loop != 1 ? fmt::format(" loop={}", s.loop) : "");
        }
        std::string operator()(const Play& p) const {
            return fmt::format("<Play> {}{}", p.url, p.digits.empty() ? "" : " digits=" + p.digits);
        }
        std::string operator()(const Pause& p) const {
            return fmt::format("<Pause length=\"{}\">", p.length.count());
        }
        std::string operator()(const StartStream& s) const {
            return "<Start>" + describe_stream(s.stream);
        }
        std::string operator()(const ConnectStream& c) const {
            return "<Connect>" + describe_stream(c.stream) +
                   (c.action.empty() ? "" : " action " + c.method + " " + c.action);
        }
        std::string operator()(const StopStream& s) const {
            return fmt::format("<Stop><Stream name=\"{}\">", s.name);
        }
        std::string operator()(const Gather& g) const {
            return fmt::format("<Gather input=\"{}\"> action {} {}",
                               g.dtmf && g.speech ? "dtmf speech" : (g.dtmf ? "dtmf" : "speech"),
                               g.method, g.action.empty() ? "(this document)" : g.action);
        }
        std::string operator()(const Redirect& r) const {
            return fmt::format("<Redirect> {} {}", r.method, r.url);
        }
        std::string operator()(const Dial& d) const { return "<Dial> " + d.target; }
        std::string operator()(const Hangup&) const { return "<Hangup>"; }
        std::string operator()(const Reject& r) const {
            return fmt::format("<Reject reason=\"{}\">", r.reason);
        }
    };
    return std::visit(D{}, v);
}

core::Result<Document> parse(std::string_view text, std::string_view name) {
    auto root = xml::parse(text, name);
    if (!root) return root.error();
    return Builder(name).build(*root);
}

std::chrono::milliseconds say_duration(const Say& say) {
    if (say.text.empty()) return std::chrono::milliseconds(0);
    // Count characters, not UTF-8 bytes.
    std::size_t chars = 0;
    for (char c : say.text)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++chars;
    auto once = std::max<std::int64_t>(500, static_cast<std::int64_t>(chars) * 1000 / 14);
    int loops = say.loop == 0 ? kMaxLoop : say.loop;
    return std::chrono::milliseconds(once * loops);
}

}  // namespace mediasim::sim::twiml
