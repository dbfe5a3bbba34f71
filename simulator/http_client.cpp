#include "simulator/http_client.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <variant>

#include "net/tls.hpp"
#include "simulator/beast_util.hpp"

namespace mediasim::sim {

using namespace detail;
namespace http = beast::http;

core::Result<std::shared_ptr<NetConfig>> make_net_config(const std::vector<std::string>& connect_to,
                                                         bool insecure,
                                                         const std::string& ca_file) {
    auto net = std::make_shared<NetConfig>();
    for (const auto& c : connect_to) {
        auto ct = parse_connect_to(c);
        if (!ct) return ct.error();
        net->connect_to.push_back(*ct);
    }
    net::ClientTlsOptions tls;
    tls.insecure = insecure;
    tls.ca_file = ca_file;
    auto ctx = net::make_client_tls(tls);
    if (!ctx) return ctx.error();
    net->tls = *ctx;
    return net;
}

core::Result<ConnectTo> parse_connect_to(std::string_view text) {
    auto bad = [&](std::string why) {
        return core::make_error(fmt::format("\"{}\": {} (example: --connect-to "
                                            "api.example.com:443=127.0.0.1:8443)",
                                            text, why),
                                "--connect-to");
    };
    auto eq = text.find('=');
    if (eq == std::string_view::npos) return bad("expected HOST:PORT=HOST2:PORT2");
    auto split = [](std::string_view hp, std::string& host, std::string& port) -> bool {
        if (!hp.empty() && hp.front() == '[') {  // [IPv6]:port
            auto close = hp.find(']');
            if (close == std::string_view::npos) return false;
            host = std::string(hp.substr(1, close - 1));
            hp.remove_prefix(close + 1);
            if (hp.empty() || hp.front() != ':') return false;
            port = std::string(hp.substr(1));
            return true;
        }
        auto colon = hp.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = std::string(hp.substr(0, colon));
        port = std::string(hp.substr(colon + 1));
        return true;
    };
    ConnectTo c;
    if (!split(text.substr(0, eq), c.from_host, c.from_port))
        return bad("the left side must be HOST:PORT (either may be empty)");
    if (!split(text.substr(eq + 1), c.to_host, c.to_port))
        return bad("the right side must be HOST2:PORT2 (either may be empty)");
    for (const std::string* p : {&c.from_port, &c.to_port})
        for (char ch : *p)
            if (ch < '0' || ch > '9') return bad(fmt::format("\"{}\" is not a port number", *p));
    return c;
}

std::pair<std::string, std::string> connect_target(const NetConfig& net, const core::Url& url) {
    std::string port = url.port_or_default();
    for (const auto& c : net.connect_to) {
        if ((c.from_host.empty() || c.from_host == url.host) &&
            (c.from_port.empty() || c.from_port == port))
            return {c.to_host.empty() ? url.host : c.to_host, c.to_port.empty() ? port : c.to_port};
    }
    return {url.host, port};
}

std::string host_header(const core::Url& url) {
    std::string h = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (!url.port.empty()) h += ":" + url.port;
    return h;
}

namespace {

using Clock = std::chrono::steady_clock;

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

    template <class... A>
    HttpSession(asio::io_context& io, std::shared_ptr<const NetConfig> net, HttpRequest req,
                std::function<void(HttpOutcome)> done, A&&... stream_args)
        : resolver_(io),
          stream_(std::forward<A>(stream_args)...),
          net_(std::move(net)),
          req_(std::move(req)),
          done_(std::move(done)) {}

    void start() {
        started_ = Clock::now();
        target_ = connect_target(*net_, req_.url);
        beast::get_lowest_layer(stream_).expires_after(net_->connect_timeout);
        resolver_.async_resolve(
            target_.first, target_.second,
            [self = this->shared_from_this()](error_code ec, tcp::resolver::results_type results) {
                self->on_resolve(ec, std::move(results));
            });
    }

  private:
    void on_resolve(error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec, fmt::format("resolve {}", target_.first));
        beast::get_lowest_layer(stream_).async_connect(
            results, [self = this->shared_from_this()](error_code e, const tcp::endpoint&) {
                self->on_connect(e);
            });
    }

