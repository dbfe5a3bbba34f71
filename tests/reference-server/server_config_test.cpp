#include "reference-server/server_config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mediasim::server {
namespace {

namespace fs = std::filesystem;

core::Result<CommandLine> parse(std::vector<std::string> args,
                                std::optional<std::string> env = std::nullopt) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_command_line(argv, std::move(env));
}

TEST(ListenAddress, ParsesHostPortForms) {
    auto a = parse_listen_address("127.0.0.1:8080");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 8080);
    auto b = parse_listen_address("[::1]:0");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->host, "::1");
    EXPECT_EQ(b->port, 0);
    EXPECT_EQ(b->to_string(), "[::1]:0");
    auto c = parse_listen_address(":9000");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->host, "0.0.0.0");
    for (const char* bad : {"localhost", "1.2.3.4:", "1.2.3.4:70000", "::1:80", "[::1:80", "h:x"})
        EXPECT_FALSE(parse_listen_address(bad).ok()) << bad;
    EXPECT_EQ(parse_listen_address("1.2.3.4:70000").error().message,
              "\"1.2.3.4:70000\" has no valid port (0-65535) (examples: 127.0.0.1:8080, "
              "[::1]:8080, :0)");
}

TEST(CommandLine, DefaultsNeedNoConfigFile) {
    auto r = parse({});
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const auto& c = r->config;
    EXPECT_EQ(c.listen.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.flow, Flow::stream);
    EXPECT_TRUE(c.auth_token.empty());
    EXPECT_EQ(c.threads, 2);
    EXPECT_FALSE(c.tls.enabled());
    EXPECT_EQ(c.bot.kind, "echo");
}

TEST(CommandLine, FlagsWinOverEnvironmentAndFile) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("mediasim_cfg_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "server.yaml";
    std::ofstream(file) << "listen: 127.0.0.1:9001\nflow: fork\nauth_token: from-file\n"
                           "tls: {cert: c.pem, key: k.pem}\n"
                           "twiml:\n  handoff_number: \"+15005550006\"\n"
                           "  stream_parameters: {tenant: \"42\"}\nbot:\n  silence_ms: 300\n";
    auto only_file = parse({"--config", file.string()});
    ASSERT_TRUE(only_file.ok()) << only_file.error().to_string();
    EXPECT_EQ(only_file->config.listen.port, 9001);
    EXPECT_EQ(only_file->config.flow, Flow::fork);
    EXPECT_EQ(only_file->config.auth_token, "from-file");
    EXPECT_EQ(only_file->config.tls.cert_file, dir / "c.pem");  // relative to the file
    EXPECT_EQ(only_file->config.twiml.handoff_number, "+15005550006");
    EXPECT_EQ(only_file->config.twiml.stream_parameters, (core::Parameters{{"tenant", "42"}}));
    EXPECT_EQ(only_file->config.bot.silence_ms, 300);

    auto env = parse({"--config", file.string()}, "from-env");
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(env->config.auth_token, "from-env");

    auto flags = parse({"--config", file.string(), "--listen", "[::1]:0", "--flow=gather",
                        "--auth-token", "from-flag", "--public-url", "https://abc.example/"},
                       "from-env");
    ASSERT_TRUE(flags.ok()) << flags.error().to_string();
    EXPECT_EQ(flags->config.listen.host, "::1");
    EXPECT_EQ(flags->config.flow, Flow::gather);
    EXPECT_EQ(flags->config.auth_token, "from-flag");
    EXPECT_EQ(flags->config.public_url, "https://abc.example");  // trailing '/' dropped
    std::filesystem::remove_all(dir);
}

TEST(CommandLine, ErrorsNameTheFlag) {
    auto r = parse({"--flow", "loud"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().to_string(),
              "--flow: \"loud\" is not a flow (expected one of: stream, greet, fork, gather)");
    auto l = parse({"--listen", "nowhere"});
    ASSERT_FALSE(l.ok());
    EXPECT_EQ(l.error().path, "--listen");
    auto t = parse({"--tls-cert", "c.pem"});
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().path, "tls");
    auto u = parse({"--public-url", "wss://x/media"});
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().path, "public_url");
    auto m = parse({"--config", "/nonexistent/server.yaml"});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().to_string(),
              "--config: cannot read config file \"/nonexistent/server.yaml\"");
    auto h = parse({"--help"});
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(h->help);
    EXPECT_NE(h->help_text.find("--auth-token"), std::string::npos);
}

TEST(ConfigFile, ErrorsCarryFileLineColumn) {
    auto r = parse_config_yaml("listen: 127.0.0.1:80\nflowz: stream\n", "s.yaml");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().to_string(),
              "s.yaml:2:1: flowz: unknown key (expected one of: listen, data, auth_token, "
              "public_url, flow, threads, api_token, tls, twiml, bot, transcription, limits)");
    auto f = parse_config_yaml("flow: loud\n", "s.yaml");
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.error().to_string(),
              "s.yaml:1:7: flow: expected one of: stream, greet, fork, gather");
    auto n = parse_config_yaml("bot:\n  silence_ms: soon\n", "s.yaml");
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().to_string(), "s.yaml:2:15: bot.silence_ms: \"soon\" is not a number");
    auto y = parse_config_yaml("listen: [1, 2\n", "s.yaml");
    ASSERT_FALSE(y.ok());
    EXPECT_EQ(y.error().file, "s.yaml");
    EXPECT_GT(y.error().line, 0);
    EXPECT_NE(y.error().message.find("not valid YAML"), std::string::npos);
    // Every problem is reported, not only the first.
    auto two = parse_config_yaml("threads: 0\nflow: x\n", "s.yaml");
    ASSERT_FALSE(two.ok());
    EXPECT_EQ(two.error().to_string(),
              "s.yaml:2:7: flow: expected one of: stream, greet, fork, gather\n"
              "s.yaml:1:10: threads: 0 is out of range (1 to 256)")
        << two.error().message;
    auto empty = parse_config_yaml("", "s.yaml");
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->flow, Flow::stream);
}

