#include "simulator/twiml.hpp"

#include <gtest/gtest.h>

#include "simulator/xml.hpp"

using namespace mediasim::sim;
using namespace std::chrono_literals;

namespace {

std::string error_of(std::string_view text) {
    auto r = twiml::parse(text, "t.xml");
    if (r) return "(parsed)";
    return r.error().to_string();
}

std::string xml_error(std::string_view text) {
    auto r = xml::parse(text, "x");
    if (r) return "(parsed)";
    return r.error().to_string();
}

}  // namespace

TEST(Xml, ParsesElementsAttributesTextAndEntities) {
    auto r = xml::parse(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- a comment -->\n"
        "<a x=\"1\" y='two &amp; &quot;three&quot;'>hi &lt;&gt;&apos;&#65;&#x42;&#xe9;"
        "<b/><![CDATA[<raw> & stuff]]><!-- inner --><c k = \"v\" >t</c ></a>\n<!-- end -->\n",
        "x");
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->name, "a");
    ASSERT_EQ(r->attributes.size(), 2u);
    EXPECT_EQ(*r->attribute("x"), "1");
    EXPECT_EQ(*r->attribute("y"), "two & \"three\"");
    EXPECT_EQ(r->attribute("z"), nullptr);
    EXPECT_EQ(r->text(), "hi <>'AB\xC3\xA9<raw> & stufft");
    auto kids = r->elements();
    ASSERT_EQ(kids.size(), 2u);
    EXPECT_EQ(kids[0]->name, "b");
    EXPECT_EQ(kids[1]->name, "c");
    EXPECT_EQ(*kids[1]->attribute("k"), "v");
    EXPECT_EQ(kids[1]->line, 3);
}

TEST(Xml, ReportsErrorsWithLineAndColumn) {
    EXPECT_EQ(xml_error("<a>\n  <b></c>\n</a>"),
              "x:2:6: expected </b> (opened at 2:3), found </c>");
    EXPECT_EQ(xml_error("<a>\n<b x=1/></a>"),
              "x:2:6: expected a quoted attribute value, found '1'");
    EXPECT_EQ(xml_error("<a x='1' x='2'/>"), "x:1:10: attribute \"x\" appears twice in <a>");
    EXPECT_EQ(xml_error("<a>fish & chips</a>"),
              "x:1:9: '&' must start an entity such as &amp; (write & as &amp;)");
    EXPECT_EQ(xml_error("<a>&nbsp;</a>"),
              "x:1:4: unknown entity &nbsp; (XML knows &amp; &lt; &gt; &quot; &apos; and &#N;)");
    EXPECT_EQ(xml_error("<a>&#0;</a>"), "x:1:4: character reference &#0; is not an XML character");
    EXPECT_EQ(xml_error("<a>"), "x:1:1: <a> is not closed (expected </a>)");
    EXPECT_EQ(xml_error(""), "x:1:1: the document is empty (expected a root element)");
    EXPECT_EQ(xml_error("<a/><b/>"), "x:1:5: content after the root element");
    EXPECT_EQ(xml_error("<a><!-- x -- y --></a>"),
              "x:1:11: \"--\" is not allowed inside a comment");
    EXPECT_EQ(xml_error("<a><![CDATA[x</a>"),
              "x:1:4: the CDATA section is not closed with \"]]>\"");
    EXPECT_EQ(xml_error("<a x='<'/>"),
              "x:1:7: '<' is not allowed in an attribute value (write &lt;)");
    EXPECT_EQ(xml_error(" <?xml version='1.0'?><a/>"),
              "x:1:2: the XML declaration must come first in the document");
    EXPECT_EQ(xml_error("<!DOCTYPE a><a/>"),
              "x:1:1: DOCTYPE declarations are not supported in TwiML");
    EXPECT_EQ(xml_error("hello"), "x:1:1: text before the root element");
    EXPECT_EQ(xml_error("<a b='1'c='2'/>"),
              "x:1:9: expected whitespace, '>' or \"/>\" in <a>, found 'c'");
}

