#include "core/form.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mediasim::core {
namespace {

// ---------------------------------------------------------------------------------------------
// url_encode / url_decode

TEST(UrlEncode, Table) {
    struct Case {
        std::string in, out;
    };
    const std::vector<Case> cases = {
        {"", ""},
        {"abcxyzABCXYZ0189-._~", "abcxyzABCXYZ0189-._~"},  // RFC 3986 unreserved: kept
        {"a b", "a+b"},
        {"+14155550100", "%2B14155550100"},
        {"a&b=c", "a%26b%3Dc"},
        {"50%", "50%25"},
        {"*!'()", "%2A%21%27%28%29"},
        {"/path?x#y", "%2Fpath%3Fx%23y"},
        {std::string("\0\x1f\x7f", 3), "%00%1F%7F"},
        {"\xff\x80", "%FF%80"},
        {"\xC2\xBFQu\xC3\xA9 tal? S\xC3\xAD & no = 50%",
         "%C2%BFQu%C3%A9+tal%3F+S%C3%AD+%26+no+%3D+50%25"},
    };
    for (const Case& c : cases) EXPECT_EQ(url_encode(c.in), c.out) << c.in;
}

TEST(UrlDecode, Table) {
    struct Case {
        std::string in, out;
    };
    const std::vector<Case> cases = {
        {"", ""},
        {"a+b", "a b"},
        {"a%20b", "a b"},
        {"%2B1415", "+1415"},
        {"%2b", "+"},  // lowercase hex digits are accepted
        {"%e2%82%AC", "\xE2\x82\xAC"},
        {"100%25", "100%"},
        {"~*!'()/?:@", "~*!'()/?:@"},  // characters that need no escape pass through
        {"%00", std::string("\0", 1)},
        {"%FF", "\xFF"},
        {"++", "  "},
    };
    for (const Case& c : cases) {
        auto r = url_decode(c.in);
        ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().to_string();
        EXPECT_EQ(*r, c.out) << c.in;
    }
}

TEST(UrlDecode, BadEscapesNameThePosition) {
    struct Case {
        std::string in, message;
    };
    const std::vector<Case> cases = {
        {"%", "invalid percent escape \"%\" at position 0 (expected '%' and two hex digits)"},
        {"abc%4", "invalid percent escape \"%4\" at position 3 (expected '%' and two hex digits)"},
        {"a%G1b", "invalid percent escape \"%G1\" at position 1 (expected '%' and two hex digits)"},
        {"ok%20then%zz",
         "invalid percent escape \"%zz\" at position 9 (expected '%' and two hex digits)"},
        {"%%41", "invalid percent escape \"%%4\" at position 0 (expected '%' and two hex digits)"},
        {"%4 ", "invalid percent escape \"%4 \" at position 0 (expected '%' and two hex digits)"},
    };
    for (const Case& c : cases) {
        auto r = url_decode(c.in);
        ASSERT_FALSE(r.ok()) << c.in;
        EXPECT_EQ(r.error().to_string(), c.message);
    }
}

TEST(UrlEncode, EveryByteRoundTrips) {
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    const std::string encoded = url_encode(all);
    for (char c : encoded) {
        const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                             c == '~' || c == '%' || c == '+';
        EXPECT_TRUE(allowed) << "unexpected '" << c << "' in " << encoded;
    }
    auto decoded = url_decode(encoded);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, all);
}

// ---------------------------------------------------------------------------------------------
// form_encode / form_decode

TEST(FormEncode, OrderRepeatsAndEmptyValues) {
    const Parameters p = {{"To", "+15005550001"},
                          {"From", "+14155550100"},
                          {"Digits", ""},
                          {"a b", "c&d"},
                          {"To", "again"}};
    EXPECT_EQ(form_encode(p), "To=%2B15005550001&From=%2B14155550100&Digits=&a+b=c%26d&To=again");
    EXPECT_EQ(form_encode({}), "");
}

