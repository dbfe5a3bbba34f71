// deploy/k8s run as its pods would, on this machine: bundle.sh makes the bundle (the
// Dockerfile-free way in), the shard Job's script runs once per completion index with the
// $(VARIABLES) Kubernetes would expand and the volumes as local directories, against the real
// mediasim-server; then the merge Job's script. The merge has every call of the run once.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "k8s_manifests.hpp"
#include "simulator/subprocess.hpp"
#include "tests/support/e2e.hpp"

namespace {

namespace fs = std::filesystem;
using mediasim::sim::Subprocess;
using mediasim::test::bin;
using mediasim::test::slurp;
using namespace std::chrono_literals;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
}

class K8sE2e : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / fmt::format("mediasim_k8s_e2e_{}", ::getpid());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "scenario");
        fs::create_directories(dir_ / "data");
        server_ = std::make_unique<mediasim::test::ReferenceServer>(dir_);
        ASSERT_TRUE(server_->ok()) << server_->error();
        base_ = server_->base();
    }
    void TearDown() override {
        if (server_) {
            EXPECT_EQ(server_->stop(), 0) << server_->tail(20);
        }
        server_.reset();
        fs::remove_all(dir_);
    }

    // A manifest's script with the volumes at local paths.
    std::string local(std::string script) const {
        replace_all(script, "/data/", (dir_ / "data").string() + "/");
        replace_all(script, "/scenario/", (dir_ / "scenario").string() + "/");
        return script;
    }

    fs::path dir_;
    std::unique_ptr<mediasim::test::ReferenceServer> server_;
    std::string base_;
};

TEST_F(K8sE2e, TheShardsAndTheMergeRunAsThePodsWould) {
    // The ConfigMap: the scenario and its WAV side by side. Four 2 s calls.
    fs::copy_file(MEDIASIM_SOURCE_DIR "/scenarios/audio/hello.wav",
                  dir_ / "scenario" / "hello.wav");
    std::ofstream(dir_ / "scenario" / "scenario.yaml") << "name: k8s-e2e\n"
                                                          "stream: {mode: connect}\n"
                                                          "steps:\n"
                                                          "  - speak: {audio: hello.wav}\n"
                                                          "  - wait: {for: audio, timeout: 10s}\n"
                                                          "  - hangup\n"
                                                          "load: {calls: 4, concurrency: 4}\n";

    // The bundle onto the "volume", as README.md's kubectl cp and tar would leave it.
    auto b = Subprocess::spawn(
        {"bash", MEDIASIM_SOURCE_DIR "/deploy/k8s/bundle.sh", "-b", MEDIASIM_BINARY_DIR,
         (dir_ / "bundle").string(), (dir_ / "scenario" / "scenario.yaml").string()},
        dir_ / "bundle.log");
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->wait(120s), 0) << slurp(dir_ / "bundle.log");
    ASSERT_TRUE(fs::exists(dir_ / "bundle" / "mediasim-bundle.tar.gz"));
    auto x =
        Subprocess::spawn({"tar", "-xzf", (dir_ / "bundle" / "mediasim-bundle.tar.gz").string(),
                           "-C", (dir_ / "data").string()},
                          dir_ / "tar.log");
    ASSERT_TRUE(x.ok());
    ASSERT_EQ(x->wait(60s), 0) << slurp(dir_ / "tar.log");
    const fs::path bundle = dir_ / "data" / "mediasim";
    ASSERT_TRUE(fs::exists(bundle / "bin" / "mediasim.bin"));
    // With the wrapper's LD_LIBRARY_PATH every library but glibc's comes from the bundle, so a
    // stock debian:12 image needs nothing installed.
    auto l = Subprocess::spawn(
        {"/bin/sh", "-c",
         fmt::format("LD_LIBRARY_PATH={0}/lib ldd {0}/bin/mediasim.bin", bundle.string())},
        dir_ / "ldd.log");
    ASSERT_TRUE(l.ok());
    ASSERT_EQ(l->wait(30s), 0) << slurp(dir_ / "ldd.log");
    std::istringstream ldd(slurp(dir_ / "ldd.log"));
    int from_bundle = 0;
    for (std::string line; std::getline(ldd, line);) {
        if (line.find("=>") == std::string::npos) continue;
        if (line.find("libc.so") != std::string::npos || line.find("libm.so") != std::string::npos)
            continue;
        EXPECT_NE(line.find((bundle / "lib").string()), std::string::npos) << line;
        ++from_bundle;
    }
    EXPECT_GE(from_bundle, 5);  // fmt, yaml-cpp, ssl, crypto, stdc++, ...

    const YAML::Node job = k8s_test::manifest("shards-job.yaml");
    const int n = job["spec"]["completions"].as<int>();
    std::vector<Subprocess> pods;
    for (int i = 0; i < n; ++i) {
        std::string s = local(k8s_test::script(job));
        replace_all(s, "$(JOB_COMPLETION_INDEX)", std::to_string(i));
        replace_all(s, "$(TARGET_WEBHOOK)", base_ + "/voice");
        auto p = Subprocess::spawn({"/bin/sh", "-c", s}, dir_ / fmt::format("shard-{}.log", i));
        ASSERT_TRUE(p.ok()) << p.error().to_string();
        pods.push_back(std::move(*p));
    }
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(pods[i].wait(120s), 0) << slurp(dir_ / fmt::format("shard-{}.log", i));

    const std::string merge = local(k8s_test::script(k8s_test::manifest("merge-job.yaml")));
    auto m = Subprocess::spawn({"/bin/sh", "-c", merge}, dir_ / "merge.log");
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->wait(60s), 0) << slurp(dir_ / "merge.log");
    EXPECT_NE(slurp(dir_ / "merge.log").find("calls"), std::string::npos);  // the summary

    const fs::path results = dir_ / "data" / "results";
    const auto summary = [&](const fs::path& d) {
        return nlohmann::json::parse(slurp(d / "summary.json"), nullptr, false);
    };
    std::uint64_t started = 0;
    for (int i = 0; i < n; ++i) {
        const auto s = summary(results / fmt::format("shard-{}", i));
        ASSERT_TRUE(s.is_object()) << i;
        EXPECT_EQ(s["shard"]["index"], i);
        EXPECT_EQ(s["shard"]["count"], n);
        started += s["calls"]["started"].get<std::uint64_t>();
    }
    const auto merged = summary(results / "merged");
    ASSERT_TRUE(merged.is_object());
    EXPECT_EQ(merged["calls"]["started"], 4);  // the scenario's load.calls, each once
    EXPECT_EQ(started, 4u);
    EXPECT_EQ(merged["calls"]["completed"], 4);
    EXPECT_EQ(merged["shard"]["count"], n);
    EXPECT_TRUE(fs::exists(results / "merged" / "report.html"));
}

}  // namespace
