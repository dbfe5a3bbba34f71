// X-Twilio-Signature: compute and validate, as twilio-node 6.2.0's webhooks.js does (§6 of the
// spec): form POSTs (URL + sorted name/value pairs), JSON bodies (bodySHA256 in the query) and
// WebSocket upgrades (the wss URL with no parameters). HMAC-SHA1 with the auth token as key.
#pragma once

#include <string>
#include <string_view>

#include "core/form.hpp"

namespace mediasim::core {

// The signature over url + params (params sorted by name in byte order; repeated names add each
// value, values sorted). Pass no params for a GET, a JSON body or a WebSocket upgrade.
std::string compute_signature(std::string_view auth_token, std::string_view url,
                              const Parameters& params = {});

// Validates in constant time, trying the URL as twilio-node does: as given, with the port
// removed, with the default port added (:443 for https, :80 for every other scheme).
bool validate_signature(std::string_view auth_token, std::string_view signature,
                        std::string_view url, const Parameters& params = {});

// For JSON bodies: url carries bodySHA256=<hex>; checks the signature, then the body hash.
bool validate_signature_with_body(std::string_view auth_token, std::string_view signature,
                                  std::string_view url, std::string_view body);

std::string sha256_hex(std::string_view data);

}  // namespace mediasim::core
