#include "core/form.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace mediasim::core {

namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_unreserved(char c) {  // RFC 3986 §2.3
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower(c);
    return out;
}

// A printable description of one byte for error messages: 'x', or a name for what is invisible.
std::string describe_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ') return "a space";
    if (c == '\t') return "a tab";
    if (c == '\n') return "a line feed";
    if (c == '\r') return "a carriage return";
    if (u < 0x20 || u == 0x7F || u >= 0x80) return fmt::format("byte 0x{:02X}", u);
    return fmt::format("'{}'", c);
}

// Decodes one form-encoded field; `offset` is where s starts in the caller's text, so that the
// position in an error is the one the user sees.
Result<std::string> decode_at(std::string_view s, std::size_t offset) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
            const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return make_error(
                    fmt::format("invalid percent escape \"{}\" at position {} (expected '%' and "
                                "two hex digits)",
                                s.substr(i, 3), offset + i));
            }
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

bool is_scheme_char(char c) {
    return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

// The scheme of a URI reference (RFC 3986 §3.1), or nothing when the reference has none.
std::optional<std::string_view> scheme_of(std::string_view ref) {
    if (ref.empty() || !is_alpha(ref[0])) return std::nullopt;
    for (std::size_t i = 1; i < ref.size(); ++i) {
        if (ref[i] == ':') return ref.substr(0, i);
        if (!is_scheme_char(ref[i])) return std::nullopt;
    }
    return std::nullopt;
}

// Bytes that may not appear raw in a URL we send or sign: controls, space and DEL.
std::optional<std::size_t> find_forbidden(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u <= 0x20 || u == 0x7F) return i;
    }
    return std::nullopt;
}

// RFC 4291 §2.2 text forms: eight groups of 1-4 hex digits, one "::" standing for one or more
// zero groups, and optionally a dotted IPv4 address in place of the last two groups.
bool is_ipv4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t j = i;
        int value = 0;
        while (j < s.size() && is_digit(s[j]) && j - i < 3) value = value * 10 + (s[j++] - '0');
        if (j == i || value > 255 || (j - i > 1 && s[i] == '0')) return false;
        ++parts;
        if (j == s.size()) return parts == 4;
        if (s[j] != '.' || parts == 4) return false;
        i = j + 1;
    }
}

bool is_ipv6(std::string_view s) {
    const std::size_t gap = s.find("::");
    if (gap != std::string_view::npos && s.find("::", gap + 1) != std::string_view::npos) {
        return false;
    }
    auto count_groups = [](std::string_view part, bool ipv4_allowed, int& groups) {
        groups = 0;
        if (part.empty()) return true;
        std::size_t i = 0;
        while (true) {
            const std::size_t end = std::min(part.find(':', i), part.size());
            const std::string_view g = part.substr(i, end - i);
            if (end == part.size() && ipv4_allowed && g.find('.') != std::string_view::npos) {
                if (!is_ipv4(g)) return false;
                groups += 2;
                return true;
            }
            if (g.empty() || g.size() > 4) return false;
            for (char c : g) {
                if (hex_value(c) < 0) return false;
            }
            ++groups;
            if (end == part.size()) return true;
            i = end + 1;
        }
    };
    int groups_before = 0, groups_after = 0;
    if (gap == std::string_view::npos) {
        return count_groups(s, true, groups_before) && groups_before == 8;
    }
    return count_groups(s.substr(0, gap), false, groups_before) &&
           count_groups(s.substr(gap + 2), true, groups_after) && groups_before + groups_after <= 7;
}

bool is_host_char(char c) {  // reg-name (RFC 3986 §3.2.2) without percent-encoding or sub-delims
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 3986 §5.2.4.
std::string remove_dot_segments(std::string_view path) {
    std::string in(path);
    std::string out;
    std::size_t i = 0;  // consumed prefix of `in`
    auto rest = [&] { return std::string_view(in).substr(i); };
    auto pop_last_segment = [&] {
        const std::size_t slash = out.rfind('/');
        out.erase(slash == std::string::npos ? 0 : slash);
    };
    while (i < in.size()) {
        const std::string_view r = rest();
        if (r.starts_with("../")) {
            i += 3;
        } else if (r.starts_with("./")) {
            i += 2;
        } else if (r.starts_with("/./")) {
            i += 2;  // leaves "/"
        } else if (r == "/.") {
            in.replace(i, 2, "/");
        } else if (r.starts_with("/../")) {
            i += 3;  // leaves "/"
            pop_last_segment();
        } else if (r == "/..") {
            in.replace(i, 3, "/");
            pop_last_segment();
        } else if (r == "." || r == "..") {
            i = in.size();
        } else {
            std::size_t end = r.find('/', r.starts_with('/') ? 1 : 0);
            if (end == std::string_view::npos) end = r.size();
            out.append(r.substr(0, end));
            i += end;
        }
    }
    return out;
}

std::string with_path_and_query(std::string path, std::optional<std::string_view> query) {
    if (path.empty()) path = "/";
    if (query) {
        path += '?';
        path.append(*query);
    }
    return path;
}

}  // namespace