TEST(FormDecode, Table) {
    struct Case {
        std::string in;
        Parameters out;
    };
    const std::vector<Case> cases = {
        {"", {}},
        {"a=1", {{"a", "1"}}},
        {"b=2&a=1", {{"b", "2"}, {"a", "1"}}},                  // order preserved
        {"a=1&a=2&a=1", {{"a", "1"}, {"a", "2"}, {"a", "1"}}},  // repeats kept
        {"a=&b=", {{"a", ""}, {"b", ""}}},
        {"a", {{"a", ""}}},                  // no '=': empty value
        {"a&b=2", {{"a", ""}, {"b", "2"}}},  // no '=' in the middle
        {"=x", {{"", "x"}}},
        {"a=b=c", {{"a", "b=c"}}},                // only the first '=' splits
        {"a=1&&b=2&", {{"a", "1"}, {"b", "2"}}},  // empty fields hold nothing
        {"To=%2B15005550001&SpeechResult=%C2%BFQu%C3%A9+tal%3F",
         {{"To", "+15005550001"}, {"SpeechResult", "\xC2\xBFQu\xC3\xA9 tal?"}}},
        {"a+b=c+d", {{"a b", "c d"}}},
    };
    for (const Case& c : cases) {
        auto r = form_decode(c.in);
        ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().to_string();
        EXPECT_EQ(*r, c.out) << c.in;
    }
}

TEST(FormDecode, ErrorsNamePositionInTheWholeBody) {
    auto value = form_decode("CallSid=CA1&Digits=12%3");
    ASSERT_FALSE(value.ok());
    EXPECT_EQ(value.error().to_string(),
              "invalid percent escape \"%3\" at position 21 (expected '%' and two hex digits)");
    auto name = form_decode("a=1&b%x=2");
    ASSERT_FALSE(name.ok());
    EXPECT_EQ(name.error().to_string(),
              "invalid percent escape \"%x\" at position 5 (expected '%' and two hex digits)");
}

TEST(Form, RoundTrip) {
    std::string every_byte;
    for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
    const Parameters p = {
        {"AccountSid", "AC0123456789abcdef0123456789abcdef"},
        {"SpeechResult", "\xC2\xBFQu\xC3\xA9 tal? S\xC3\xAD & no = 50%"},
        {"Empty", ""},
        {"", "nameless"},
        {"Bytes", every_byte},
        {"Empty", "second"},
    };
    auto back = form_decode(form_encode(p));
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(*back, p);
}

// ---------------------------------------------------------------------------------------------
// parse_url and Url

