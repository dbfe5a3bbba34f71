#include "core/signature.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace mediasim::core {
namespace {

// Spec §6 "Test vectors", copied verbatim (verified there with twilio@6.2.0 on Node v20.20.2).
const std::string kK = "2b6f0c8a1e9d4f7b8c3a5d6e7f901234";
const std::string kAC = "AC0123456789abcdef0123456789abcdef";
const std::string kCA = "CA89abcdef0123456789abcdef01234567";
const std::string kT1Url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const std::string kT7Hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const std::string kT7Body = R"({"property": "value", "boolean": true})";

Parameters t1_params() {
    return {{"CallSid", "CA1234567890ABCDE"},
            {"Caller", "+14158675309"},
            {"Digits", "1234"},
            {"From", "+14158675309"},
            {"To", "+18005551212"}};
}

Parameters t2_params() {
    return {{"AccountSid", kAC},
            {"ApiVersion", "2010-04-01"},
            {"CallSid", kCA},
            {"CallStatus", "ringing"},
            {"Called", "+15005550001"},
            {"Caller", "+14155550100"},
            {"CallerCity", "SAN FRANCISCO"},
            {"Direction", "inbound"},
            {"From", "+14155550100"},
            {"To", "+15005550001"}};
}

struct Vector {
    const char* name;
    std::string token, url;
    Parameters params;
    std::string signature;
};

std::vector<Vector> spec_vectors() {
    return {
        {"T1", "12345", kT1Url, t1_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        {"T2", kK, "https://sim.example.com/twiml/voice", t2_params(),
         "q4V8tTEWYm/ELDQwH2S3IW7pAR0="},
        {"T3",
         kK,
         "https://sim.example.com/gather?step=2&lang=es-ES",
         {{"AccountSid", kAC},
          {"CallSid", kCA},
          {"Confidence", "0.92"},
          {"SpeechResult", "\xC2\xBFQu\xC3\xA9 tal? S\xC3\xAD & no = 50%"}},
         "OiftRK835wdOQCpRLqovKX+Xd6Q="},
        {"T4", kK, "wss://sim.example.com/media", {}, "/L7EUkq4k+UtEokKMtgIH0GEgT4="},
        {"T5",
         kK,
         "https://sim.example.com/stream-status",
         {{"AccountSid", kAC},
          {"CallSid", kCA},
          {"StreamEvent", "stream-started"},
          {"StreamName", "caller-audio"},
          {"StreamSid", "MZ0123456789abcdef0123456789abcdef"},
          {"Timestamp", "2026-11-23T08:30:00.123Z"}},
         "aFo7j/htezGVN2UNCHyjpJBKyKc="},
        {"T6",
         "12345",
         kT1Url,
         {{"MessagingBinding.Address", "+1415xxxxxxx"},
          {"MessagingBinding.Address", "+1325xxxxxxx"}},
         "83O6e2vORAoJHUNzJjDWN1jz+BA="},
        {"T7", "12345", kT1Url + "&bodySHA256=" + kT7Hash, {}, "a9nBmqA0ju/hNViExpshrM61xv4="},
        {"T8",
         "12345",
         "https://mycompany.com/myapp.php?bodySHA256=" + kT7Hash,
         {},
         "y77kIzt2vzLz71DgmJGsen2scGs="},
        {"T9", "12345", "wss://example.com/media", {}, "7PR3qMkpDyEJtMrVOY/LDyNq8J8="},
        {"T10", kK, "https://sim.example.com:443/twiml/voice", t2_params(),
         "JKkdwO+F+U11VdEV4e0tAoRj17Q="},
    };
}

TEST(Signature, SpecVectorsCompute) {
    for (const Vector& v : spec_vectors()) {
        EXPECT_EQ(compute_signature(v.token, v.url, v.params), v.signature) << v.name;
    }
}

TEST(Signature, SpecVectorsValidate) {
    for (const Vector& v : spec_vectors()) {
        EXPECT_TRUE(validate_signature(v.token, v.signature, v.url, v.params)) << v.name;
    }
}

TEST(Signature, SpecSignedStringForT1) {
    // The string signed for T1 (spec §6), signed as a URL with no parameters.
    const std::string signed_string =
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+"
        "14158675309Digits1234From+14158675309To+18005551212";
    EXPECT_EQ(compute_signature("12345", signed_string), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
}

TEST(Signature, TwilioDocsVariant) {
    Parameters p = t1_params();
    for (auto& [name, value] : p) {
        if (name == "Caller" || name == "From") value = "+12349013030";
    }
    EXPECT_EQ(compute_signature("12345", kT1Url, p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    EXPECT_TRUE(validate_signature("12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", kT1Url, p));
}

TEST(Signature, JsonBodyVectors) {
    const std::string t7_url = kT1Url + "&bodySHA256=" + kT7Hash;
    const std::string t8_url = "https://mycompany.com/myapp.php?bodySHA256=" + kT7Hash;
    EXPECT_EQ(sha256_hex(kT7Body), kT7Hash);
    EXPECT_TRUE(
        validate_signature_with_body("12345", "a9nBmqA0ju/hNViExpshrM61xv4=", t7_url, kT7Body));
    EXPECT_TRUE(
        validate_signature_with_body("12345", "y77kIzt2vzLz71DgmJGsen2scGs=", t8_url, kT7Body));
}

TEST(Signature, JsonBodyTampering) {
    const std::string url = "https://mycompany.com/myapp.php?bodySHA256=" + kT7Hash;
    const std::string sig = "y77kIzt2vzLz71DgmJGsen2scGs=";
    // A changed body: the signature still matches the URL, the hash does not.
    EXPECT_TRUE(validate_signature("12345", sig, url));
    EXPECT_FALSE(validate_signature_with_body("12345", sig, url,
                                              R"({"property": "value", "boolean": false})"));
    EXPECT_FALSE(validate_signature_with_body("12345", sig, url, kT7Body + " "));
    EXPECT_FALSE(validate_signature_with_body("12345", sig, url, ""));
    // A wrong token.
    EXPECT_FALSE(validate_signature_with_body("12346", sig, url, kT7Body));
    // A URL whose hash was replaced to fit another body: the signature no longer matches.
    const std::string other_body = "{}";
    const std::string forged =
        "https://mycompany.com/myapp.php?bodySHA256=" + sha256_hex(other_body);
    EXPECT_FALSE(validate_signature_with_body("12345", sig, forged, other_body));
    // Correctly signed, but the URL carries no bodySHA256 at all, or an uppercase hash.
    const std::string no_hash = "https://mycompany.com/myapp.php";
    EXPECT_FALSE(validate_signature_with_body("12345", compute_signature("12345", no_hash), no_hash,
                                              kT7Body));
    std::string upper = kT7Hash;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string upper_url = "https://mycompany.com/myapp.php?bodySHA256=" + upper;
    EXPECT_FALSE(validate_signature_with_body("12345", compute_signature("12345", upper_url),
                                              upper_url, kT7Body));
    // Signed over the right URL and hash, a fresh signature over the same URL validates.
    EXPECT_TRUE(
        validate_signature_with_body("12345", compute_signature("12345", url), url, kT7Body));
}

TEST(Signature, Sha256Hex) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Signature, NamesInByteOrderValuesSortedAndDistinct) {
    const std::string url = "https://sim.example.com/twiml/voice";
    // Byte order, case-sensitive: CallSid < CallStatus < Called < Caller.
    const Parameters shuffled = {
        {"Caller", "4"}, {"CallStatus", "2"}, {"Called", "3"}, {"CallSid", "1"}};
    EXPECT_EQ(compute_signature(kK, url, shuffled),
              compute_signature(kK, url + "CallSid1CallStatus2Called3Caller4"));
    // Uppercase sorts before lowercase.
    EXPECT_EQ(compute_signature(kK, url, {{"b", "1"}, {"B", "2"}, {"a", "3"}}),
              compute_signature(kK, url + "B2a3b1"));
    // Repeated names: each distinct value once, values sorted.
    EXPECT_EQ(compute_signature(kK, url, {{"x", "b"}, {"y", "0"}, {"x", "a"}, {"x", "b"}}),
              compute_signature(kK, url + "xaxby0"));
    // T6 with a duplicated value still gives T6's signature.
    EXPECT_EQ(compute_signature("12345", kT1Url,
                                {{"MessagingBinding.Address", "+1415xxxxxxx"},
                                 {"MessagingBinding.Address", "+1325xxxxxxx"},
                                 {"MessagingBinding.Address", "+1415xxxxxxx"}}),
              "83O6e2vORAoJHUNzJjDWN1jz+BA=");
    // Empty values still add the name.
    EXPECT_EQ(compute_signature(kK, url, {{"Digits", ""}}), compute_signature(kK, url + "Digits"));
}

TEST(Signature, TamperingFails) {
    const std::string url = "https://sim.example.com/twiml/voice";
    const std::string sig = "q4V8tTEWYm/ELDQwH2S3IW7pAR0=";  // T2
    ASSERT_TRUE(validate_signature(kK, sig, url, t2_params()));

    Parameters changed = t2_params();
    changed[3].second = "in-progress";  // CallStatus
    EXPECT_FALSE(validate_signature(kK, sig, url, changed));
    Parameters added = t2_params();
    added.emplace_back("Digits", "1");
    EXPECT_FALSE(validate_signature(kK, sig, url, added));
    Parameters removed = t2_params();
    removed.pop_back();
    EXPECT_FALSE(validate_signature(kK, sig, url, removed));
    Parameters renamed = t2_params();
    renamed[0].first = "accountSid";
    EXPECT_FALSE(validate_signature(kK, sig, url, renamed));
    Parameters swapped = t2_params();  // a value moved to another name
    std::swap(swapped[8].second, swapped[9].second);
    EXPECT_FALSE(validate_signature(kK, sig, url, swapped));

    for (const char* other_url :
         {"https://sim.example.com/twiml/voice2", "https://sim.example.com/twiml/Voice",
          "http://sim.example.com/twiml/voice", "https://sim.example.org/twiml/voice",
          "https://sim.example.com/twiml/voice?x=1", "https://sim.example.com/twiml/voice/",
          "https://sim.example.com:8443/twiml/voice-", "not a url"}) {
        EXPECT_FALSE(validate_signature(kK, sig, other_url, t2_params())) << other_url;
    }
    EXPECT_FALSE(validate_signature("2b6f0c8a1e9d4f7b8c3a5d6e7f901235", sig, url, t2_params()));
    EXPECT_FALSE(validate_signature("", sig, url, t2_params()));
    for (const std::string& bad_sig :
         {std::string(), std::string("q4V8tTEWYm/ELDQwH2S3IW7pAR0"),
          std::string("q4V8tTEWYm/ELDQwH2S3IW7pAR0=="), std::string("Q4V8tTEWYm/ELDQwH2S3IW7pAR0="),
          std::string("q4V8tTEWYm/ELDQwH2S3IW7pAR1="), std::string(" q4V8tTEWYm/ELDQwH2S3IW7pAR0="),
          std::string("q4V8tTEWYm/ELDQwH2S3IW7pAR0=\n")}) {
        EXPECT_FALSE(validate_signature(kK, bad_sig, url, t2_params())) << bad_sig;
    }
    // GET: the parameters are in the query and nothing is appended; moving them to the body
    // breaks the signature.
    const std::string get_url = "https://sim.example.com/twiml/voice?CallSid=" + kCA;
    const std::string get_sig = compute_signature(kK, get_url);
    EXPECT_TRUE(validate_signature(kK, get_sig, get_url));
    EXPECT_FALSE(validate_signature(kK, get_sig, get_url, {{"CallSid", kCA}}));
}

TEST(Signature, PortVariants) {
    // Spec §6: signed over https://h:443/p validates at https://h/p, and the reverse (T10/T2).
    EXPECT_TRUE(validate_signature(
        kK, "JKkdwO+F+U11VdEV4e0tAoRj17Q=", "https://sim.example.com/twiml/voice", t2_params()));
    EXPECT_TRUE(validate_signature(kK, "q4V8tTEWYm/ELDQwH2S3IW7pAR0=",
                                   "https://sim.example.com:443/twiml/voice", t2_params()));
    // A signature made without a port also validates at any written port (port removed).
    EXPECT_TRUE(validate_signature(kK, "q4V8tTEWYm/ELDQwH2S3IW7pAR0=",
                                   "https://sim.example.com:8443/twiml/voice", t2_params()));
    // ... but a signature over a non-default port does not validate without it.
    const std::string on_8443 = compute_signature(kK, "https://h:8443/p");
    EXPECT_TRUE(validate_signature(kK, on_8443, "https://h:8443/p"));
    EXPECT_FALSE(validate_signature(kK, on_8443, "https://h/p"));
    EXPECT_FALSE(validate_signature(kK, on_8443, "https://h:443/p"));
    EXPECT_FALSE(validate_signature(kK, on_8443, "https://h:9443/p"));
    // http: the default added is :80.
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "http://h:80/p"), "http://h/p"));
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "http://h/p"), "http://h:80/p"));
    EXPECT_FALSE(validate_signature(kK, compute_signature(kK, "http://h:443/p"), "http://h/p"));
    EXPECT_FALSE(validate_signature(kK, compute_signature(kK, "https://h:80/p"), "https://h/p"));
}

