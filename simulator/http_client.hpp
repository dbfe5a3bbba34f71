// What Twilio's HTTP side does for a call: webhook and callback requests (http:// and https://),
// with `--connect-to` redirection (curl's option: URLs, Host headers and signatures stay those
// of the TwiML; only the TCP destination changes) and client TLS. Beast stays in the .cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/form.hpp"
#include "core/result.hpp"
#include "simulator/stats.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace mediasim::sim {

// --connect-to HOST:PORT=HOST2:PORT2; an empty HOST or PORT on the left matches any, an empty
// one on the right keeps the original.
struct ConnectTo {
    std::string from_host, from_port, to_host, to_port;
};
core::Result<ConnectTo> parse_connect_to(std::string_view text);

struct NetConfig {
    std::vector<ConnectTo> connect_to;
    std::shared_ptr<boost::asio::ssl::context> tls;    // for https:// and wss://
    std::chrono::milliseconds connect_timeout{10000};  // Twilio: 10 s to connect
    std::chrono::milliseconds request_timeout{15000};  // Twilio: 15 s in all
};

// The network settings of the --connect-to, --insecure and --ca-file flags: every rule parsed,
// the client TLS context made; the first bad flag is the error.
core::Result<std::shared_ptr<NetConfig>> make_net_config(const std::vector<std::string>& connect_to,
                                                         bool insecure, const std::string& ca_file);

// Where a connection to `url` really goes: (host, port) after --connect-to.
std::pair<std::string, std::string> connect_target(const NetConfig& net, const core::Url& url);
// The Host header for url: host, plus ":port" when the URL wrote one.
std::string host_header(const core::Url& url);

struct HttpRequest {
    std::string method = "POST";
    core::Url url;
    std::string content_type;  // empty: no body
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
    int status = 0;
    std::string content_type;
    std::string body;
};

struct HttpOutcome {
    bool ok = false;  // a response arrived (any status)
    FailureClass failure = FailureClass::none;
    std::string error;  // when !ok: "connect to 127.0.0.1:9: Connection refused"
    HttpResponse response;
    std::chrono::microseconds elapsed{0};
};

// Sends one request on its own connection (Connection: close) and calls done once, on io.
void http_request(boost::asio::io_context& io, std::shared_ptr<const NetConfig> net,
                  HttpRequest request, std::function<void(HttpOutcome)> done);

}  // namespace mediasim::sim
