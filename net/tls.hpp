// TLS contexts for the simulator (client) and the reference server.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <string>

#include "core/result.hpp"

namespace mediasim::net {

namespace ssl = boost::asio::ssl;

struct ClientTlsOptions {
    bool insecure = false;          // --insecure: accept any certificate
    std::filesystem::path ca_file;  // --ca-file: trust this CA (PEM); empty: system store
};
core::Result<std::shared_ptr<ssl::context>> make_client_tls(const ClientTlsOptions& opts);

struct ServerTlsOptions {
    std::filesystem::path cert_file;  // PEM chain
    std::filesystem::path key_file;   // PEM private key
};
core::Result<std::shared_ptr<ssl::context>> make_server_tls(const ServerTlsOptions& opts);

}  // namespace mediasim::net
