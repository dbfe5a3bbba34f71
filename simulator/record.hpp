// mediasim record's TwiML rewriting (record_cmd.cpp), public for tests.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/form.hpp"

namespace mediasim::sim {

struct TwimlRewrite {
    std::string body;                      // the TwiML with every Stream url replaced
    std::vector<std::string> stream_urls;  // the originals, resolved against the document URL
};

// Replaces the url of every <Stream> with stream_proxy_url(original) and the server's own
// origin in absolute callback URLs with proxy_http_origin; everything else stays byte for byte.
TwimlRewrite rewrite_twiml(std::string_view body, const core::Url& document_url,
                           const std::string& proxy_http_origin,
                           const std::function<std::string(const std::string&)>& stream_proxy_url);

}  // namespace mediasim::sim
