// The OpenAI-compatible engine: POST /v1/audio/transcriptions, as speech servers in the field
// (OpenAI, whisper.cpp's server, faster-whisper servers, LocalAI...) accept it.
#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "core/form.hpp"
#include "core/wav.hpp"
#include "net/tls.hpp"
#include "reference-server/speech.hpp"

namespace mediasim::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class OpenAiEngine final : public SpeechEngine {
  public:
    OpenAiEngine(OpenAiOptions o, core::Url url, std::shared_ptr<asio::ssl::context> tls)
        : opts_(std::move(o)), url_(std::move(url)), tls_(std::move(tls)) {}

    std::string name() const override { return "openai"; }

    core::Status begin(const Hints& hints) override {
        pcm_.clear();
        prompt_.clear();
        for (const auto& p : hints.phrases) prompt_ += (prompt_.empty() ? "" : ", ") + p;
        return core::Ok{};
    }

    core::Status feed(std::span<const std::int16_t> pcm) override {
        pcm_.insert(pcm_.end(), pcm.begin(), pcm.end());
        return core::Ok{};
    }

    core::Result<std::string> end() override {
        std::vector<std::uint8_t> bytes(pcm_.size() * 2);
        for (std::size_t i = 0; i < pcm_.size(); ++i) {
            const auto v = static_cast<std::uint16_t>(pcm_[i]);
            bytes[2 * i] = static_cast<std::uint8_t>(v & 0xff);
            bytes[2 * i + 1] = static_cast<std::uint8_t>(v >> 8);
        }
        pcm_.clear();
        const auto wav = core::make_wav({core::Encoding::pcm16, 16000, 1}, bytes);
        const std::string boundary = fmt::format("mediasim-{:016x}", rng_());
        std::string body;
        const auto field = [&](std::string_view name, std::string_view value) {
            body += fmt::format("--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                                boundary, name, value);
        };
        field("model", opts_.model);
        field("response_format", "json");
        if (!prompt_.empty()) field("prompt", prompt_);
        body += fmt::format(
            "--{}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n",
            boundary);
        body.append(reinterpret_cast<const char*>(wav.data()), wav.size());
        body += fmt::format("\r\n--{}--\r\n", boundary);

        http::request<http::string_body> req{http::verb::post, url_.target, 11};
        req.set(http::field::host, url_.port.empty() ? url_.host : url_.host + ":" + url_.port);
        req.set(http::field::user_agent, "mediasim-server");
        req.set(http::field::content_type, "multipart/form-data; boundary=" + boundary);
        if (!opts_.api_key.empty()) req.set(http::field::authorization, "Bearer " + opts_.api_key);
        req.body() = std::move(body);
        req.prepare_payload();

        auto res = post(req);
        if (!res) return res.error();
        if (res->result() != http::status::ok)
            return core::make_error(fmt::format("{} answered HTTP {}: {}", url_.to_string(),
                                                res->result_int(), res->body().substr(0, 200)));
        auto j = nlohmann::json::parse(res->body(), nullptr, false);
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
            return core::make_error(fmt::format("{} answered without a JSON {{\"text\": ...}}: {}",
                                                url_.to_string(), res->body().substr(0, 200)));
        return j["text"].get<std::string>();
    }

  private:
    core::Result<http::response<http::string_body>> post(http::request<http::string_body>& req) {
        asio::io_context ioc;
        beast::error_code ec;
        tcp::resolver resolver(ioc);
        const auto endpoints = resolver.resolve(url_.host, url_.port_or_default(), ec);
        if (ec)
            return core::make_error(fmt::format("cannot resolve {}: {}", url_.host, ec.message()));
        const auto timeout = std::chrono::milliseconds(opts_.timeout_ms);
        http::response<http::string_body> res;
        beast::flat_buffer buf;
        const auto fail = [&](std::string_view step) {
            return core::make_error(fmt::format("{} {}: {}", url_.to_string(), step, ec.message()));
        };
        if (!tls_) {
            beast::tcp_stream s(ioc);
            s.expires_after(timeout);
            s.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
            ioc.run();
            if (ec) return fail("connect");
            ioc.restart();
            s.expires_after(timeout);
            http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; });
            ioc.run();
            if (ec) return fail("send");
            ioc.restart();
            s.expires_after(timeout);
            http::async_read(s, buf, res, [&](beast::error_code e, std::size_t) { ec = e; });
            ioc.run();
            if (ec) return fail("read response");
            s.socket().shutdown(tcp::socket::shutdown_both, ec);
            return res;
        }
        beast::ssl_stream<beast::tcp_stream> s(ioc, *tls_);
        SSL_set_tlsext_host_name(s.native_handle(), url_.host.c_str());
        s.set_verify_callback(asio::ssl::host_name_verification(url_.host));
        auto& low = beast::get_lowest_layer(s);
        low.expires_after(timeout);
        low.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
        ioc.run();
        if (ec) return fail("connect");
        ioc.restart();
        low.expires_after(timeout);
        s.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
        ioc.run();
        if (ec) return fail("TLS handshake");
        ioc.restart();
        low.expires_after(timeout);
        http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; });
        ioc.run();
        if (ec) return fail("send");
        ioc.restart();
        low.expires_after(timeout);
        http::async_read(s, buf, res, [&](beast::error_code e, std::size_t) { ec = e; });
        ioc.run();
        if (ec) return fail("read response");
        return res;
    }

    OpenAiOptions opts_;
    core::Url url_;
    std::shared_ptr<asio::ssl::context> tls_;
    std::vector<std::int16_t> pcm_;
    std::string prompt_;
    std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

core::Result<std::unique_ptr<SpeechEngine>> make_openai_engine(const OpenAiOptions& o) {
    auto url = core::parse_url(o.url);
    if (!url || (url->scheme != "http" && url->scheme != "https"))
        return core::make_error(fmt::format("\"{}\" is not an http(s) URL (example: "
                                            "http://127.0.0.1:9000/v1/audio/transcriptions)",
                                            o.url),
                                "transcription.openai.url");
    std::shared_ptr<asio::ssl::context> tls;
    if (url->is_tls()) {
        auto ctx = net::make_client_tls({});
        if (!ctx) return ctx.error();
        tls = std::move(*ctx);
    }
    return std::unique_ptr<SpeechEngine>(new OpenAiEngine(o, std::move(*url), std::move(tls)));
}

}  // namespace mediasim::server