std::string url_encode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (is_unreserved(c)) {
            out += c;
        } else if (c == ' ') {
            out += '+';
        } else {
            const auto u = static_cast<unsigned char>(c);
            out += '%';
            out += kUpperHex[u >> 4];
            out += kUpperHex[u & 0xF];
        }
    }
    return out;
}

Result<std::string> url_decode(std::string_view s) {
    return decode_at(s, 0);
}

std::string form_encode(const Parameters& params) {
    std::string out;
    for (const auto& [name, value] : params) {
        if (!out.empty()) out += '&';
        out += url_encode(name);
        out += '=';
        out += url_encode(value);
    }
    return out;
}

Result<Parameters> form_decode(std::string_view body) {
    Parameters params;
    std::size_t start = 0;
    while (start <= body.size()) {
        std::size_t end = body.find('&', start);
        if (end == std::string_view::npos) end = body.size();
        const std::string_view field = body.substr(start, end - start);
        if (!field.empty()) {  // "a&&b" and a trailing '&' hold no field
            const std::size_t eq = field.find('=');
            auto name = decode_at(field.substr(0, eq), start);
            if (!name) return name.error();
            std::string value;
            if (eq != std::string_view::npos) {
                auto decoded = decode_at(field.substr(eq + 1), start + eq + 1);
                if (!decoded) return decoded.error();
                value = std::move(*decoded);
            }
            params.emplace_back(std::move(*name), std::move(value));
        }
        start = end + 1;
    }
    return params;
}

std::string Url::path() const {
    return target.substr(0, target.find('?'));
}

std::string Url::query() const {
    const std::size_t q = target.find('?');
    return q == std::string::npos ? std::string() : target.substr(q + 1);
}

std::string Url::port_or_default() const {
    if (!port.empty()) return port;
    return is_tls() ? "443" : "80";
}

std::string Url::to_string() const {
    std::string out = scheme + "://";
    if (host.find(':') != std::string::npos) {
        out += '[' + host + ']';
    } else {
        out += host;
    }
    if (!port.empty()) out += ':' + port;
    out += target.empty() ? "/" : target;
    return out;
}

