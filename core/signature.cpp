#include "core/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/base64.hpp"

namespace mediasim::core {

namespace {

// --- primitives ------------------------------------------------------------------------------

std::string hmac_sha1_base64(std::string_view key, std::string_view data) {
    static const unsigned char kEmpty = 0;  // HMAC() wants a non-null key pointer
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    const auto* key_bytes =
        key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    HMAC(EVP_sha1(), key_bytes, static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md.data(), &md_len);
    return base64_encode(std::span<const std::uint8_t>(md.data(), md_len));
}

// Constant time for equal lengths; the length of a signature is no secret (twilio-node's scmp
// also returns false at once when the lengths differ).
bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- the string twilio-node signs ------------------------------------------------------------

// URL, then each parameter as name + value: names in byte order, a repeated name once per
// distinct value with the values sorted (twilio-node: Object.keys(params).sort() and
// Array.from(new Set(values)).sort()). JavaScript sorts UTF-16 code units, which differs from
// byte order only between astral characters and U+E000..U+FFFF, never in a parameter name
// Twilio sends.
std::string signing_string(std::string_view url, const Parameters& params) {
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(params.size());
    for (const auto& p : params) sorted.push_back(&p);
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
    sorted.erase(std::unique(sorted.begin(), sorted.end(),
                             [](const auto* a, const auto* b) { return *a == *b; }),
                 sorted.end());
    std::string data(url);
    for (const auto* p : sorted) {
        data += p->first;
        data += p->second;
    }
    return data;
}

// --- the URL forms twilio-node's validateRequest tries (spec §6) -----------------------------

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}
void append_percent(unsigned char u, std::string& out) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out += '%';
    out += kHex[u >> 4];
    out += kHex[u & 0xF];
}

// WHATWG URL percent-encode sets for special schemes (http, https, ws, wss).
bool in_query_set(unsigned char u) {  // special-query percent-encode set
    return u < 0x21 || u > 0x7E || u == '"' || u == '#' || u == '<' || u == '>' || u == '\'';
}
bool in_path_set(unsigned char u) {
    return u < 0x21 || u > 0x7E || u == '"' || u == '#' || u == '<' || u == '>' || u == '?' ||
           u == '`' || u == '{' || u == '}';
}

bool is_single_dot(std::string_view s) {
    return s == "." || s == "%2e" || s == "%2E";
}
bool is_double_dot(std::string_view s) {
    return s == ".." || s == ".%2e" || s == ".%2E" || s == "%2e." || s == "%2E." || s == "%2e%2e" ||
           s == "%2E%2E" || s == "%2e%2E" || s == "%2E%2e";
}

// The path as `new URL()` serialises it: '\' is '/', dot segments resolved, a few bytes escaped.
std::string whatwg_path(std::string_view path) {
    std::vector<std::string> segments;
    std::string_view rest = path.substr(path.starts_with('/') || path.starts_with('\\') ? 1 : 0);
    while (true) {
        const std::size_t end = std::min(rest.find_first_of("/\\"), rest.size());
        const std::string_view seg = rest.substr(0, end);
        const bool last = end == rest.size();
        if (is_double_dot(seg)) {
            if (!segments.empty()) segments.pop_back();
            if (last) segments.emplace_back();
        } else if (is_single_dot(seg)) {
            if (last) segments.emplace_back();
        } else {
            std::string encoded;
            for (char c : seg) {
                const auto u = static_cast<unsigned char>(c);
                if (in_path_set(u)) {
                    append_percent(u, encoded);
                } else {
                    encoded += c;
                }
            }
            segments.push_back(std::move(encoded));
        }
        if (last) break;
        rest = rest.substr(end + 1);
    }
    std::string out;
    for (const auto& s : segments) out += '/' + s;
    return out.empty() ? "/" : out;
}

std::string whatwg_query(std::string_view query) {
    std::string out;
    for (char c : query) {
        const auto u = static_cast<unsigned char>(c);
        if (in_query_set(u)) {
            append_percent(u, out);
        } else {
            out += c;
        }
    }
    return out;
}

