#include "reference-server/server_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/cli.hpp"
#include "core/yaml_check.hpp"

namespace mediasim::server {

const char* to_string(Flow f) {
    switch (f) {
        case Flow::stream:
            return "stream";
        case Flow::greet:
            return "greet";
        case Flow::fork:
            return "fork";
        case Flow::gather:
            return "gather";
    }
    return "stream";
}

std::optional<Flow> parse_flow(std::string_view name) {
    for (Flow f : {Flow::stream, Flow::greet, Flow::fork, Flow::gather})
        if (name == to_string(f)) return f;
    return std::nullopt;
}

std::string ListenAddress::to_string() const {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

core::Result<ListenAddress> parse_listen_address(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return core::make_error(
            fmt::format("\"{}\" {} (examples: 127.0.0.1:8080, [::1]:8080, :0)", text, why));
    };
    ListenAddress out;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return bad("has '[' without ']'");
        out.host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad("has no :PORT");
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("has no :PORT");
        if (text.substr(0, colon).find(':') != std::string_view::npos)
            return bad("is an IPv6 address without brackets");
        out.host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
    }
    if (out.host.empty()) out.host = "0.0.0.0";
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
        return bad("has no valid port (0-65535)");
    out.port = static_cast<std::uint16_t>(value);
    return out;
}

namespace {
using Checker = core::YamlChecker;
}  // namespace

