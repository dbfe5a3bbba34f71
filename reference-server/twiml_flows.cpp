#include "reference-server/twiml_flows.hpp"

#include <fmt/format.h>

#include "core/escape.hpp"

namespace mediasim::server {

XmlWriter::XmlWriter() : out_(R"(<?xml version="1.0" encoding="UTF-8"?>)") {}

void XmlWriter::end_start_tag() {
    if (in_start_tag_) {
        out_ += '>';
        in_start_tag_ = false;
    }
}

XmlWriter& XmlWriter::open(std::string_view name) {
    end_start_tag();
    out_ += '<';
    out_ += name;
    stack_.emplace_back(name);
    in_start_tag_ = true;
    return *this;
}

XmlWriter& XmlWriter::attr(std::string_view name, std::string_view value) {
    out_ += fmt::format(" {}=\"{}\"", name, core::xml_escape(value));
    return *this;
}

XmlWriter& XmlWriter::text(std::string_view t) {
    end_start_tag();
    out_ += core::xml_escape(t);
    return *this;
}

XmlWriter& XmlWriter::close() {
    if (stack_.empty()) return *this;
    if (in_start_tag_) {
        out_ += "/>";
        in_start_tag_ = false;
    } else {
        out_ += fmt::format("</{}>", stack_.back());
    }
    stack_.pop_back();
    return *this;
}

std::string XmlWriter::finish() {
    while (!stack_.empty()) close();
    return std::move(out_);
}

namespace {

std::string param(const core::Parameters& p, std::string_view name) {
    for (const auto& [k, v] : p)
        if (k == name) return v;
    return {};
}

// <Stream url=… [track] statusCallback=…> with <Parameter>s.
void stream_element(XmlWriter& w, const TwimlOptions& opts, const TwimlContext& ctx,
                    std::string_view track) {
    const auto call_sid = param(ctx.webhook, "CallSid");
    w.open("Stream").attr("url", media_stream_url(ctx.public_base, call_sid));
    if (!track.empty()) w.attr("track", track);
    w.attr("statusCallback", ctx.public_base + "/status").attr("statusCallbackMethod", "POST");
    const auto add = [&](std::string_view name, std::string_view value) {
        if (!value.empty()) w.open("Parameter").attr("name", name).attr("value", value).close();
    };
    add("caller", param(ctx.webhook, "From"));
    add("called", param(ctx.webhook, "To"));
    for (const auto& [k, v] : opts.stream_parameters) add(k, v);
    w.close();
}

}  // namespace

std::string media_stream_url(std::string_view public_base, std::string_view call_sid) {
    std::string url;
    if (public_base.starts_with("https://"))
        url = "wss://" + std::string(public_base.substr(8));
    else if (public_base.starts_with("http://"))
        url = "ws://" + std::string(public_base.substr(7));
    else
        url = std::string(public_base);
    url += "/media";
    if (!call_sid.empty()) url += "/" + std::string(call_sid);
    return url;
}

std::string voice_twiml(Flow flow, const TwimlOptions& opts, const TwimlContext& ctx) {
    XmlWriter w;
    w.open("Response");
    switch (flow) {
        case Flow::stream:
            w.open("Connect");
            stream_element(w, opts, ctx, {});
            w.close();
            break;
        case Flow::greet:
            w.open("Say").text(opts.greeting).close();
            w.open("Connect");
            stream_element(w, opts, ctx, {});
            w.close();
            break;
        case Flow::fork:
            w.open("Start");
            stream_element(w, opts, ctx, "both_tracks");
            w.close();
            w.open("Say").text(opts.greeting).close();
            // <Start> does not block: without the pause the call would end at once.
            w.open("Pause").attr("length", std::to_string(opts.fork_pause_seconds)).close();
            break;
        case Flow::gather:
            w.open("Gather")
                .attr("input", "speech dtmf")
                .attr("action", ctx.public_base + "/gather")
                .attr("method", "POST")
                .attr("timeout", "5")
                .attr("speechTimeout", "auto");
            if (!opts.gather_hints.empty()) w.attr("hints", opts.gather_hints);
            w.open("Say").text(opts.gather_prompt).close();
            w.close();
            // No input: say so and end the call.
            w.open("Say").text("We did not hear anything. Goodbye.").close();
            break;
    }
    return w.finish();
}

std::string gather_action_twiml(const TwimlOptions& opts, const core::Parameters& request) {
    const auto speech = param(request, "SpeechResult");
    const auto digits = param(request, "Digits");
    std::string heard;
    if (!speech.empty())
        heard = fmt::format("You said: {}.", speech);
    else if (!digits.empty())
        heard = fmt::format("You pressed {}.", digits);
    XmlWriter w;
    w.open("Response");
    w.open("Say").text(heard.empty() ? opts.gather_reply : heard + " " + opts.gather_reply).close();
    if (!opts.handoff_number.empty())
        w.open("Dial").text(opts.handoff_number).close();
    else
        w.open("Hangup").close();
    return w.finish();
}

}  // namespace mediasim::server