TEST(Twiml, ParsesAConnectStreamWithParameters) {
    auto r = twiml::parse(R"(<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say voice="alice">Hello &amp; welcome</Say>
  <Connect action="https://h/after" method="get">
    <Stream url="wss://h/media" name="bot" statusCallback="https://h/status">
      <Parameter name="tenant" value="42"/>
      <Parameter name='FirstName' value='Jane'/>
    </Stream>
  </Connect>
  <Pause length="2"/>
  <Hangup/>
</Response>)");
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->verbs.size(), 4u);
    const auto& say = std::get<twiml::Say>(r->verbs[0]);
    EXPECT_EQ(say.text, "Hello & welcome");
    EXPECT_EQ(say.voice, "alice");
    const auto& c = std::get<twiml::ConnectStream>(r->verbs[1]);
    EXPECT_EQ(c.stream.url, "wss://h/media");
    EXPECT_EQ(c.stream.name, "bot");
    EXPECT_EQ(c.stream.track, twiml::StreamTrack::inbound_track);
    EXPECT_EQ(c.stream.status_callback, "https://h/status");
    EXPECT_EQ(c.stream.status_callback_method, "POST");
    ASSERT_EQ(c.stream.parameters.size(), 2u);
    EXPECT_EQ(c.stream.parameters[0], (std::pair<std::string, std::string>{"tenant", "42"}));
    EXPECT_EQ(c.stream.parameters[1], (std::pair<std::string, std::string>{"FirstName", "Jane"}));
    EXPECT_EQ(c.action, "https://h/after");
    EXPECT_EQ(c.method, "GET");
    EXPECT_EQ(std::get<twiml::Pause>(r->verbs[2]).length, 2s);
    EXPECT_TRUE(std::holds_alternative<twiml::Hangup>(r->verbs[3]));
    EXPECT_TRUE(r->warnings.empty());
    EXPECT_EQ(twiml::verb_name(r->verbs[1]), std::string("Connect"));
}

TEST(Twiml, ParsesStartStopGatherRedirectDialAndReject) {
    auto r = twiml::parse(R"(<Response>
  <Start><Stream url="wss://h/a" track="both_tracks" statusCallbackMethod="GET" statusCallback="https://h/s"/></Start>
  <Start><Stream url="ws://localhost:8080/b" track="outbound_track"/></Start>
  <Gather input="dtmf speech" action="/gather" numDigits="3" timeout="7" finishOnKey="*">
    <Say loop="2">Press a key</Say><Play>https://h/beep.wav</Play><Pause/>
  </Gather>
  <Stop><Stream name="x"/></Stop>
  <Play digits="1w2"/>
  <Redirect method="GET">/next</Redirect>
  <Dial action="/dialed" timeout="20"><Number>+15551234567</Number></Dial>
  <Dial>+15550000000</Dial>
  <Reject reason="busy"/>
</Response>)");
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->verbs.size(), 9u);
    const auto& s = std::get<twiml::StartStream>(r->verbs[0]).stream;
    EXPECT_EQ(s.track, twiml::StreamTrack::both_tracks);
    EXPECT_EQ(s.status_callback_method, "GET");
    EXPECT_EQ(std::get<twiml::StartStream>(r->verbs[1]).stream.track,
              twiml::StreamTrack::outbound_track);
    ASSERT_EQ(r->warnings.size(), 1u);  // ws:// is not what Twilio accepts
    EXPECT_NE(r->warnings[0].find("31922"), std::string::npos) << r->warnings[0];
    const auto& g = std::get<twiml::Gather>(r->verbs[2]);
    EXPECT_TRUE(g.dtmf);
    EXPECT_TRUE(g.speech);
    EXPECT_EQ(g.action, "/gather");
    EXPECT_EQ(g.num_digits, 3);
    EXPECT_EQ(g.timeout, 7s);
    EXPECT_EQ(g.finish_on_key, "*");
    ASSERT_EQ(g.prompts.size(), 3u);
    EXPECT_EQ(std::get<twiml::Say>(g.prompts[0]).loop, 2);
    EXPECT_EQ(std::get<twiml::Play>(g.prompts[1]).url, "https://h/beep.wav");
    EXPECT_EQ(std::get<twiml::Pause>(g.prompts[2]).length, 1s);
    EXPECT_EQ(std::get<twiml::StopStream>(r->verbs[3]).name, "x");
    EXPECT_EQ(std::get<twiml::Play>(r->verbs[4]).digits, "1w2");
    EXPECT_EQ(std::get<twiml::Redirect>(r->verbs[5]).url, "/next");
    EXPECT_EQ(std::get<twiml::Redirect>(r->verbs[5]).method, "GET");
    const auto& d = std::get<twiml::Dial>(r->verbs[6]);
    EXPECT_EQ(d.target, "Number:+15551234567");
    EXPECT_EQ(d.action, "/dialed");
    EXPECT_EQ(d.timeout, 20s);
    EXPECT_EQ(std::get<twiml::Dial>(r->verbs[7]).target, "+15550000000");
    EXPECT_EQ(std::get<twiml::Reject>(r->verbs[8]).reason, "busy");
}