std::string lowercase(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

// What `new URL(text)` holds, for the parts twilio-node reads. IPv6 literals are kept as
// written (lowercased) rather than compressed as RFC 5952 would.
struct WhatwgUrl {
    std::string scheme, host, port;  // port "" when none or the scheme's default
    std::string pathname;
    std::optional<std::string> query;  // without '?'; null when the URL has no '?'

    std::string origin(std::string_view with_port) const {
        std::string out = scheme + "://";
        out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
        if (!with_port.empty()) out += ":" + std::string(with_port);
        return out;
    }
    std::string search() const { return query && !query->empty() ? "?" + *query : ""; }
    std::string href() const { return origin(port) + pathname + (query ? "?" + *query : ""); }
};

std::optional<WhatwgUrl> whatwg_parse(std::string_view text) {
    auto parsed = parse_url(text);
    if (!parsed) return std::nullopt;
    WhatwgUrl u;
    u.scheme = parsed->scheme;
    u.host = lowercase(parsed->host);
    const std::size_t digits = parsed->port.find_first_not_of('0');
    u.port = digits == std::string::npos ? std::string() : parsed->port.substr(digits);
    const bool tls = u.scheme == "https" || u.scheme == "wss";
    if (u.port == (tls ? "443" : "80")) u.port.clear();
    u.pathname = whatwg_path(parsed->path());
    if (parsed->target.find('?') != std::string::npos) u.query = whatwg_query(parsed->query());
    return u;
}

// removePort(): the URL with its port cleared.
std::string without_port(const WhatwgUrl& u) {
    WhatwgUrl v = u;
    v.port.clear();
    return v.href();
}

// addPort(): unchanged when a (non-default) port is present; otherwise buildUrlWithStandardPort,
// which adds ":443" for https and ":80" for every other scheme, wss included.
std::string with_port(const WhatwgUrl& u) {
    if (!u.port.empty()) return u.href();
    return u.origin(u.scheme == "https" ? "443" : "80") + u.pathname + u.search();
}

// --- Node's querystring.parse + querystring.stringify (the "legacy querystring") -------------

// Replaces ill-formed UTF-8 with U+FFFD, as Buffer.toString("utf8") does.
std::string sanitize_utf8(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (b0 < 0x80) {
            len = 1;
        } else if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        }
        std::size_t good = len == 0 ? 0 : 1;  // bytes of a valid prefix
        for (std::size_t k = 1; k < len && i + k < s.size(); ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
            if (b < min || b > max) break;
            ++good;
        }
        if (len != 0 && good == len) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            i += std::max<std::size_t>(good, 1);
        }
    }
    return out;
}

// querystring.unescape after '+' → ' ': valid %XX decoded, anything else kept as written.
std::string qs_unescape(std::string_view s) {
    std::string bytes;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            bytes += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
            bytes += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            bytes += s[i];
        }
    }
    return sanitize_utf8(bytes);
}

// querystring.escape: encodeURIComponent's set (A-Z a-z 0-9 - _ . ! ~ * ' ( ) kept).
std::string qs_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool keep = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') ||
                          (u >= '0' && u <= '9') || u == '-' || u == '_' || u == '.' || u == '!' ||
                          u == '~' || u == '*' || u == '\'' || u == '(' || u == ')';
        if (keep) {
            out += c;
        } else {
            append_percent(u, out);
        }
    }
    return out;
}

// A JavaScript array index ("0", "17"; not "017", not 2^32-1) is listed before other keys.
bool is_array_index(std::string_view key) {
    if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return false;
    std::uint64_t v = 0;
    for (char c : key) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v < 4294967295ULL;
}

