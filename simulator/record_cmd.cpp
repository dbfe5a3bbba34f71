// mediasim record: a recording proxy between Twilio (or `mediasim call`) and a real server. It
// forwards every HTTP request (the voice webhook, <Gather> actions, status callbacks) to the
// server, rewrites the Stream urls of the TwiML it answers to itself, relays both directions of
// every stream unchanged, and writes a session file (session.hpp) plus each stream's audio.
#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <deque>
#include <map>
#include <regex>

#include "core/cli.hpp"
#include "core/form.hpp"
#include "core/signature.hpp"
#include "net/tls.hpp"
#include "simulator/beast_util.hpp"
#include "simulator/commands.hpp"
#include "simulator/http_client.hpp"
#include "simulator/record.hpp"
#include "simulator/session.hpp"
#include "simulator/ws_client.hpp"

namespace mediasim::sim {

using namespace detail;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Clock = std::chrono::steady_clock;

namespace {

std::string xml_unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        auto semi = s.find(';', i);
        if (semi == std::string_view::npos) {
            out += s[i];
            continue;
        }
        const auto ent = s.substr(i + 1, semi - i - 1);
        if (ent == "amp")
            out += '&';
        else if (ent == "lt")
            out += '<';
        else if (ent == "gt")
            out += '>';
        else if (ent == "quot")
            out += '"';
        else if (ent == "apos")
            out += '\'';
        else {
            out += s.substr(i, semi - i + 1);
        }
        i = semi;
    }
    return out;
}

std::string origin_of(const core::Url& u) {
    return u.scheme + "://" + host_header(u);
}

}  // namespace