TEST(ParseUrl, GoodTable) {
    struct Case {
        std::string in, scheme, host, port, target, path, query, port_or_default, to_string;
    };
    const std::vector<Case> cases = {
        {"https://example.com", "https", "example.com", "", "/", "/", "", "443",
         "https://example.com/"},
        {"http://example.com/", "http", "example.com", "", "/", "/", "", "80",
         "http://example.com/"},
        {"https://sim.example.com/gather?step=2&lang=es-ES", "https", "sim.example.com", "",
         "/gather?step=2&lang=es-ES", "/gather", "step=2&lang=es-ES", "443",
         "https://sim.example.com/gather?step=2&lang=es-ES"},
        {"HTTPS://Example.COM:8443/a/b?x=1#frag", "https", "Example.COM", "8443", "/a/b?x=1",
         "/a/b", "x=1", "8443", "https://Example.COM:8443/a/b?x=1"},
        {"http://h?x=1", "http", "h", "", "/?x=1", "/", "x=1", "80", "http://h/?x=1"},
        {"http://h/p?", "http", "h", "", "/p?", "/p", "", "80", "http://h/p?"},
        {"ws://127.0.0.1:8080/media", "ws", "127.0.0.1", "8080", "/media", "/media", "", "8080",
         "ws://127.0.0.1:8080/media"},
        {"wss://sim.example.com/media", "wss", "sim.example.com", "", "/media", "/media", "", "443",
         "wss://sim.example.com/media"},
        {"wss://[::1]:9443/m", "wss", "::1", "9443", "/m", "/m", "", "9443", "wss://[::1]:9443/m"},
        {"http://[2001:DB8::1]/x", "http", "2001:db8::1", "", "/x", "/x", "", "80",
         "http://[2001:db8::1]/x"},
        {"http://[::ffff:192.0.2.1]/", "http", "::ffff:192.0.2.1", "", "/", "/", "", "80",
         "http://[::ffff:192.0.2.1]/"},
        {"http://[1:2:3:4:5:6:7:8]:80/", "http", "1:2:3:4:5:6:7:8", "80", "/", "/", "", "80",
         "http://[1:2:3:4:5:6:7:8]:80/"},
        {"https://h:1/", "https", "h", "1", "/", "/", "", "1", "https://h:1/"},
        {"https://h:65535/", "https", "h", "65535", "/", "/", "", "65535", "https://h:65535/"},
        {"https://h/caf\xC3\xA9?q=\xC3\xA9", "https", "h", "", "/caf\xC3\xA9?q=\xC3\xA9",
         "/caf\xC3\xA9", "q=\xC3\xA9", "443", "https://h/caf\xC3\xA9?q=\xC3\xA9"},
        {"https://my_host-1.example/%7Euser", "https", "my_host-1.example", "", "/%7Euser",
         "/%7Euser", "", "443", "https://my_host-1.example/%7Euser"},
    };
    for (const Case& c : cases) {
        auto r = parse_url(c.in);
        ASSERT_TRUE(r.ok()) << c.in << ": " << r.error().to_string();
        EXPECT_EQ(r->scheme, c.scheme) << c.in;
        EXPECT_EQ(r->host, c.host) << c.in;
        EXPECT_EQ(r->port, c.port) << c.in;
        EXPECT_EQ(r->target, c.target) << c.in;
        EXPECT_EQ(r->path(), c.path) << c.in;
        EXPECT_EQ(r->query(), c.query) << c.in;
        EXPECT_EQ(r->port_or_default(), c.port_or_default) << c.in;
        EXPECT_EQ(r->to_string(), c.to_string) << c.in;
        EXPECT_EQ(r->is_tls(), c.scheme == "https" || c.scheme == "wss") << c.in;
    }
}