std::string legacy_query(std::string_view query) {
    // querystring.parse: '&'-separated, empty pieces skipped, values of a repeated key grouped
    // under the key's first appearance.
    std::vector<std::pair<std::string, std::vector<std::string>>> fields;
    std::size_t start = 0;
    while (start <= query.size()) {
        std::size_t end = query.find('&', start);
        if (end == std::string_view::npos) end = query.size();
        const std::string_view piece = query.substr(start, end - start);
        if (!piece.empty()) {
            const std::size_t eq = piece.find('=');
            std::string key = qs_unescape(piece.substr(0, eq));
            std::string value =
                eq == std::string_view::npos ? std::string() : qs_unescape(piece.substr(eq + 1));
            auto it = std::find_if(fields.begin(), fields.end(),
                                   [&](const auto& f) { return f.first == key; });
            if (it == fields.end()) {
                fields.push_back({std::move(key), {std::move(value)}});
            } else {
                it->second.push_back(std::move(value));
            }
        }
        start = end + 1;
    }
    // Object key order: array indices ascending, then the other keys in insertion order.
    std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) {
        const bool ia = is_array_index(a.first), ib = is_array_index(b.first);
        if (ia != ib) return ia;
        if (!ia) return false;
        return a.first.size() != b.first.size() ? a.first.size() < b.first.size()
                                                : a.first < b.first;
    });
    std::string out;
    for (const auto& [key, values] : fields) {
        for (const auto& v : values) {
            if (!out.empty()) out += '&';
            out += qs_escape(key) + "=" + qs_escape(v);
        }
    }
    return out;
}

// withLegacyQuerystring(url): re-parsed (so a default port written by addPort drops again), the
// query replaced by querystring.stringify(querystring.parse(query)).
std::optional<std::string> with_legacy_query(std::string_view url) {
    auto u = whatwg_parse(url);
    if (!u || !u->query || u->query->empty()) return std::nullopt;
    return u->origin(u->port) + u->pathname + "?" + legacy_query(*u->query);
}

// Every URL string a signature is checked against, without duplicates: the URL as given (what
// Mediasim itself signs), then twilio-node's removePort, addPort and their legacy-query forms.
std::vector<std::string> candidate_urls(std::string_view url) {
    std::vector<std::string> out{std::string(url)};
    auto add = [&](std::string s) {
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
    };
    if (auto u = whatwg_parse(url)) {
        const std::string removed = without_port(*u);
        const std::string added = with_port(*u);
        add(removed);
        add(added);
        if (auto legacy = with_legacy_query(removed)) add(std::move(*legacy));
        if (auto legacy = with_legacy_query(added)) add(std::move(*legacy));
    }
    return out;
}

// URLSearchParams.get(name): the first value of `name` in the query, decoded leniently.
std::optional<std::string> query_parameter(std::string_view url, std::string_view name) {
    std::string_view rest = url.substr(0, url.find('#'));
    const std::size_t q = rest.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    rest = rest.substr(q + 1);
    std::size_t start = 0;
    while (start <= rest.size()) {
        std::size_t end = rest.find('&', start);
        if (end == std::string_view::npos) end = rest.size();
        const std::string_view piece = rest.substr(start, end - start);
        const std::size_t eq = piece.find('=');
        if (!piece.empty() && qs_unescape(piece.substr(0, eq)) == name) {
            return eq == std::string_view::npos ? std::string() : qs_unescape(piece.substr(eq + 1));
        }
        start = end + 1;
    }
    return std::nullopt;
}

}  // namespace

std::string compute_signature(std::string_view auth_token, std::string_view url,
                              const Parameters& params) {
    return hmac_sha1_base64(auth_token, signing_string(url, params));
}

bool validate_signature(std::string_view auth_token, std::string_view signature,
                        std::string_view url, const Parameters& params) {
    bool valid = false;
    // Every candidate is computed and compared, so the time taken does not depend on which
    // (if any) matched.
    for (const std::string& candidate : candidate_urls(url)) {
        valid |= equal_constant_time(signature, compute_signature(auth_token, candidate, params));
    }
    return valid;
}

bool validate_signature_with_body(std::string_view auth_token, std::string_view signature,
                                  std::string_view url, std::string_view body) {
    const bool signature_ok = validate_signature(auth_token, signature, url, {});
    const std::string claimed = query_parameter(url, "bodySHA256").value_or(std::string());
    const bool body_ok = equal_constant_time(claimed, sha256_hex(body));
    return signature_ok && body_ok;
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    EVP_Digest(data.data(), data.size(), md.data(), &md_len, EVP_sha256(), nullptr);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * md_len);
    for (unsigned int i = 0; i < md_len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 0xF];
    }
    return out;
}

}  // namespace mediasim::core