TEST(Signature, WebSocketUpgrade) {
    // T4 and T9: the wss URL with no parameters.
    EXPECT_TRUE(
        validate_signature(kK, "/L7EUkq4k+UtEokKMtgIH0GEgT4=", "wss://sim.example.com/media"));
    EXPECT_TRUE(
        validate_signature("12345", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "wss://example.com/media"));
    // Not with parameters, another scheme, path or token.
    EXPECT_FALSE(validate_signature(
        "12345", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "wss://example.com/media", {{"CallSid", kCA}}));
    EXPECT_FALSE(
        validate_signature("12345", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "ws://example.com/media"));
    EXPECT_FALSE(
        validate_signature("12345", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "https://example.com/media"));
    EXPECT_FALSE(
        validate_signature("12345", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "wss://example.com/media/"));
    EXPECT_FALSE(
        validate_signature("54321", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=", "wss://example.com/media"));
    // Spec §6: the default port twilio-node adds for wss is :80, not :443. So a signature over
    // wss://h:443/m fails at wss://h/m, while one over wss://h:80/m validates there.
    EXPECT_FALSE(validate_signature(kK, compute_signature(kK, "wss://h:443/m"), "wss://h/m"));
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "wss://h:80/m"), "wss://h/m"));
    // Port removed: a signature over wss://h/m validates at wss://h:443/m and wss://h:8443/m.
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "wss://h/m"), "wss://h:443/m"));
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "wss://h/m"), "wss://h:8443/m"));
    // As given: Mediasim signs exactly the URL it requests, so that string always validates.
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "wss://h:443/m"), "wss://h:443/m"));
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "ws://127.0.0.1:40123/media?x=1"),
                                   "ws://127.0.0.1:40123/media?x=1"));
    // ws: the default added is :80, as for http.
    EXPECT_TRUE(validate_signature(kK, compute_signature(kK, "ws://h:80/m"), "ws://h/m"));
}