    void on_connect(error_code ec) {
        if (ec) return fail(ec, fmt::format("connect to {}:{}", target_.first, target_.second));
        if constexpr (kTls) {
            if (!prepare_tls(stream_, req_.url.host, verify_, ec)) return fail(ec, "TLS set-up");
            stream_.async_handshake(asio::ssl::stream_base::client,
                                    [self = this->shared_from_this()](error_code e) {
                                        if (e) return self->fail(e, "TLS handshake");
                                        self->send();
                                    });
        } else {
            send();
        }
    }

    void send() {
        beast::get_lowest_layer(stream_).expires_at(started_ + net_->request_timeout);
        http_req_.method_string(req_.method);
        http_req_.target(req_.url.target.empty() ? "/" : req_.url.target);
        http_req_.version(11);
        http_req_.set(http::field::host, host_header(req_.url));
        http_req_.set(http::field::user_agent, "TwilioProxy/1.1");
        http_req_.set(http::field::connection, "close");
        http_req_.set(http::field::accept, "*/*");
        for (const auto& [k, v] : req_.headers) http_req_.set(k, v);
        if (!req_.content_type.empty()) {
            http_req_.set(http::field::content_type, req_.content_type);
            http_req_.body() = req_.body;
        }
        http_req_.prepare_payload();
        http::async_write(stream_, http_req_,
                          [self = this->shared_from_this()](error_code ec, std::size_t) {
                              if (ec) return self->fail(ec, "send request");
                              self->read();
                          });
    }

    void read() {
        parser_.body_limit(1024 * 1024);
        http::async_read(
            stream_, buffer_, parser_,
            [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(error_code ec) {
        if (ec) return fail(ec, "read response");
        HttpOutcome o;
        o.ok = true;
        auto& res = parser_.get();
        o.response.status = static_cast<int>(res.result_int());
        o.response.content_type = std::string(res[http::field::content_type]);
        o.response.body = std::move(res.body());
        o.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
        finish(std::move(o));
        error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    void fail(error_code ec, std::string step) {
        HttpOutcome o;
        o.failure = classify(ec);
        std::string what = ec == beast::error::timeout ? "timed out" : ec.message();
        o.error = fmt::format("{} {}: {}: {}", req_.method, req_.url.to_string(), step, what);
        o.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
        finish(std::move(o));
    }

    void finish(HttpOutcome o) {
        if (!done_) return;
        auto d = std::move(done_);
        done_ = nullptr;
        d(std::move(o));
    }

  public:
    bool verify_ = true;

  private:
    tcp::resolver resolver_;
    Stream stream_;
    std::shared_ptr<const NetConfig> net_;
    HttpRequest req_;
    std::function<void(HttpOutcome)> done_;
    std::pair<std::string, std::string> target_;
    Clock::time_point started_;
    http::request<http::string_body> http_req_;
    beast::flat_buffer buffer_;
    http::response_parser<http::string_body> parser_;
};

}  // namespace

void http_request(asio::io_context& io, std::shared_ptr<const NetConfig> net, HttpRequest request,
                  std::function<void(HttpOutcome)> done) {
    if (request.url.scheme == "https") {
        if (!net->tls) {
            HttpOutcome o;
            o.failure = FailureClass::tls;
            o.error = fmt::format("{}: no TLS context configured", request.url.to_string());
            asio::post(
                io, [done = std::move(done), o = std::move(o)]() mutable { done(std::move(o)); });
            return;
        }
        auto ctx = net->tls;
        auto s = std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(
            io, std::move(net), std::move(request), std::move(done), io, *ctx);
        s->verify_ = (ctx->native_handle() != nullptr) &&
                     SSL_CTX_get_verify_mode(ctx->native_handle()) != SSL_VERIFY_NONE;
        s->start();
    } else if (request.url.scheme == "http") {
        auto s = std::make_shared<HttpSession<beast::tcp_stream>>(
            io, std::move(net), std::move(request), std::move(done), io);
        s->start();
    } else {
        HttpOutcome o;
        o.failure = FailureClass::other;
        o.error = fmt::format("{}: the scheme must be http or https", request.url.to_string());
        asio::post(io,
                   [done = std::move(done), o = std::move(o)]() mutable { done(std::move(o)); });
    }
}

}  // namespace mediasim::sim