TwimlRewrite rewrite_twiml(std::string_view body, const core::Url& document_url,
                           const std::string& proxy_http_origin,
                           const std::function<std::string(const std::string&)>& stream_proxy_url) {
    TwimlRewrite r;
    std::string out;
    std::size_t pos = 0;
    static const std::regex url_attr(R"(\burl\s*=\s*(["'])(.*?)\1)");
    while (true) {
        auto at = body.find("<Stream", pos);
        if (at == std::string_view::npos) break;
        const char next = at + 7 < body.size() ? body[at + 7] : '>';
        auto end = body.find('>', at);
        if (end == std::string_view::npos) break;
        if (!(next == ' ' || next == '\t' || next == '\n' || next == '\r' || next == '/' ||
              next == '>')) {
            out.append(body.substr(pos, at + 7 - pos));
            pos = at + 7;
            continue;
        }
        const std::string tag(body.substr(at, end - at));
        std::smatch m;
        if (!std::regex_search(tag, m, url_attr)) {
            out.append(body.substr(pos, end - pos));
            pos = end;
            continue;
        }
        const std::string value = xml_unescape(m[2].str());
        auto resolved = core::resolve_url(document_url, value);
        const std::string original = resolved ? resolved->to_string() : value;
        r.stream_urls.push_back(original);
        const std::string replacement = stream_proxy_url(original);
        out.append(body.substr(pos, at - pos));
        out += tag.substr(0, static_cast<std::size_t>(m.position(2)));
        out += replacement;
        out += tag.substr(static_cast<std::size_t>(m.position(2) + m.length(2)));
        pos = end;
    }
    out.append(body.substr(pos));
    // Absolute callback URLs (<Gather action>, statusCallback, <Redirect>) on the server's own
    // origin come back through the proxy too.
    const std::string up = origin_of(document_url);
    for (std::size_t i = 0; (i = out.find(up, i)) != std::string::npos;) {
        out.replace(i, up.size(), proxy_http_origin);
        i += proxy_http_origin.size();
    }
    r.body = std::move(out);
    return r;
}

namespace {

struct Recorder {
    Recorder(asio::io_context& i, core::Url up, std::string http_origin, std::string ws_origin,
             std::string token, std::shared_ptr<NetConfig> n)
        : io(i),
          upstream(std::move(up)),
          proxy_http_origin(std::move(http_origin)),
          proxy_ws_origin(std::move(ws_origin)),
          auth_token(std::move(token)),
          net(std::move(n)) {}
    asio::io_context& io;
    core::Url upstream;
    std::string proxy_http_origin;  // http://HOST:PORT (or --public-url)
    std::string proxy_ws_origin;    // ws://HOST:PORT
    std::string auth_token;
    std::shared_ptr<NetConfig> net;
    session::Writer writer;
    Clock::time_point t0 = Clock::now();
    std::uint64_t next_http = 1;
    int next_stream = 1;
    std::map<int, std::string> stream_urls;
    bool quiet = false;

    std::int64_t now_us() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    }
    void log(const std::string& s) const {
        if (!quiet) std::fprintf(stderr, "record: %s\n", s.c_str());
    }
};

// Both legs of one stream: the accepted WebSocket (Twilio's side) and the client to the server.
class WsProxy : public std::enable_shared_from_this<WsProxy> {
  public:
    WsProxy(Recorder& rec, tcp::socket socket, int index, std::string upstream_url)
        : rec_(rec), down_(std::move(socket)), index_(index), url_(std::move(upstream_url)) {}

    void start(http::request<http::string_body> req) {
        std::string sig(req["X-Twilio-Signature"]);
        auto url = core::parse_url(url_);
        if (!url) return;
        if (!rec_.auth_token.empty()) sig = core::compute_signature(rec_.auth_token, url_);
        std::vector<std::pair<std::string, std::string>> headers;
        if (!sig.empty()) headers.emplace_back("X-Twilio-Signature", sig);
        down_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        down_.read_message_max(16 * 1024 * 1024);
        down_.async_accept(req, [self = shared_from_this(), u = *url,
                                 headers = std::move(headers)](error_code ec) mutable {
            if (ec)
                return self->rec_.log(
                    fmt::format("stream {}: accept: {}", self->index_, ec.message()));
            self->on_accepted(std::move(u), std::move(headers));
        });
    }

  private:
    void on_accepted(core::Url url, std::vector<std::pair<std::string, std::string>> headers) {
        rec_.writer.ws_open(index_, rec_.now_us(), url_);
        rec_.log(fmt::format("stream {} → {}", index_, url_));
        WsClientEvents ev;
        ev.on_message = [self = shared_from_this()](std::string data, bool binary) {
            self->rec_.writer.ws_message(self->index_, self->rec_.now_us(), false, binary, data);
            self->queue_down(std::move(data), binary);
        };
        ev.on_closed = [self = shared_from_this()](int code, std::string error) {
            if (!error.empty()) self->rec_.log(fmt::format("stream {}: {}", self->index_, error));
            self->record_close(error.empty() ? "server" : "error", code);
            self->up_closed_ = true;
            self->close_down(code ? code : 1000);
        };
        up_ = ws_connect(rec_.io, rec_.net, std::move(url), std::move(headers), std::move(ev));
        read_down();
    }

    void read_down() {
        down_.async_read(buf_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
                const int code = self->down_.reason().code;
                if (ec == websocket::error::closed) {
                    self->record_close("twilio", code);
                } else if (!self->down_closing_) {
                    self->rec_.log(fmt::format("stream {}: read: {}", self->index_, ec.message()));
                    self->record_close("twilio", 1006);
                }
                if (self->up_ && !self->up_closed_) self->up_->close(code ? code : 1000);
                return;
            }
            std::string data = beast::buffers_to_string(self->buf_.data());
            self->buf_.consume(self->buf_.size());
            const bool binary = !self->down_.got_text();
            self->rec_.writer.ws_message(self->index_, self->rec_.now_us(), true, binary, data);
            if (self->up_) self->up_->send(std::move(data), binary);
            self->read_down();
        });
    }

    void queue_down(std::string data, bool binary) {
        if (down_closing_) return;
        out_.emplace_back(std::move(data), binary);
        if (!writing_) write_down();
    }

    void write_down() {
        if (out_.empty()) {
            writing_ = false;
            if (close_pending_) close_down(close_code_);
            return;
        }
        writing_ = true;
        current_ = std::move(out_.front());
        out_.pop_front();
        down_.binary(current_.second);
        down_.async_write(asio::buffer(current_.first),
                          [self = shared_from_this()](error_code ec, std::size_t) {
                              if (ec) {
                                  self->writing_ = false;
                                  return;
                              }
                              self->write_down();
                          });
    }

    void close_down(int code) {
        if (down_closing_) return;
        if (writing_) {
            close_pending_ = true;
            close_code_ = code;
            return;
        }
        down_closing_ = true;
        down_.async_close(static_cast<websocket::close_code>(code),
                          [self = shared_from_this()](error_code) {});
    }

    void record_close(const char* by, int code) {
        if (close_recorded_) return;
        close_recorded_ = true;
        rec_.writer.ws_close(index_, rec_.now_us(), by, code);
        rec_.log(fmt::format("stream {} closed by {} ({})", index_, by, code));
    }

    Recorder& rec_;
    websocket::stream<beast::tcp_stream> down_;
    int index_;
    std::string url_;
    std::shared_ptr<WsClient> up_;
    beast::flat_buffer buf_;
    std::deque<std::pair<std::string, bool>> out_;
    std::pair<std::string, bool> current_;
    bool writing_ = false, down_closing_ = false, close_pending_ = false, up_closed_ = false,
         close_recorded_ = false;
    int close_code_ = 1000;
};