// The URL strings twilio-node's validateRequest checks, for URLs that `new URL()` rewrites or
// whose query the legacy querystring round trip changes. Derived with Node v20.20.2's URL and
// querystring modules, applying removePort, addPort and withLegacyQuerystring as twilio-node does
// (spec §6: "the new URL()-normalized form ... and a legacy re-encoded query").
TEST(Signature, NormalizedAndLegacyQueryForms) {
    struct Case {
        std::string url;                      // where the request is validated
        std::vector<std::string> candidates;  // signatures over each of these validate there
    };
    const std::vector<Case> cases = {
        {"HTTPS://Sim.Example.COM:0443/a/./b/../c?name=O'Brien",
         {"https://sim.example.com/a/c?name=O%27Brien",
          "https://sim.example.com:443/a/c?name=O%27Brien",
          "https://sim.example.com/a/c?name=O'Brien"}},
        {"https://h/p?a=b+c&x=%7e&a=1&2=two&1=one",
         {"https://h/p?a=b+c&x=%7e&a=1&2=two&1=one", "https://h:443/p?a=b+c&x=%7e&a=1&2=two&1=one",
          "https://h/p?1=one&2=two&a=b%20c&a=1&x=~"}},
        {"https://h/p?", {"https://h/p?", "https://h:443/p"}},
        {"https://h/caf\xC3\xA9?q=\xC3\xA9",
         {"https://h/caf%C3%A9?q=%C3%A9", "https://h:443/caf%C3%A9?q=%C3%A9"}},
        {"https://h/a%2e%2E/b/%2e", {"https://h/a%2e%2E/b/", "https://h:443/a%2e%2E/b/"}},
        {"https://h/p?x=%zz&y=%e9",
         {"https://h/p?x=%zz&y=%e9", "https://h:443/p?x=%zz&y=%e9",
          "https://h/p?x=%25zz&y=%EF%BF%BD"}},
        {"https://h/a\"b<c>{d}`e^f|g?h\"i<j>`k{l}^m|n",
         {"https://h/a%22b%3Cc%3E%7Bd%7D%60e^f|g?h%22i%3Cj%3E`k{l}^m|n",
          "https://h:443/a%22b%3Cc%3E%7Bd%7D%60e^f|g?h%22i%3Cj%3E`k{l}^m|n",
          "https://h/a%22b%3Cc%3E%7Bd%7D%60e^f|g?h%22i%3Cj%3E%60k%7Bl%7D%5Em%7Cn="}},
        {"wss://[::1]:443/m", {"wss://[::1]/m", "wss://[::1]:80/m"}},
        {"ws://[2001:DB8::1]/m?x=1", {"ws://[2001:db8::1]/m?x=1", "ws://[2001:db8::1]:80/m?x=1"}},
        {"https://h/p?a&b=&c==",
         {"https://h/p?a&b=&c==", "https://h:443/p?a&b=&c==", "https://h/p?a=&b=&c=%3D"}},
        {"https://h/p?%41=1&A=2",
         {"https://h/p?%41=1&A=2", "https://h:443/p?%41=1&A=2", "https://h/p?A=1&A=2"}},
        {"https://h/x/../../y/./z/.", {"https://h/y/z/", "https://h:443/y/z/"}},
    };
    const Parameters params = {{"CallSid", kCA}};
    for (const Case& c : cases) {
        for (const std::string& candidate : c.candidates) {
            EXPECT_TRUE(
                validate_signature(kK, compute_signature(kK, candidate, params), c.url, params))
                << "signed over " << candidate << ", validated at " << c.url;
        }
    }
    // Forms twilio-node does not try.
    EXPECT_FALSE(
        validate_signature(kK, compute_signature(kK, "https://h/p?x=%7E"), "https://h/p?x=%7e"));
    EXPECT_FALSE(validate_signature(kK, compute_signature(kK, "https://h/p?name=O%27Brien"),
                                    "https://h/p?name=O%2527Brien"));
    EXPECT_FALSE(
        validate_signature(kK, compute_signature(kK, "https://h/x/y"), "https://h/x/../y"));
    EXPECT_FALSE(validate_signature(kK, compute_signature(kK, "https://h/p?b=2&a=1"),
                                    "https://h/p?a=1&b=2"));
}

}  // namespace
}  // namespace mediasim::core