core::Result<ServerConfig> parse_config_yaml(std::string_view text, std::string_view file_name,
                                             ServerConfig base) {
    auto loaded = core::yaml_load(text, file_name);
    if (!loaded) return loaded.error();
    const YAML::Node root = *loaded;
    if (root.IsNull()) return base;  // an empty file changes nothing
    Checker c{std::string(file_name)};
    ServerConfig cfg = std::move(base);
    if (!c.keys(root, "",
                {"listen", "data", "auth_token", "public_url", "flow", "threads", "api_token",
                 "tls", "twiml", "bot", "transcription", "limits"}))
        return c.result().error();

    if (const auto n = root["listen"]) {
        if (!n.IsScalar()) {
            c.error(n, "listen", "expected HOST:PORT");
        } else if (auto l = parse_listen_address(n.Scalar())) {
            cfg.listen = *l;
        } else {
            c.error(n, "listen", l.error().message);
        }
    }
    std::string data = cfg.data_dir.string();
    c.string(root, "", "data", data);
    cfg.data_dir = data;
    c.string(root, "", "auth_token", cfg.auth_token);
    c.string(root, "", "public_url", cfg.public_url);
    c.string(root, "", "api_token", cfg.api_token);
    if (const auto n = root["flow"]) {
        const auto f = n.IsScalar() ? parse_flow(n.Scalar()) : std::nullopt;
        if (!f)
            c.error(n, "flow", "expected one of: stream, greet, fork, gather");
        else
            cfg.flow = *f;
    }
    c.number(root, "", "threads", cfg.threads, 1, 256);

    if (const auto tls = root["tls"]; tls && c.keys(tls, "tls", {"cert", "key"})) {
        std::string cert = cfg.tls.cert_file.string(), key = cfg.tls.key_file.string();
        c.string(tls, "tls", "cert", cert);
        c.string(tls, "tls", "key", key);
        // Relative paths are relative to the config file, so a config travels with its certs.
        const auto dir = std::filesystem::path(file_name).parent_path();
        const auto resolve = [&](const std::string& p) {
            std::filesystem::path fp = p;
            return (p.empty() || fp.is_absolute()) ? fp : dir / fp;
        };
        cfg.tls.cert_file = resolve(cert);
        cfg.tls.key_file = resolve(key);
    }

    if (const auto t = root["twiml"];
        t && c.keys(t, "twiml",
                    {"greeting", "gather_prompt", "gather_reply", "handoff_number",
                     "fork_pause_seconds", "stream_parameters"})) {
        c.string(t, "twiml", "greeting", cfg.twiml.greeting);
        c.string(t, "twiml", "gather_prompt", cfg.twiml.gather_prompt);
        c.string(t, "twiml", "gather_reply", cfg.twiml.gather_reply);
        c.string(t, "twiml", "handoff_number", cfg.twiml.handoff_number);
        c.number(t, "twiml", "fork_pause_seconds", cfg.twiml.fork_pause_seconds, 1, 14400);
        if (const auto p = t["stream_parameters"]) {
            if (!p.IsMap()) {
                c.error(p, "twiml.stream_parameters", "expected a map of name: value");
            } else {
                for (const auto& kv : p) {
                    if (!kv.second.IsScalar()) {
                        c.error(kv.second, "twiml.stream_parameters." + kv.first.Scalar(),
                                "expected a string");
                        continue;
                    }
                    cfg.twiml.stream_parameters.emplace_back(kv.first.Scalar(), kv.second.Scalar());
                }
            }
        }
    }

    if (const auto b = root["bot"];
        b && c.keys(b, "bot",
                    {"kind", "vad_threshold_dbfs", "vad_start_ms", "silence_ms", "max_utterance_ms",
                     "greeting", "fallback", "rules"})) {
        if (const auto k = b["kind"]) {
            if (!k.IsScalar() ||
                (k.Scalar() != "echo" && k.Scalar() != "none" && k.Scalar() != "assistant"))
                c.error(k, "bot.kind", "expected one of: echo, assistant, none");
            else
                cfg.bot.kind = k.Scalar();
        }
        c.number(b, "bot", "vad_threshold_dbfs", cfg.bot.vad_threshold_dbfs, -96.0, 0.0);
        c.number(b, "bot", "vad_start_ms", cfg.bot.vad_start_ms, 20, 5000);
        c.number(b, "bot", "silence_ms", cfg.bot.silence_ms, 20, 10000);
        c.number(b, "bot", "max_utterance_ms", cfg.bot.max_utterance_ms, 100, 600000);
        if (b["greeting"])
            c.string(b, "bot", "greeting", cfg.bot.greeting);
        else if (cfg.bot.kind == "assistant")
            cfg.bot.greeting = kAssistantGreeting;
        c.string(b, "bot", "fallback", cfg.bot.fallback);
        if (const auto rules = b["rules"]) {
            if (!rules.IsSequence()) {
                c.error(rules, "bot.rules", "expected a list of {keyword: ..., answer: ...}");
            } else {
                cfg.bot.rules.clear();
                for (std::size_t i = 0; i < rules.size(); ++i) {
                    const auto r = rules[i];
                    const auto where = fmt::format("bot.rules[{}]", i);
                    if (!c.keys(r, where, {"keyword", "answer"})) continue;
                    Rule rule;
                    c.string(r, where, "keyword", rule.keyword);
                    c.string(r, where, "answer", rule.answer);
                    if (!r["keyword"] || normalize_words(rule.keyword).empty())
                        c.error(r, where + ".keyword", "a rule needs a keyword (a word or phrase)");
                    if (!r["answer"] || rule.answer.empty())
                        c.error(r, where + ".answer", "a rule needs an answer");
                    cfg.bot.rules.push_back(std::move(rule));
                }
            }
        }
    }

    if (const auto t = root["transcription"];
        t && c.keys(t, "transcription",
                    {"engine", "workers", "partials", "model_dir", "openai", "hints"})) {
        if (const auto e = t["engine"]) {
            if (!e.IsScalar() ||
                (e.Scalar() != "none" && e.Scalar() != "pocketsphinx" && e.Scalar() != "openai"))
                c.error(e, "transcription.engine", "expected one of: none, pocketsphinx, openai");
            else
                cfg.transcription.engine = e.Scalar();
        }
        c.number(t, "transcription", "workers", cfg.transcription.workers, 1, 64);
        if (const auto p = t["partials"]) {
            if (!p.IsScalar() || (p.Scalar() != "true" && p.Scalar() != "false"))
                c.error(p, "transcription.partials", "expected true or false");
            else
                cfg.transcription.partials = p.Scalar() == "true";
        }
        const auto dir = std::filesystem::path(file_name).parent_path();
        const auto resolve = [&](const std::string& p) {
            std::filesystem::path fp = p;
            return (p.empty() || fp.is_absolute()) ? fp : dir / fp;
        };
        std::string model_dir = cfg.transcription.model_dir;
        c.string(t, "transcription", "model_dir", model_dir);
        if (t["model_dir"]) cfg.transcription.model_dir = resolve(model_dir).string();
        if (const auto o = t["openai"];
            o && c.keys(o, "transcription.openai", {"url", "api_key", "model"})) {
            c.string(o, "transcription.openai", "url", cfg.transcription.openai.url);
            c.string(o, "transcription.openai", "api_key", cfg.transcription.openai.api_key);
            c.string(o, "transcription.openai", "model", cfg.transcription.openai.model);
            if (const auto u = o["url"]) {
                const std::string_view url = cfg.transcription.openai.url;
                if (!url.starts_with("http://") && !url.starts_with("https://"))
                    c.error(u, "transcription.openai.url",
                            "expected an http(s) URL, e.g. "
                            "http://127.0.0.1:9000/v1/audio/transcriptions");
            }
        }
        if (const auto h = t["hints"];
            h && c.keys(h, "transcription.hints", {"stream", "greet", "fork", "gather"})) {
            for (const auto& kv : h) {
                const auto flow = kv.first.Scalar();
                const auto where = "transcription.hints." + flow;
                const auto& v = kv.second;
                Hints hints;
                std::optional<YAML::Node> phrases;
                if (v.IsSequence()) {
                    phrases = v;
                } else if (c.keys(v, where, {"phrases", "jsgf"})) {
                    if (const auto ph = v["phrases"]) phrases = ph;
                    if (const auto g = v["jsgf"]) {
                        std::string file;
                        c.string(v, where, "jsgf", file);
                        std::ifstream in(resolve(file), std::ios::binary);
                        if (!in) {
                            c.error(g, where + ".jsgf",
                                    fmt::format("cannot read grammar file \"{}\"",
                                                resolve(file).string()));
                        } else {
                            std::ostringstream ss;
                            ss << in.rdbuf();
                            hints.jsgf = ss.str();
                            if (hints.jsgf.find("#JSGF") == std::string::npos)
                                c.error(g, where + ".jsgf",
                                        fmt::format("\"{}\" is not a JSGF grammar (no #JSGF "
                                                    "header)",
                                                    file));
                        }
                    }
                }
                if (phrases) {
                    if (!phrases->IsSequence()) {
                        c.error(*phrases, where, "expected a list of phrases");
                    } else {
                        for (const auto& p : *phrases) {
                            if (!p.IsScalar() || normalize_words(p.Scalar()).empty())
                                c.error(p, where, "expected a phrase (words)");
                            else
                                hints.phrases.push_back(p.Scalar());
                        }
                    }
                }
                if (flow == "gather") {
                    cfg.twiml.gather_hints.clear();
                    for (const auto& ph : hints.phrases)
                        cfg.twiml.gather_hints += (cfg.twiml.gather_hints.empty() ? "" : ", ") + ph;
                }
                cfg.transcription.hints[flow] = std::move(hints);
            }
        }
    }

    if (const auto l = root["limits"];
        l &&
        c.keys(l, "limits",
               {"max_streams", "max_message_bytes", "idle_timeout_seconds", "http_timeout_seconds",
                "send_queue_max_bytes", "write_timeout_seconds", "socket_send_buffer_bytes"})) {
        auto& lim = cfg.limits;
        c.number(l, "limits", "max_streams", lim.max_streams, 1, 1'000'000);
        c.number(l, "limits", "max_message_bytes", lim.max_message_bytes, std::size_t{1024},
                 std::size_t{64} << 20);
        c.number(l, "limits", "idle_timeout_seconds", lim.idle_timeout_seconds, 1, 86400);
        c.number(l, "limits", "http_timeout_seconds", lim.http_timeout_seconds, 1, 3600);
        c.number(l, "limits", "send_queue_max_bytes", lim.send_queue_max_bytes, std::size_t{4096},
                 std::size_t{1} << 30);
        c.number(l, "limits", "write_timeout_seconds", lim.write_timeout_seconds, 1, 3600);
        c.number(l, "limits", "socket_send_buffer_bytes", lim.socket_send_buffer_bytes,
                 std::size_t{0}, std::size_t{64} << 20);
    }

    if (auto st = c.result(); !st) return st.error();
    return cfg;
}