TEST(ConfigFile, AssistantRulesTranscriptionAndHints) {
    const fs::path dir = fs::temp_directory_path() / ("mediasim_cfg_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    {
        std::ofstream g(dir / "digits.jsgf");
        g << "#JSGF V1.0;\ngrammar d;\npublic <d> = one | two ;\n";
    }
    const std::string text = R"(bot:
  kind: assistant
  fallback: "Pardon?"
  rules:
    - {keyword: balance, answer: "Forty two dollars."}
    - keyword: opening hours
      answer: Nine to five.
transcription:
  engine: pocketsphinx
  workers: 2
  partials: false
  hints:
    stream: [check my balance, opening hours]
    gather: {phrases: [sales, support]}
    fork: {jsgf: digits.jsgf}
)";
    auto c = parse_config_yaml(text, (dir / "s.yaml").string());
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    EXPECT_EQ(c->bot.kind, "assistant");
    EXPECT_EQ(c->bot.greeting, kAssistantGreeting);  // the assistant's, not the echo bot's
    EXPECT_EQ(c->bot.fallback, "Pardon?");
    ASSERT_EQ(c->bot.rules.size(), 2u);
    EXPECT_EQ(c->bot.rules[1].keyword, "opening hours");
    EXPECT_EQ(c->bot.rules[1].answer, "Nine to five.");
    EXPECT_EQ(c->transcription.engine, "pocketsphinx");
    EXPECT_EQ(c->transcription.workers, 2);
    EXPECT_FALSE(c->transcription.partials);
    EXPECT_EQ(c->transcription.hints.at("stream").phrases.size(), 2u);
    EXPECT_NE(c->transcription.hints.at("fork").jsgf.find("one | two"), std::string::npos);
    EXPECT_EQ(c->twiml.gather_hints, "sales, support");  // → <Gather hints="sales, support">
    EXPECT_TRUE(validate(*c).ok());
    fs::remove_all(dir);

    auto bad = parse_config_yaml(R"(bot:
  kind: assistant
  rules:
    - {keyword: "", answer: x}
    - {answer: y, colour: red}
transcription:
  engine: whisper
  hints:
    stream: {jsgf: missing.jsgf}
    voice: [x]
)",
                                 "s.yaml");
    ASSERT_FALSE(bad.ok());
    const auto msg = bad.error().to_string();
    EXPECT_NE(msg.find("s.yaml:4:7: bot.rules[0].keyword: a rule needs a keyword"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("s.yaml:5:19: bot.rules[1].colour: unknown key"), std::string::npos) << msg;
    EXPECT_NE(msg.find("s.yaml:7:11: transcription.engine: expected one of: none, pocketsphinx, "
                       "openai"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("s.yaml:9:20: transcription.hints.stream.jsgf: cannot read grammar file"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("s.yaml:10:5: transcription.hints.voice: unknown key"), std::string::npos)
        << msg;
    // The assistant without transcription, and openai without a URL, are refused.
    auto no_engine = parse_config_yaml("bot: {kind: assistant}\n", "s.yaml");
    ASSERT_TRUE(no_engine.ok());
    EXPECT_EQ(validate(*no_engine).error().path, "bot.kind");
    auto no_url = parse_config_yaml("transcription: {engine: openai}\n", "s.yaml");
    ASSERT_TRUE(no_url.ok());
    EXPECT_EQ(validate(*no_url).error().path, "transcription.engine");
}

TEST(ConfigFile, LimitsAreReadAndChecked) {
    auto r = parse_config_yaml(
        "limits:\n  max_streams: 3\n  idle_timeout_seconds: 5\n  send_queue_max_bytes: 65536\n"
        "  socket_send_buffer_bytes: 16384\n",
        "s.yaml");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->limits.max_streams, 3);
    EXPECT_EQ(r->limits.idle_timeout_seconds, 5);
    EXPECT_EQ(r->limits.send_queue_max_bytes, 65536u);
    EXPECT_EQ(r->limits.socket_send_buffer_bytes, 16384u);
    EXPECT_EQ(r->limits.max_message_bytes, 256u * 1024);  // untouched: the default
    auto bad =
        parse_config_yaml("limits:\n  max_streams: 0\n  send_queue_max_bytes: lots\n", "s.yaml");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().to_string(),
              "s.yaml:2:16: limits.max_streams: 0 is out of range (1 to 1000000)\n"
              "s.yaml:3:25: limits.send_queue_max_bytes: \"lots\" is not a number");
    auto flags = parse({"--max-streams", "7", "--idle-timeout", "9"});
    ASSERT_TRUE(flags.ok()) << flags.error().to_string();
    EXPECT_EQ(flags->config.limits.max_streams, 7);
    EXPECT_EQ(flags->config.limits.idle_timeout_seconds, 9);
}

}  // namespace
}  // namespace mediasim::server