TEST(ParseUrl, BadTable) {
    struct Case {
        std::string in, message;
    };
    const std::vector<Case> cases = {
        {"ftp://x", "\"ftp://x\": unsupported scheme \"ftp\" (expected http, https, ws or wss)"},
        {"HTTPX://x",
         "\"HTTPX://x\": unsupported scheme \"HTTPX\" (expected http, https, ws or wss)"},
        {"", "\"\": no scheme (expected e.g. https://host/path)"},
        {"example.com/voice", "\"example.com/voice\": no scheme (expected e.g. https://host/path)"},
        {"localhost:8080/voice",
         "\"localhost:8080/voice\": no scheme (expected e.g. https://host/path)"},
        {"//example.com/x", "\"//example.com/x\": no scheme (expected e.g. https://host/path)"},
        {"https:example.com", "\"https:example.com\": expected \"//\" after \"https:\""},
        {"https://user:pw@example.com/",
         "\"https://user:***@example.com/\": userinfo \"user:***@\" is not supported (put "
         "credentials in a header, not in the URL)"},
        {"wss://token@example.com/media?x=1",
         "\"wss://token@example.com/media?x=1\": userinfo \"token@\" is not supported (put "
         "credentials in a header, not in the URL)"},
        {"https:///voice", "\"https:///voice\": empty host"},
        {"https://:8080/voice", "\"https://:8080/voice\": empty host"},
        {"https://h:/x",
         "\"https://h:/x\": empty port after ':' (leave out the ':' for the default port)"},
        {"https://h:0/", "\"https://h:0/\": port 0 is out of range (1 to 65535)"},
        {"https://h:65536/", "\"https://h:65536/\": port 65536 is out of range (1 to 65535)"},
        {"https://h:99999999999999999999/",
         "\"https://h:99999999999999999999/\": port 99999999999999999999 is out of range (1 to "
         "65535)"},
        {"https://h:8o/", "\"https://h:8o/\": port \"8o\" is not a number from 1 to 65535"},
        {"https://h:-1/", "\"https://h:-1/\": port \"-1\" is not a number from 1 to 65535"},
        {"https://h:1:2/", "\"https://h:1:2/\": port \"1:2\" is not a number from 1 to 65535"},
        {"https://[::1/x", "\"https://[::1/x\": IPv6 address is missing its closing ']'"},
        {"https://[1:2:3]/", "\"https://[1:2:3]/\": \"[1:2:3]\" is not a valid IPv6 address"},
        {"https://[1:2:3:4:5:6:7:8:9]/",
         "\"https://[1:2:3:4:5:6:7:8:9]/\": \"[1:2:3:4:5:6:7:8:9]\" is not a valid IPv6 address"},
        {"https://[1::2::3]/", "\"https://[1::2::3]/\": \"[1::2::3]\" is not a valid IPv6 address"},
        {"https://[12345::]/", "\"https://[12345::]/\": \"[12345::]\" is not a valid IPv6 address"},
        {"https://[::1.2.3.256]/",
         "\"https://[::1.2.3.256]/\": \"[::1.2.3.256]\" is not a valid IPv6 address"},
        {"https://[g::1]/", "\"https://[g::1]/\": \"[g::1]\" is not a valid IPv6 address"},
        {"https://[]/", "\"https://[]/\": \"[]\" is not a valid IPv6 address"},
        {"https://[fe80::1%25eth0]/",
         "\"https://[fe80::1%25eth0]/\": IPv6 zone identifiers are not supported (in "
         "\"[fe80::1%25eth0]\")"},
        {"https://[::1]8080/",
         "\"https://[::1]8080/\": unexpected \"8080\" after the IPv6 address (expected ':port')"},
        {"https://ex!ample.com/",
         "\"https://ex!ample.com/\": '!' at position 10 is not allowed in a host name"},
        {"https://h/a b",
         "\"https://h/a b\": a space at position 11 is not allowed in a URL (percent-encode it)"},
        {"https://h/a\tb",
         "\"https://h/a\tb\": a tab at position 11 is not allowed in a URL (percent-encode it)"},
        {"https://h/\x7f",
         "\"https://h/\x7f\": byte 0x7F at position 10 is not allowed in a URL (percent-encode "
         "it)"},
        {" https://h/",
         "\" https://h/\": a space at position 0 is not allowed in a URL (percent-encode it)"},
    };
    for (const Case& c : cases) {
        auto r = parse_url(c.in);
        ASSERT_FALSE(r.ok()) << c.in << " parsed as " << r->to_string();
        EXPECT_EQ(r.error().to_string(), c.message);
    }
}

TEST(ParseUrl, RoundTripsThroughToString) {
    for (const char* text : {"https://sim.example.com/twiml/voice", "http://127.0.0.1:8080/a?b=c&d",
                             "wss://[2001:db8::7]:8443/media?x", "ws://h/p?", "https://h:443/p"}) {
        auto r = parse_url(text);
        ASSERT_TRUE(r.ok()) << text;
        EXPECT_EQ(r->to_string(), text);
        auto again = parse_url(r->to_string());
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again->to_string(), text);
    }
}

// ---------------------------------------------------------------------------------------------
// resolve_url: RFC 3986 §5.4. Url has no fragment (a request target never carries one), so the
// expected results below are the RFC's with "#fragment" removed; each such row says so.

struct ResolveCase {
    const char* reference;
    const char* expected;
};