core::Result<ServerConfig> load_config_file(const std::filesystem::path& file, ServerConfig base) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return core::make_error(fmt::format("cannot read config file \"{}\"", file.string()),
                                "--config");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_config_yaml(ss.str(), file.string(), std::move(base));
}

core::Status validate(const ServerConfig& config) {
    if (config.tls.cert_file.empty() != config.tls.key_file.empty())
        return core::make_error("a TLS certificate needs its key, and a key its certificate",
                                "tls");
    if (!config.public_url.empty()) {
        const std::string_view u = config.public_url;
        const bool http = u.starts_with("http://") || u.starts_with("https://");
        const auto after = u.find("://");
        const auto rest = after == std::string_view::npos ? u : u.substr(after + 3);
        if (!http || rest.empty() || rest.find('/') != std::string_view::npos)
            return core::make_error(
                fmt::format("\"{}\" is not a scheme and host (example: https://abc.ngrok.app)",
                            config.public_url),
                "public_url");
    }
    if (config.data_dir.empty()) return core::make_error("must not be empty", "data");
    if (config.threads < 1) return core::make_error("must be at least 1", "threads");
    if (config.bot.kind == "assistant" && !config.transcription.enabled())
        return core::make_error(
            "the assistant answers what the caller said: set transcription.engine "
            "(pocketsphinx or openai)",
            "bot.kind");
    if (config.transcription.engine == "openai" && config.transcription.openai.url.empty())
        return core::make_error("the openai engine needs transcription.openai.url",
                                "transcription.engine");
    return core::Ok{};
}

