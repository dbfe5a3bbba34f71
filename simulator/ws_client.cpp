#include "simulator/ws_client.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>

#include "simulator/beast_util.hpp"

namespace mediasim::sim {

using namespace detail;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

namespace {

template <class Ws>
class Client : public WsClient, public std::enable_shared_from_this<Client<Ws>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Ws, websocket::stream<beast::tcp_stream>>;

    template <class... A>
    Client(asio::io_context& io, std::shared_ptr<const NetConfig> net, core::Url url,
           std::vector<std::pair<std::string, std::string>> headers, WsClientEvents events,
           A&&... ws_args)
        : io_(io),
          resolver_(io),
          ws_(std::forward<A>(ws_args)...),
          net_(std::move(net)),
          url_(std::move(url)),
          headers_(std::move(headers)),
          events_(std::move(events)) {}

    void start() {
        target_ = connect_target(*net_, url_);
        beast::get_lowest_layer(ws_).expires_after(net_->connect_timeout);
        resolver_.async_resolve(
            target_.first, target_.second,
            [self = this->shared_from_this()](error_code ec, tcp::resolver::results_type results) {
                if (ec) return self->fail(ec, "resolve " + self->target_.first);
                self->on_resolve(std::move(results));
            });
    }

    void send(std::string data, bool binary) override {
        asio::post(io_, [self = this->shared_from_this(), d = std::move(data), binary]() mutable {
            if (self->closing_ || self->ended_) return;
            self->queue_.push_back({std::move(d), binary});
            if (self->open_ && !self->writing_) self->write_next();
        });
    }

    void close(int code) override {
        asio::post(io_, [self = this->shared_from_this(), code] {
            if (self->closing_ || self->ended_) return;
            self->closing_ = true;
            self->close_code_ = code;
            if (!self->open_) {
                // Not connected yet: give up the attempt.
                error_code ignored;
                beast::get_lowest_layer(self->ws_).socket().close(ignored);
                return;
            }
            if (!self->writing_) self->do_close();
        });
    }

    bool verify_ = true;

  private:
    void on_resolve(tcp::resolver::results_type results) {
        beast::get_lowest_layer(ws_).async_connect(
            results, [self = this->shared_from_this()](error_code ec, const tcp::endpoint&) {
                if (ec)
                    return self->fail(ec, fmt::format("connect to {}:{}", self->target_.first,
                                                      self->target_.second));
                self->on_connect();
            });
    }

    void on_connect() {
        error_code ec;
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
        if constexpr (kTls) {
            if (!prepare_tls(ws_.next_layer(), url_.host, verify_, ec))
                return fail(ec, "TLS set-up");
            ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                             [self = this->shared_from_this()](error_code e) {
                                                 if (e) return self->fail(e, "TLS handshake");
                                                 self->upgrade();
                                             });
        } else {
            upgrade();
        }
    }

    void upgrade() {
        ws_.set_option(
            websocket::stream_base::decorator([h = headers_](websocket::request_type& req) {
                req.set(beast::http::field::user_agent, "Twilio.TmeWs/1.0");
                for (const auto& [k, v] : h) req.set(k, v);
            }));
        ws_.async_handshake(
            res_, host_header(url_), url_.target.empty() ? "/" : url_.target,
            [self = this->shared_from_this()](error_code ec) {
                if (ec == websocket::error::upgrade_declined)
                    return self->end(0,
                                     fmt::format("WebSocket upgrade of {} answered {} "
                                                 "instead of 101",
                                                 self->url_.to_string(), self->res_.result_int()));
                if (ec) return self->fail(ec, "WebSocket upgrade");
                self->on_open();
            });
    }

    void on_open() {
        beast::get_lowest_layer(ws_).expires_never();
        websocket::stream_base::timeout opt{};
        opt.handshake_timeout = 5s;
        opt.idle_timeout = websocket::stream_base::none();
        opt.keep_alive_pings = false;
        ws_.set_option(opt);
        ws_.read_message_max(16 * 1024 * 1024);
        open_ = true;
        if (events_.on_open) events_.on_open();
        read();
        if (closing_) return do_close();
        if (!queue_.empty() && !writing_) write_next();
    }

