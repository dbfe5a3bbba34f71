// application/x-www-form-urlencoded bodies and query strings, and URL splitting. Both the
// simulator (which posts webhooks) and the server (which reads them) use these.
#pragma once

#include <string>
#include <string_view>

#include "core/params.hpp"
#include "core/result.hpp"

namespace mediasim::core {

std::string url_encode(std::string_view s);  // form encoding: space → '+', RFC 3986 unreserved kept
Result<std::string> url_decode(std::string_view s);  // '+' → space; bad %XX is an error
std::string form_encode(const Parameters& params);
Result<Parameters> form_decode(std::string_view body);

struct Url {
    std::string scheme;  // "http", "https", "ws", "wss"
    std::string host;    // without brackets for IPv6
    std::string port;    // as written; empty when none was written
    std::string target;  // path + "?" + query, "/" at least
    std::string path() const;
    std::string query() const;            // without '?'
    std::string port_or_default() const;  // written port, or 80/443 by scheme
    bool is_tls() const { return scheme == "https" || scheme == "wss"; }
    std::string to_string() const;  // scheme://host[:port]target
};
Result<Url> parse_url(std::string_view text);
// Resolves a relative reference (e.g. "/media" or "next") against a base URL.
Result<Url> resolve_url(const Url& base, std::string_view reference);

}  // namespace mediasim::core