core::Result<CommandLine> parse_command_line(std::span<char* const> args,
                                             std::optional<std::string> env_auth_token) {
    std::string listen, data, auth_token, config_file, public_url, flow, tls_cert, tls_key, handoff,
        api_token, greeting, bot, transcribe, fault;
    int threads = 0, max_streams = 0, idle_timeout = 0;
    core::ArgParser p("mediasim-server",
                      "The Mediasim reference server: TwiML webhooks and the Media Streams "
                      "endpoint, with recording.");
    p.option("listen", &listen, "HOST:PORT",
             "address to listen on (default 127.0.0.1:8080; port 0 picks a free port)")
        .option("data", &data, "DIR",
                "where recordings and the database go (default "
                "./mediasim-data)")
        .option("auth-token", &auth_token, "TOKEN",
                "Twilio auth token: requests must carry a valid X-Twilio-Signature "
                "(also: TWILIO_AUTH_TOKEN)")
        .option("config", &config_file, "FILE", "YAML configuration file")
        .option("public-url", &public_url, "URL",
                "scheme and host the outside reaches this server at, e.g. "
                "https://abc.ngrok.app (default: from the Host header)")
        .option("flow", &flow, "NAME", "TwiML flow: stream (default), greet, fork, gather")
        .option("threads", &threads, "N", "network threads (default 2)", 1)
        .option("tls-cert", &tls_cert, "FILE", "PEM certificate chain: serve https/wss too")
        .option("tls-key", &tls_key, "FILE", "PEM private key for --tls-cert")
        .option("handoff-number", &handoff, "E164", "gather flow: <Dial> this number after")
        .option("api-token", &api_token, "TOKEN", "bearer token guarding the calls API")
        .option("greeting", &greeting, "TEXT",
                "what the bot says when a bidirectional stream starts (\"\": nothing)")
        .option("bot", &bot, "KIND",
                "bot on bidirectional streams: echo (default), assistant, none")
        .option("transcribe", &transcribe, "ENGINE",
                "transcribe callers: none (default), pocketsphinx, openai")
        .option("max-streams", &max_streams, "N",
                "open media streams at most; more upgrades get 503 (default 5000)", 1)
        .option("idle-timeout", &idle_timeout, "SECONDS",
                "close a stream that sends nothing this long (default 60)", 1)
        .option("fault", &fault, "NAME",
                "testing aid: break the protocol in one way (see reference-server/README.md; "
                "mediasim check must catch it)");
    if (auto st = p.parse(args); !st) return st.error();
    CommandLine out;
    if (p.help_requested()) {
        out.help = true;
        out.help_text = p.help();
        return out;
    }
    ServerConfig cfg;
    if (p.given("config")) {
        auto loaded = load_config_file(config_file, cfg);
        if (!loaded) return loaded.error();
        cfg = std::move(*loaded);
    }
    if (env_auth_token && !env_auth_token->empty()) cfg.auth_token = *env_auth_token;
    if (p.given("listen")) {
        auto l = parse_listen_address(listen);
        if (!l) return core::make_error(l.error().message, "--listen");
        cfg.listen = *l;
    }
    if (p.given("data")) cfg.data_dir = data;
    if (p.given("auth-token")) cfg.auth_token = auth_token;
    if (p.given("public-url")) cfg.public_url = public_url;
    if (p.given("flow")) {
        auto f = parse_flow(flow);
        if (!f)
            return core::make_error(
                fmt::format("\"{}\" is not a flow (expected one of: stream, greet, fork, gather)",
                            flow),
                "--flow");
        cfg.flow = *f;
    }
    if (p.given("threads")) cfg.threads = threads;
    if (p.given("tls-cert")) cfg.tls.cert_file = tls_cert;
    if (p.given("tls-key")) cfg.tls.key_file = tls_key;
    if (p.given("handoff-number")) cfg.twiml.handoff_number = handoff;
    if (p.given("api-token")) cfg.api_token = api_token;
    if (p.given("bot")) {
        if (bot != "echo" && bot != "assistant" && bot != "none")
            return core::make_error(
                fmt::format("\"{}\" is not a bot (expected one of: echo, assistant, none)", bot),
                "--bot");
        if (bot == "assistant" && cfg.bot.kind != "assistant" &&
            cfg.bot.greeting == BotOptions{}.greeting)
            cfg.bot.greeting = kAssistantGreeting;
        cfg.bot.kind = bot;
    }
    if (p.given("transcribe")) {
        if (transcribe != "none" && transcribe != "pocketsphinx" && transcribe != "openai")
            return core::make_error(fmt::format("\"{}\" is not an engine (expected one of: none, "
                                                "pocketsphinx, openai)",
                                                transcribe),
                                    "--transcribe");
        cfg.transcription.engine = transcribe;
    }
    if (p.given("greeting")) cfg.bot.greeting = greeting;
    if (p.given("max-streams")) cfg.limits.max_streams = max_streams;
    if (p.given("idle-timeout")) cfg.limits.idle_timeout_seconds = idle_timeout;
    if (p.given("fault")) {
        auto f = parse_fault(fault);
        if (!f) {
            std::string names;
            for (const auto& k : all_faults())
                names += std::string(names.empty() ? "" : ", ") + k.name;
            return core::make_error(
                fmt::format("\"{}\" is not a fault (expected one of: {})", fault, names),
                "--fault");
        }
        cfg.fault = *f;
        if (cfg.fault == Fault::slow_reply) cfg.bot.silence_ms = 2500;
    }
    while (cfg.public_url.ends_with('/')) cfg.public_url.pop_back();
    if (auto st = validate(cfg); !st) return st.error();
    out.config = std::move(cfg);
    return out;
}

}  // namespace mediasim::server
