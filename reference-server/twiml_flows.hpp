// TwiML answers for the configured flow (POST /voice) and the <Gather> action (POST /gather).
// Pure functions of the configuration and the request: no I/O, so they are unit-tested directly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/params.hpp"
#include "reference-server/server_config.hpp"

namespace mediasim::server {

// A small XML writer: elements, attributes and text, escaped. Output is compact.
class XmlWriter {
  public:
    XmlWriter();                             // writes the XML declaration
    XmlWriter& open(std::string_view name);  // <name
    XmlWriter& attr(std::string_view name, std::string_view value);
    XmlWriter& text(std::string_view text);  // closes the start tag first if needed
    XmlWriter& close();                      // </name> or "/>" for an empty element
    std::string finish();                    // closes whatever is open

  private:
    void end_start_tag();
    std::string out_;
    std::vector<std::string> stack_;
    bool in_start_tag_ = false;
};

// What the TwiML needs from the request and the server.
struct TwimlContext {
    std::string public_base;   // "https://host[:port]" as the outside reaches us; no trailing '/'
    core::Parameters webhook;  // the voice webhook's parameters (CallSid, From, ...)
};

// "wss://host/media/CA…" (ws:// when the public base is http://).
std::string media_stream_url(std::string_view public_base, std::string_view call_sid);

// The answer to POST /voice for the flow.
std::string voice_twiml(Flow flow, const TwimlOptions& opts, const TwimlContext& ctx);
// The answer to POST /gather (the <Gather> action): <Say> with what was heard, then <Dial> to
// the hand-off number when one is configured, else <Hangup>.
std::string gather_action_twiml(const TwimlOptions& opts, const core::Parameters& request);

}  // namespace mediasim::server
