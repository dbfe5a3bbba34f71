// The seam between the load runner and one call: plays a scenario's script as one Twilio call
// against a target (a webhook, or a stream URL without TwiML) on the runner's io_context.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "simulator/runner.hpp"
#include "simulator/scenario.hpp"

namespace mediasim::sim {

struct Target {
    std::string webhook;                  // POST here and follow the TwiML, or
    std::string stream;                   // open this ws:// or wss:// stream directly
    std::string auth_token;               // signs the webhook, the upgrade and status callbacks
    std::vector<std::string> connect_to;  // HOST:PORT=HOST2:PORT2, as curl's --connect-to
    bool insecure = false;                // accept any TLS certificate
    std::string ca_file;                  // trust this CA for TLS
    std::filesystem::path record_dir;     // save each call's audio as WAV (empty: don't)
    Impairments network;                  // CLI impairments: replace the scenario's, field by field
};

// A CallStarter that plays `scenario` for every call the runner starts.
CallStarter make_scenario_starter(std::shared_ptr<const Scenario> scenario, Target target);

}  // namespace mediasim::sim