TEST(Twiml, DefaultsFollowTwilio) {
    auto r = twiml::parse("<Response><Gather/><Start><Stream url='wss://h/m'/></Start></Response>");
    ASSERT_TRUE(r) << r.error().to_string();
    const auto& g = std::get<twiml::Gather>(r->verbs[0]);
    EXPECT_TRUE(g.dtmf);
    EXPECT_FALSE(g.speech);
    EXPECT_EQ(g.method, "POST");
    EXPECT_EQ(g.timeout, 5s);
    EXPECT_EQ(g.num_digits, 0);
    EXPECT_EQ(g.finish_on_key, "#");
    const auto& s = std::get<twiml::StartStream>(r->verbs[1]).stream;
    EXPECT_EQ(s.track, twiml::StreamTrack::inbound_track);
    EXPECT_TRUE(s.parameters.empty());
}

TEST(Twiml, WarnsAboutIgnoredAttributesAndQueryStrings) {
    auto r = twiml::parse(
        "<Response><Say colour='red'>x</Say>"
        "<Connect><Stream url='wss://h/m?id=1'/></Connect></Response>");
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(r->warnings.size(), 2u);
    EXPECT_EQ(r->warnings[0], "TwiML:1:11: <Say>: attribute \"colour\" is ignored");
    EXPECT_NE(r->warnings[1].find("query"), std::string::npos);
}

