// A plain WebSocket client (ws:// and wss://) that sends and receives whole messages as they
// are, for the recorder's upstream leg and the replayer: no Media Streams logic (that is
// stream_client.hpp). Connection set-up as the HTTP client's (--connect-to, TLS with SNI).
// Beast stays in the .cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/form.hpp"
#include "simulator/http_client.hpp"

namespace mediasim::sim {

struct WsClientEvents {
    std::function<void()> on_open;  // the upgrade succeeded
    std::function<void(std::string data, bool binary)> on_message;
    // Exactly once, last: the close code the peer sent (0: none), and an error ("connect to
    // 127.0.0.1:9: Connection refused") when the connection failed rather than closed.
    std::function<void(int code, std::string error)> on_closed;
};

class WsClient {
  public:
    virtual ~WsClient() = default;
    // Queued in order; dropped once closing.
    virtual void send(std::string data, bool binary = false) = 0;
    // Sends a close frame (after what is queued) and ends.
    virtual void close(int code = 1000) = 0;
};

// Connects on io; the client keeps itself alive until on_closed. headers go on the upgrade.
std::shared_ptr<WsClient> ws_connect(boost::asio::io_context& io,
                                     std::shared_ptr<const NetConfig> net, core::Url url,
                                     std::vector<std::pair<std::string, std::string>> headers,
                                     WsClientEvents events);

}  // namespace mediasim::sim