Result<Url> parse_url(std::string_view text) {
    auto fail = [&](const std::string& why) {
        return make_error(fmt::format("\"{}\": {}", text, why));
    };
    if (auto bad = find_forbidden(text)) {
        return fail(fmt::format("{} at position {} is not allowed in a URL (percent-encode it)",
                                describe_byte(text[*bad]), *bad));
    }
    const std::size_t sep = text.find("://");
    const auto scheme = scheme_of(text);
    Url url;
    if (scheme) url.scheme = lowercase(*scheme);
    const bool known =
        url.scheme == "http" || url.scheme == "https" || url.scheme == "ws" || url.scheme == "wss";
    if (!scheme || (!known && sep == std::string_view::npos)) {
        return fail("no scheme (expected e.g. https://host/path)");
    }
    if (!known) {
        return fail(
            fmt::format("unsupported scheme \"{}\" (expected http, https, ws or wss)", *scheme));
    }
    if (sep != scheme->size()) return fail(fmt::format("expected \"//\" after \"{}:\"", *scheme));

    std::size_t pos = sep + 3;
    std::size_t auth_end = text.find_first_of("/?#", pos);
    if (auth_end == std::string_view::npos) auth_end = text.size();
    std::string_view authority = text.substr(pos, auth_end - pos);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        // The message leaves the password out: errors end up in logs.
        const std::string_view userinfo = authority.substr(0, at);
        const std::string_view user = userinfo.substr(0, userinfo.find(':'));
        const std::string shown =
            user.size() == userinfo.size() ? std::string(user) : std::string(user) + ":***";
        return make_error(fmt::format(
            "\"{}{}{}\": userinfo \"{}@\" is not supported (put credentials in a header, not in "
            "the URL)",
            text.substr(0, pos), shown, text.substr(pos + at), shown));
    }

    std::string_view port;
    bool has_port = false;
    if (authority.starts_with('[')) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("IPv6 address is missing its closing ']'");
        const std::string_view literal = authority.substr(1, close - 1);
        if (literal.find('%') != std::string_view::npos) {
            return fail(
                fmt::format("IPv6 zone identifiers are not supported (in \"[{}]\")", literal));
        }
        if (!is_ipv6(literal))
            return fail(fmt::format("\"[{}]\" is not a valid IPv6 address", literal));
        url.host = lowercase(literal);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') {
                return fail(fmt::format(
                    "unexpected \"{}\" after the IPv6 address (expected ':port')", after));
            }
            has_port = true;
            port = after.substr(1);
        }
    } else {
        const std::size_t colon = authority.find(':');
        const std::string_view host = authority.substr(0, colon);
        if (host.empty()) return fail("empty host");
        for (std::size_t i = 0; i < host.size(); ++i) {
            if (!is_host_char(host[i])) {
                return fail(fmt::format("{} at position {} is not allowed in a host name",
                                        describe_byte(host[i]), pos + i));
            }
        }
        url.host = std::string(host);
        if (colon != std::string_view::npos) {
            has_port = true;
            port = authority.substr(colon + 1);
        }
    }
    if (has_port) {
        if (port.empty())
            return fail("empty port after ':' (leave out the ':' for the default port)");
        unsigned long value = 0;
        for (char c : port) {
            if (!is_digit(c)) {
                return fail(fmt::format("port \"{}\" is not a number from 1 to 65535", port));
            }
            if (value <= 65535) value = value * 10 + static_cast<unsigned long>(c - '0');
        }
        if (value < 1 || value > 65535) {
            return fail(fmt::format("port {} is out of range (1 to 65535)", port));
        }
        url.port = std::string(port);
    }

    // The fragment is not part of a request target; Twilio never sends it.
    std::string_view rest = text.substr(auth_end);
    rest = rest.substr(0, rest.find('#'));
    url.target = rest.starts_with('/') ? std::string(rest) : "/" + std::string(rest);
    return url;
}

Result<Url> resolve_url(const Url& base, std::string_view reference) {
    if (auto bad = find_forbidden(reference)) {
        return make_error(
            fmt::format("\"{}\": {} at position {} is not allowed in a URL "
                        "(percent-encode it)",
                        reference, describe_byte(reference[*bad]), *bad));
    }
    std::string_view ref = reference.substr(0, reference.find('#'));

    // RFC 3986 §5.2.2, strict: a reference with a scheme is absolute ("http:g" is an error here,
    // not the legacy "http://a/b/c/g").
    const bool absolute = scheme_of(ref).has_value();
    if (absolute || ref.starts_with("//")) {
        auto url = absolute ? parse_url(ref) : parse_url(base.scheme + ":" + std::string(ref));
        if (!url) return url;
        const std::size_t q = url->target.find('?');
        std::optional<std::string_view> query;
        if (q != std::string::npos) query = std::string_view(url->target).substr(q + 1);
        url->target = with_path_and_query(remove_dot_segments(url->path()), query);
        return url;
    }

    const std::size_t q = ref.find('?');
    const std::string_view ref_path = ref.substr(0, q);
    std::optional<std::string_view> query;
    if (q != std::string_view::npos) query = ref.substr(q + 1);

    Url out{base.scheme, base.host, base.port, {}};
    std::string path;
    if (ref_path.empty()) {
        path = base.path();
        if (!query) {
            const std::size_t bq = base.target.find('?');
            if (bq != std::string::npos) query = std::string_view(base.target).substr(bq + 1);
        }
    } else if (ref_path.starts_with('/')) {
        path = remove_dot_segments(ref_path);
    } else {
        // §5.2.3 merge: the base path up to its last '/', then the reference.
        const std::string base_path = base.path();
        const std::size_t slash = base_path.rfind('/');
        std::string merged = slash == std::string::npos ? "/" : base_path.substr(0, slash + 1);
        merged.append(ref_path);
        path = remove_dot_segments(merged);
    }
    out.target = with_path_and_query(std::move(path), query);
    return out;
}

}  // namespace mediasim::core