    void read() {
        ws_.async_read(buf_, [self = this->shared_from_this()](error_code ec, std::size_t) {
            if (ec == websocket::error::closed) return self->end(self->ws_.reason().code, {});
            if (ec) {
                if (self->closing_) return self->end(self->ws_.reason().code, {});
                return self->fail(ec, "read");
            }
            std::string data = beast::buffers_to_string(self->buf_.data());
            self->buf_.consume(self->buf_.size());
            if (self->events_.on_message)
                self->events_.on_message(std::move(data), !self->ws_.got_text());
            if (!self->ended_) self->read();
        });
    }

    void write_next() {
        if (queue_.empty()) {
            writing_ = false;
            if (closing_) do_close();
            return;
        }
        writing_ = true;
        current_ = std::move(queue_.front());
        queue_.pop_front();
        ws_.binary(current_.second);
        ws_.async_write(asio::buffer(current_.first),
                        [self = this->shared_from_this()](error_code ec, std::size_t) {
                            if (ec) {
                                self->writing_ = false;
                                if (self->closing_) return;
                                return self->fail(ec, "write");
                            }
                            self->write_next();
                        });
    }

    void do_close() {
        if (close_sent_) return;
        close_sent_ = true;
        ws_.async_close(static_cast<websocket::close_code>(close_code_),
                        [self = this->shared_from_this()](error_code) {
                            // The read loop ends with websocket::error::closed (or an error).
                            self->end(self->ws_.reason().code, {});
                        });
    }

    void fail(error_code ec, const std::string& step) {
        end(0, fmt::format("{} {}: {}", url_.to_string(), step,
                           ec == beast::error::timeout ? "timed out" : ec.message()));
    }

    void end(int code, std::string error) {
        if (ended_) return;
        ended_ = true;
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        if (events_.on_closed) {
            auto cb = std::move(events_.on_closed);
            events_ = {};
            cb(code, std::move(error));
        }
    }

    asio::io_context& io_;
    tcp::resolver resolver_;
    Ws ws_;
    std::shared_ptr<const NetConfig> net_;
    core::Url url_;
    std::vector<std::pair<std::string, std::string>> headers_;
    WsClientEvents events_;
    std::pair<std::string, std::string> target_;
    websocket::response_type res_;
    beast::flat_buffer buf_;
    std::deque<std::pair<std::string, bool>> queue_;
    std::pair<std::string, bool> current_;
    bool open_ = false, writing_ = false, closing_ = false, close_sent_ = false, ended_ = false;
    int close_code_ = 1000;
};

}  // namespace

std::shared_ptr<WsClient> ws_connect(asio::io_context& io, std::shared_ptr<const NetConfig> net,
                                     core::Url url,
                                     std::vector<std::pair<std::string, std::string>> headers,
                                     WsClientEvents events) {
    if (url.is_tls()) {
        using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
        auto ctx = net->tls;
        if (!ctx) {
            auto copy = std::make_shared<NetConfig>(*net);
            ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
            ctx->set_default_verify_paths();
            ctx->set_verify_mode(asio::ssl::verify_peer);
            copy->tls = ctx;
            net = copy;
        }
        auto c = std::make_shared<Client<Ws>>(io, net, std::move(url), std::move(headers),
                                              std::move(events), io, *ctx);
        c->verify_ = SSL_CTX_get_verify_mode(ctx->native_handle()) != SSL_VERIFY_NONE;
        c->start();
        return c;
    }
    using Ws = websocket::stream<beast::tcp_stream>;
    auto c = std::make_shared<Client<Ws>>(io, std::move(net), std::move(url), std::move(headers),
                                          std::move(events), io);
    c->start();
    return c;
}

}  // namespace mediasim::sim