class HttpConn : public std::enable_shared_from_this<HttpConn> {
  public:
    HttpConn(Recorder& rec, tcp::socket socket) : rec_(rec), stream_(std::move(socket)) {}

    void read() {
        parser_.emplace();
        parser_->body_limit(1024 * 1024);
        stream_.expires_after(std::chrono::seconds(60));
        http::async_read(stream_, buf_, *parser_,
                         [self = shared_from_this()](error_code ec, std::size_t) {
                             if (ec) return;
                             self->on_request(self->parser_->release());
                         });
    }

  private:
    void on_request(http::request<http::string_body> req) {
        if (websocket::is_upgrade(req)) return upgrade(std::move(req));
        const std::uint64_t id = rec_.next_http++;
        const std::string target(req.target());
        const std::string content_type(req[http::field::content_type]);
        rec_.writer.http_request(id, rec_.now_us(), std::string(req.method_string()), target,
                                 content_type, req.body());
        HttpRequest up;
        up.method = std::string(req.method_string());
        auto url = core::resolve_url(rec_.upstream, target);
        if (!url) return reply_error(req, id, 400, "bad request target: " + url.error().message);
        up.url = *url;
        up.content_type = content_type;
        up.body = req.body();
        for (const auto& f : req) {
            const auto name = f.name();
            if (name == http::field::host || name == http::field::connection ||
                name == http::field::content_length || name == http::field::transfer_encoding ||
                name == http::field::content_type || name == http::field::upgrade)
                continue;
            up.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        }
        if (!rec_.auth_token.empty()) {
            core::Parameters params;
            if (content_type.find("x-www-form-urlencoded") != std::string::npos) {
                if (auto p = core::form_decode(req.body())) params = std::move(*p);
            }
            const auto sig = core::compute_signature(rec_.auth_token, up.url.to_string(), params);
            std::erase_if(up.headers, [](const auto& h) {
                return beast::iequals(h.first, "X-Twilio-Signature");
            });
            up.headers.emplace_back("X-Twilio-Signature", sig);
        }
        const bool keep_alive = req.keep_alive();
        const unsigned version = req.version();
        const core::Url doc = up.url;
        http_request(rec_.io, rec_.net, std::move(up),
                     [self = shared_from_this(), id, keep_alive, version, doc](HttpOutcome o) {
                         self->on_upstream(id, keep_alive, version, doc, std::move(o));
                     });
    }

    void on_upstream(std::uint64_t id, bool keep_alive, unsigned version, const core::Url& doc,
                     HttpOutcome o) {
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(version);
        res->keep_alive(keep_alive);
        if (!o.ok) {
            rec_.writer.http_response(id, rec_.now_us(), 0, "", "", {}, o.error);
            rec_.log(o.error);
            res->result(http::status::bad_gateway);
            res->set(http::field::content_type, "text/plain");
            res->body() = "mediasim record: the server did not answer: " + o.error + "\n";
        } else {
            const auto& ct = o.response.content_type;
            std::vector<int> streams;
            std::string body = o.response.body;
            const bool xml =
                ct.find("xml") != std::string::npos || body.find("<Response") != std::string::npos;
            if (xml) {
                auto rw = rewrite_twiml(
                    body, doc, rec_.proxy_http_origin, [&](const std::string& original) {
                        const int n = rec_.next_stream++;
                        rec_.stream_urls[n] = original;
                        streams.push_back(n);
                        return fmt::format("{}/stream/{}", rec_.proxy_ws_origin, n);
                    });
                body = std::move(rw.body);
            }
            rec_.writer.http_response(id, rec_.now_us(), o.response.status, ct, o.response.body,
                                      streams, {});
            rec_.log(fmt::format(
                "{} {} → {}{}", doc.scheme == "https" ? "https" : "http", doc.target,
                o.response.status,
                streams.empty() ? ""
                                : fmt::format(" ({} stream url(s) rewritten)", streams.size())));
            res->result(static_cast<unsigned>(o.response.status));
            if (!ct.empty()) res->set(http::field::content_type, ct);
            res->body() = std::move(body);
        }
        res->prepare_payload();
        http::async_write(stream_, *res,
                          [self = shared_from_this(), res, keep_alive](error_code ec, std::size_t) {
                              if (ec) return;
                              if (keep_alive) return self->read();
                              error_code ignored;
                              self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          });
    }