void check_resolve(const std::vector<ResolveCase>& cases) {
    auto base = parse_url("http://a/b/c/d;p?q");
    ASSERT_TRUE(base.ok());
    for (const ResolveCase& c : cases) {
        auto r = resolve_url(*base, c.reference);
        ASSERT_TRUE(r.ok()) << c.reference << ": " << r.error().to_string();
        EXPECT_EQ(r->to_string(), c.expected) << "reference \"" << c.reference << "\"";
    }
}

TEST(ResolveUrl, Rfc3986NormalExamples) {  // §5.4.1
    check_resolve({
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g/"},  // RFC: "http://g"; a Url's target is "/" at least
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q"},   // RFC: ...?q#s
        {"g#s", "http://a/b/c/g"},      // RFC: ...g#s
        {"g?y#s", "http://a/b/c/g?y"},  // RFC: ...g?y#s
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y"},  // RFC: ...?y#s
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    });
}

TEST(ResolveUrl, Rfc3986AbnormalExamples) {  // §5.4.2
    check_resolve({
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g"},   // RFC: ...g#s/./x
        {"g#s/../x", "http://a/b/c/g"},  // RFC: ...g#s/../x
    });
}

TEST(ResolveUrl, StrictAboutSchemesAndAbsoluteReferences) {
    auto base = parse_url("http://a/b/c/d;p?q");
    ASSERT_TRUE(base.ok());
    // §5.4.2: "http:g" is "http:g" for strict parsers; that is no http URL we can request.
    auto strict = resolve_url(*base, "http:g");
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().to_string(), "\"http:g\": expected \"//\" after \"http:\"");
    // §5.4.1: "g:h" is "g:h", a scheme Mediasim cannot request.
    auto other = resolve_url(*base, "g:h");
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().to_string(), "\"g:h\": no scheme (expected e.g. https://host/path)");
    auto ftp = resolve_url(*base, "ftp://x/y");
    ASSERT_FALSE(ftp.ok());
    EXPECT_EQ(ftp.error().to_string(),
              "\"ftp://x/y\": unsupported scheme \"ftp\" (expected http, https, ws or wss)");

    auto wss = resolve_url(*base, "wss://media.example.com:8443/a/./b/../media?x=1");
    ASSERT_TRUE(wss.ok()) << wss.error().to_string();
    EXPECT_EQ(wss->to_string(), "wss://media.example.com:8443/a/media?x=1");
    auto net = resolve_url(*base, "//other.example:81/s?t");
    ASSERT_TRUE(net.ok()) << net.error().to_string();
    EXPECT_EQ(net->to_string(), "http://other.example:81/s?t");
}

TEST(ResolveUrl, TwimlStreamUrlsAgainstTheWebhook) {
    auto base = parse_url("https://sim.example.com:8443/twiml/voice?step=1");
    ASSERT_TRUE(base.ok());
    auto media = resolve_url(*base, "/media");
    ASSERT_TRUE(media.ok());
    EXPECT_EQ(media->to_string(), "https://sim.example.com:8443/media");
    auto next = resolve_url(*base, "next?step=2");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->to_string(), "https://sim.example.com:8443/twiml/next?step=2");
    auto ipv6 = parse_url("http://[::1]:9000/a/b");
    ASSERT_TRUE(ipv6.ok());
    auto up = resolve_url(*ipv6, "../c");
    ASSERT_TRUE(up.ok());
    EXPECT_EQ(up->to_string(), "http://[::1]:9000/c");
}

TEST(ResolveUrl, BadReferenceNamesThePosition) {
    auto base = parse_url("https://h/a/b");
    ASSERT_TRUE(base.ok());
    auto r = resolve_url(*base, "next step");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().to_string(),
              "\"next step\": a space at position 4 is not allowed in a URL (percent-encode it)");
    auto port = resolve_url(*base, "//h:70000/");
    ASSERT_FALSE(port.ok());
    EXPECT_EQ(port.error().to_string(),
              "\"https://h:70000/\": port 70000 is out of range (1 to 65535)");
}

}  // namespace
}  // namespace mediasim::core