TEST(Twiml, RejectsInvalidTwimlWithAClearReason) {
    EXPECT_EQ(error_of("<Response>\n  <Speak>hi</Speak>\n</Response>"),
              "t.xml:2:3: unknown TwiML verb <Speak> (expected Say, Play, Pause, Start, Connect, "
              "Stop, Gather, Redirect, Dial, Hangup or Reject; TwiML is case-sensitive)");
    EXPECT_EQ(error_of("<Response><say>hi</say></Response>").substr(0, 36),
              "t.xml:1:11: unknown TwiML verb <say>");
    EXPECT_EQ(error_of("<response/>"),
              "t.xml:1:1: the root element must be <Response>, found <response>");
    EXPECT_EQ(error_of("<Response><Record/></Response>"),
              "t.xml:1:11: <Record> is a Twilio verb that mediasim does not emulate");
    EXPECT_EQ(
        error_of("<Response><Connect><Stream url='wss://h/m' "
                 "track='both_tracks'/></Connect></Response>"),
        "t.xml:1:20: <Connect><Stream>: track=\"both_tracks\" is not allowed; <Connect> allows "
        "only inbound_track (error 31941)");
    EXPECT_EQ(
        error_of("<Response><Start><Stream url='wss://h/m' track='inbound'/></Start></Response>"),
        "t.xml:1:18: <Stream>: track=\"inbound\" must be inbound_track, outbound_track or "
        "both_tracks (error 31941)");
    EXPECT_EQ(error_of("<Response><Start><Stream/></Start></Response>"),
              "t.xml:1:18: <Start><Stream> needs a url attribute");
    EXPECT_EQ(error_of("<Response><Start><Stream url='https://h/m'/></Start></Response>"),
              "t.xml:1:18: <Stream url=\"https://h/m\">: the scheme must be wss (error 31922)");
    EXPECT_EQ(error_of("<Response><Start><Say>x</Say></Start></Response>"),
              "t.xml:1:18: <Say> is not allowed inside <Start> (error 14300: expected <Stream>)");
    EXPECT_EQ(error_of("<Response><Connect/></Response>"),
              "t.xml:1:11: <Connect> needs a <Stream>");
    EXPECT_EQ(error_of("<Response><Gather><Dial>1</Dial></Gather></Response>"),
              "t.xml:1:19: <Dial> is not allowed inside <Gather> (error 13320: only Say, Play and "
              "Pause)");
    EXPECT_EQ(error_of("<Response><Pause length='two'/></Response>"),
              "t.xml:1:11: <Pause>: length=\"two\" is not a whole number");
    EXPECT_EQ(error_of("<Response><Pause length='-1'/></Response>"),
              "t.xml:1:11: <Pause>: length=\"-1\" is out of range (0..14400)");
    EXPECT_EQ(
        error_of("<Response><Gather input='voice'/></Response>"),
        "t.xml:1:11: <Gather>: input=\"voice\" must be \"dtmf\", \"speech\" or \"dtmf speech\"");
    EXPECT_EQ(error_of("<Response><Redirect/></Response>"),
              "t.xml:1:11: <Redirect> needs a URL as its text");
    EXPECT_EQ(error_of("<Response><Redirect method='PUT'>/x</Redirect></Response>"),
              "t.xml:1:11: <Redirect>: method=\"PUT\" must be GET or POST");
    EXPECT_EQ(error_of("<Response><Start><Stream url='wss://h/m'><Parameter "
                       "name='a'/></Stream></Start></Response>"),
              "t.xml:1:42: <Parameter name=\"a\"> needs a value attribute");
    EXPECT_EQ(error_of("<Response>hello</Response>"),
              "t.xml:1:1: <Response> holds text outside any verb");
    EXPECT_EQ(error_of("<Response><Hangup>now</Hangup></Response>"),
              "t.xml:1:11: <Hangup> takes no text");
    EXPECT_EQ(
        error_of("<Response><Connect><ConversationRelay url='wss://h'/></Connect></Response>"),
        "t.xml:1:20: <Connect><ConversationRelay> is not emulated by mediasim (only "
        "<Connect><Stream>)");
    EXPECT_EQ(error_of("<Response><Say>x</Response>"),
              "t.xml:1:17: expected </Say> (opened at 1:11), found </Response>");
}

TEST(Twiml, SayDurationGrowsWithTheText) {
    twiml::Say s;
    EXPECT_EQ(twiml::say_duration(s), 0ms);
    s.text = "Hi";
    EXPECT_EQ(twiml::say_duration(s), 500ms);
    s.text = std::string(140, 'a');
    EXPECT_EQ(twiml::say_duration(s), 10000ms);
    s.loop = 2;
    EXPECT_EQ(twiml::say_duration(s), 20000ms);
}

TEST(Twiml, DescribesVerbsForTheTimeline) {
    auto r = twiml::parse(
        "<Response><Connect><Stream url='wss://h/m'><Parameter name='a' value='b'/>"
        "</Stream></Connect></Response>");
    ASSERT_TRUE(r);
    EXPECT_EQ(twiml::describe(r->verbs[0]), "<Connect><Stream url=\"wss://h/m\"> (1 parameter)");
}