    void reply_error(const http::request<http::string_body>& req, std::uint64_t id, unsigned status,
                     const std::string& why) {
        rec_.writer.http_response(id, rec_.now_us(), static_cast<int>(status), "text/plain", why,
                                  {}, why);
        auto res = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(status), req.version());
        res->set(http::field::content_type, "text/plain");
        res->body() = "mediasim record: " + why + "\n";
        res->keep_alive(false);
        res->prepare_payload();
        http::async_write(stream_, *res, [self = shared_from_this(), res](error_code, std::size_t) {
            error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    void upgrade(http::request<http::string_body> req) {
        // /stream/N: one of the urls this proxy wrote into a TwiML answer.
        const std::string target(req.target());
        int n = 0;
        std::string_view t(target);
        if (t.rfind("/stream/", 0) == 0) {
            auto digits = t.substr(8);
            if (auto q = digits.find('?'); q != std::string_view::npos)
                digits = digits.substr(0, q);
            for (char c : digits)
                n = (c >= '0' && c <= '9' && n < 1000000) ? n * 10 + (c - '0') : -1;
        }
        auto it = rec_.stream_urls.find(n);
        if (n <= 0 || it == rec_.stream_urls.end()) {
            rec_.log(fmt::format("upgrade of {} refused: not a stream url this proxy handed out",
                                 target));
            auto res = std::make_shared<http::response<http::string_body>>(http::status::not_found,
                                                                           req.version());
            res->body() = "mediasim record: unknown stream " + target + "\n";
            res->keep_alive(false);
            res->prepare_payload();
            http::async_write(
                stream_, *res, [self = shared_from_this(), res](error_code, std::size_t) {
                    error_code ignored;
                    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                });
            return;
        }
        stream_.expires_never();
        auto p = std::make_shared<WsProxy>(rec_, stream_.release_socket(), n, it->second);
        p->start(std::move(req));
    }

    Recorder& rec_;
    beast::tcp_stream stream_;
    beast::flat_buffer buf_;
    std::optional<http::request_parser<http::string_body>> parser_;
};

void accept_loop(Recorder& rec, tcp::acceptor& acceptor) {
    acceptor.async_accept([&rec, &acceptor](error_code ec, tcp::socket socket) {
        if (ec) return;  // closed on stop
        std::make_shared<HttpConn>(rec, std::move(socket))->read();
        accept_loop(rec, acceptor);
    });
}

core::Result<std::pair<std::string, std::string>> split_listen(std::string_view text) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == text.size())
        return core::make_error(fmt::format("\"{}\" is not HOST:PORT (example: --listen "
                                            "127.0.0.1:8081)",
                                            text),
                                "--listen");
    std::string host(text.substr(0, colon));
    if (host.size() > 1 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    std::string port(text.substr(colon + 1));
    for (char c : port)
        if (c < '0' || c > '9')
            return core::make_error(fmt::format("\"{}\" is not a port number", port), "--listen");
    return std::pair{host, port};
}

}  // namespace

