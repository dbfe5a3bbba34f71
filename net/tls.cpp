#include "net/tls.hpp"

#include <fmt/format.h>

namespace mediasim::net {

core::Result<std::shared_ptr<ssl::context>> make_client_tls(const ClientTlsOptions& opts) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    if (opts.insecure) {
        ctx->set_verify_mode(ssl::verify_none, ec);
    } else {
        ctx->set_verify_mode(ssl::verify_peer, ec);
        if (!opts.ca_file.empty()) {
            ctx->load_verify_file(opts.ca_file.string(), ec);
            if (ec)
                return core::make_error(fmt::format("cannot load CA file \"{}\": {}",
                                                    opts.ca_file.string(), ec.message()),
                                        "--ca-file");
        } else {
            ctx->set_default_verify_paths(ec);
        }
    }
    return ctx;
}

core::Result<std::shared_ptr<ssl::context>> make_server_tls(const ServerTlsOptions& opts) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(opts.cert_file.string(), ec);
    if (ec)
        return core::make_error(fmt::format("cannot load certificate \"{}\": {}",
                                            opts.cert_file.string(), ec.message()),
                                "tls.cert");
    ctx->use_private_key_file(opts.key_file.string(), ssl::context::pem, ec);
    if (ec)
        return core::make_error(
            fmt::format("cannot load private key \"{}\": {}", opts.key_file.string(), ec.message()),
            "tls.key");
    return ctx;
}

}  // namespace mediasim::net
