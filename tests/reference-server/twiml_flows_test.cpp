#include "reference-server/twiml_flows.hpp"

#include <gtest/gtest.h>

namespace mediasim::server {
namespace {

const core::Parameters kWebhook = {{"AccountSid", "AC0123456789abcdef0123456789abcdef"},
                                   {"CallSid", "CA89abcdef0123456789abcdef01234567"},
                                   {"From", "+14155550100"},
                                   {"To", "+15005550001"}};
const TwimlContext kCtx{"https://sim.example.com", kWebhook};
constexpr const char* kDecl = R"(<?xml version="1.0" encoding="UTF-8"?>)";

TEST(Twiml, StreamFlowConnectsToTheMediaEndpointWithParameters) {
    TwimlOptions opts;
    opts.stream_parameters = {{"tenant", "4&2"}};
    EXPECT_EQ(voice_twiml(Flow::stream, opts, kCtx),
              std::string(kDecl) +
                  "<Response><Connect><Stream "
                  "url=\"wss://sim.example.com/media/CA89abcdef0123456789abcdef01234567\" "
                  "statusCallback=\"https://sim.example.com/status\" "
                  "statusCallbackMethod=\"POST\">"
                  "<Parameter name=\"caller\" value=\"+14155550100\"/>"
                  "<Parameter name=\"called\" value=\"+15005550001\"/>"
                  "<Parameter name=\"tenant\" value=\"4&amp;2\"/>"
                  "</Stream></Connect></Response>");
}

TEST(Twiml, PlainHttpBaseGivesWs) {
    const auto x = voice_twiml(Flow::stream, {}, {"http://127.0.0.1:8080", kWebhook});
    EXPECT_NE(x.find("url=\"ws://127.0.0.1:8080/media/CA89"), std::string::npos) << x;
    EXPECT_EQ(media_stream_url("https://h", ""), "wss://h/media");
}

TEST(Twiml, GreetSaysThenConnects) {
    TwimlOptions opts;
    opts.greeting = "Hi <there>";
    const auto x = voice_twiml(Flow::greet, opts, kCtx);
    const auto say = x.find("<Say>Hi &lt;there&gt;</Say>");
    const auto connect = x.find("<Connect><Stream");
    ASSERT_NE(say, std::string::npos) << x;
    ASSERT_NE(connect, std::string::npos) << x;
    EXPECT_LT(say, connect);
}

TEST(Twiml, ForkStartsBothTracksThenKeepsTheCallUp) {
    TwimlOptions opts;
    opts.fork_pause_seconds = 30;
    const auto x = voice_twiml(Flow::fork, opts, kCtx);
    EXPECT_NE(x.find("<Start><Stream url=\"wss://sim.example.com/media/CA89abcdef0123456789abcdef"
                     "01234567\" track=\"both_tracks\" "
                     "statusCallback=\"https://sim.example.com/status\""),
              std::string::npos)
        << x;
    EXPECT_NE(x.find("</Stream></Start><Say>"), std::string::npos) << x;
    EXPECT_NE(x.find("<Pause length=\"30\"/></Response>"), std::string::npos) << x;
    EXPECT_EQ(x.find("<Connect>"), std::string::npos);
}

TEST(Twiml, GatherAsksForSpeechAndDtmf) {
    const auto x = voice_twiml(Flow::gather, {}, kCtx);
    EXPECT_NE(x.find("<Gather input=\"speech dtmf\" action=\"https://sim.example.com/gather\" "
                     "method=\"POST\""),
              std::string::npos)
        << x;
    EXPECT_NE(x.find("<Say>Please say something, or press a key.</Say></Gather>"),
              std::string::npos)
        << x;
}

TEST(Twiml, GatherCarriesTheFlowsPhraseHints) {
    TwimlOptions opts;
    opts.gather_hints = "sales, support & billing";
    const auto x = voice_twiml(Flow::gather, opts, kCtx);
    EXPECT_NE(x.find(" hints=\"sales, support &amp; billing\">"), std::string::npos) << x;
    EXPECT_EQ(voice_twiml(Flow::gather, {}, kCtx).find("hints="), std::string::npos);
}

TEST(Twiml, GatherActionSaysWhatWasHeardAndDialsTheHandoff) {
    TwimlOptions opts;
    EXPECT_EQ(gather_action_twiml(opts, {{"SpeechResult", "I need help"}}),
              std::string(kDecl) +
                  "<Response><Say>You said: I need help. Thank you.</Say><Hangup/></Response>");
    opts.handoff_number = "+15005550006";
    EXPECT_EQ(gather_action_twiml(opts, {{"Digits", "42"}}),
              std::string(kDecl) +
                  "<Response><Say>You pressed 42. Thank you.</Say>"
                  "<Dial>+15005550006</Dial></Response>");
}

TEST(XmlWriter, EscapesAndNests) {
    XmlWriter w;
    w.open("a").attr("q", "\"'<>&").open("b").close().text("x&y");
    EXPECT_EQ(w.finish(),
              std::string(kDecl) + "<a q=\"&quot;&apos;&lt;&gt;&amp;\"><b/>x&amp;y</a>");
}

}  // namespace
}  // namespace mediasim::server