int cmd_record(Args args) {
    std::string listen = "127.0.0.1:0", to, session_path = "session.jsonl", auth_token, public_url,
                ca_file;
    bool redact = false, insecure = false, quiet = false;
    core::ArgParser p("mediasim record",
                      "A recording proxy: point Twilio's voice webhook (or `mediasim call`) at "
                      "it; it forwards to your server, relays the streams and writes a session "
                      "file that `mediasim replay` plays back.");
    p.option("listen", &listen, "HOST:PORT", "listen here (default 127.0.0.1:0: a free port)")
        .option("to", &to, "URL",
                "your server, e.g. http://127.0.0.1:8080 (each request keeps its path)")
        .option("session", &session_path, "FILE", "write the session here (default session.jsonl)")
        .flag("redact", &redact, "drop phone numbers and custom parameters from the session")
        .option("auth-token", &auth_token, "TOKEN",
                "re-sign forwarded requests and upgrades for the server's URL (a server that "
                "checks signatures needs it: the proxy's URL is not its own)")
        .option("public-url", &public_url, "URL",
                "the proxy's public URL (behind ngrok etc.), for the rewritten Stream urls")
        .flag("insecure", &insecure, "accept any TLS certificate from the server")
        .option("ca-file", &ca_file, "FILE", "trust this CA certificate (PEM)")
        .flag("quiet", &quiet, "no log lines");
    if (auto st = p.parse(args); !st) {
        std::fprintf(stderr, "mediasim record: %s\n", st.error().to_string().c_str());
        return 2;
    }
    if (p.help_requested()) {
        std::fputs(p.help().c_str(), stdout);
        return 0;
    }
    if (to.empty()) {
        std::fprintf(stderr, "mediasim record: --to URL is required (your server)\n");
        return 2;
    }
    auto upstream = core::parse_url(to);
    if (!upstream || (upstream->scheme != "http" && upstream->scheme != "https")) {
        std::fprintf(stderr, "mediasim record: --to: \"%s\" is not an http:// or https:// URL\n",
                     to.c_str());
        return 2;
    }
    auto hp = split_listen(listen);
    if (!hp) {
        std::fprintf(stderr, "mediasim record: %s\n", hp.error().to_string().c_str());
        return 2;
    }
    if (auth_token.empty())
        if (const char* t = std::getenv("TWILIO_AUTH_TOKEN")) auth_token = t;

    asio::io_context io{1};
    tcp::acceptor acceptor(io);
    error_code ec;
    auto addr = asio::ip::make_address(hp->first, ec);
    if (ec) {
        std::fprintf(stderr, "mediasim record: --listen: \"%s\" is not an IP address\n",
                     hp->first.c_str());
        return 2;
    }
    tcp::endpoint ep(addr, static_cast<unsigned short>(std::stoi(hp->second)));
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::fprintf(stderr, "mediasim record: --listen %s: %s\n", listen.c_str(),
                     ec.message().c_str());
        return 2;
    }
    const auto port = acceptor.local_endpoint().port();
    const std::string host = addr.is_v6() ? "[" + hp->first + "]" : hp->first;

    auto net = std::make_shared<NetConfig>();
    {
        net::ClientTlsOptions o;
        o.insecure = insecure;
        o.ca_file = ca_file;
        auto tls = net::make_client_tls(o);  // for https:// servers and wss:// stream urls
        if (!tls) {
            std::fprintf(stderr, "mediasim record: %s\n", tls.error().to_string().c_str());
            return 2;
        }
        net->tls = *tls;
    }
    Recorder rec(io, *upstream, fmt::format("http://{}:{}", host, port),
                 fmt::format("ws://{}:{}", host, port), auth_token, net);
    rec.quiet = quiet;
    if (!public_url.empty()) {
        auto pu = core::parse_url(public_url);
        if (!pu || (pu->scheme != "http" && pu->scheme != "https")) {
            std::fprintf(stderr, "mediasim record: --public-url: \"%s\" is not an http(s):// URL\n",
                         public_url.c_str());
            return 2;
        }
        rec.proxy_http_origin = origin_of(*pu);
        rec.proxy_ws_origin = (pu->is_tls() ? "wss://" : "ws://") + host_header(*pu);
    }
    if (auto st = rec.writer.open(session_path, origin_of(*upstream), redact); !st) {
        std::fprintf(stderr, "mediasim record: %s\n", st.error().to_string().c_str());
        return 2;
    }
    std::printf("listening on http://%s:%u\n", host.c_str(), port);
    std::printf("recording to %s; point the voice webhook at %s%s\n", session_path.c_str(),
                rec.proxy_http_origin.c_str(), upstream->target.c_str());
    std::fflush(stdout);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](error_code e, int) {
        if (e) return;
        error_code ignored;
        acceptor.close(ignored);
        rec.writer.finish(rec.now_us());
        io.stop();
    });
    accept_loop(rec, acceptor);
    io.run();
    return 0;
}

}  // namespace mediasim::sim
