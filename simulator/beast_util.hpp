// Internal to the simulator's .cpp files (heavy: Beast). Connection set-up shared by the HTTP
// client and the stream client: resolve (after --connect-to), connect, TLS with SNI and host
// name verification against the URL's host (as curl does with --connect-to).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <string>

#include "simulator/stats.hpp"

namespace mediasim::sim::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// connect refused, TLS, timeout, closed early, or other.
inline FailureClass classify(const error_code& ec) {
    if (ec == beast::error::timeout || ec == asio::error::timed_out) return FailureClass::timeout;
    if (ec.category() == asio::error::get_ssl_category() ||
        ec == asio::ssl::error::stream_truncated)
        return FailureClass::tls;
    if (ec == asio::error::connection_refused || ec == asio::error::host_not_found ||
        ec == asio::error::host_not_found_try_again || ec == asio::error::host_unreachable ||
        ec == asio::error::network_unreachable || ec == asio::error::no_data)
        return FailureClass::connect_refused;
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe || ec == beast::http::error::end_of_stream ||
        ec == beast::http::error::partial_message)
        return FailureClass::closed_early;
    return FailureClass::other;
}

// Prepares an SSL stream for a handshake with `host`: SNI and certificate name check.
template <class SslStream>
bool prepare_tls(SslStream& s, const std::string& host, bool verify, error_code& ec) {
    if (!SSL_set_tlsext_host_name(s.native_handle(), host.c_str())) {
        ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
        return false;
    }
    if (verify) s.set_verify_callback(asio::ssl::host_name_verification(host), ec);
    return !ec;
}

}  // namespace mediasim::sim::detail
