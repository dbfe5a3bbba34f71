// deploy/k8s parses as YAML and says what matters: an Indexed Job of N shards (completions =
// parallelism = N, `--shard $(JOB_COMPLETION_INDEX)/N`, each shard's own --out on the shared
// volume), a merge Job over the same volume, and one claim name throughout.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "k8s_manifests.hpp"

namespace {

using k8s_test::container;
using k8s_test::manifest;
using k8s_test::script;
using ::testing::HasSubstr;

std::string claim_of(const YAML::Node& pod_spec) {
    for (const auto& v : pod_spec["volumes"])
        if (v["persistentVolumeClaim"])
            return v["persistentVolumeClaim"]["claimName"].as<std::string>();
    return {};
}

TEST(K8sManifests, ShardsAreAnIndexedJobOfNWithTheShardArgument) {
    const YAML::Node job = manifest("shards-job.yaml");
    EXPECT_EQ(job["apiVersion"].as<std::string>(), "batch/v1");
    EXPECT_EQ(job["kind"].as<std::string>(), "Job");
    const YAML::Node spec = job["spec"];
    EXPECT_EQ(spec["completionMode"].as<std::string>(), "Indexed");
    const int n = spec["completions"].as<int>();
    EXPECT_GE(n, 2);
    EXPECT_EQ(spec["parallelism"].as<int>(), n);  // every shard at once: the run's whole load
    EXPECT_EQ(spec["template"]["spec"]["restartPolicy"].as<std::string>(), "Never");
    EXPECT_EQ(spec["backoffLimit"].as<int>(), 0);  // a shard is not run twice

    const YAML::Node c = container(job);
    EXPECT_EQ(c["command"][0].as<std::string>(), "/bin/sh");
    const std::string s = script(job);
    EXPECT_THAT(s, HasSubstr("/data/mediasim/bin/mediasim run /scenario/scenario.yaml"));
    EXPECT_THAT(s, HasSubstr(fmt::format("--shard $(JOB_COMPLETION_INDEX)/{}", n)));
    EXPECT_THAT(s, HasSubstr("--out /data/results/shard-$(JOB_COMPLETION_INDEX)"));
    EXPECT_THAT(s, HasSubstr("--tts-cache /data/mediasim/tts"));

    // $(JOB_COMPLETION_INDEX) expands from the container's env: the index annotation.
    bool index_env = false, target_env = false;
    for (const auto& e : c["env"]) {
        const auto name = e["name"].as<std::string>();
        if (name == "JOB_COMPLETION_INDEX") {
            index_env = true;
            EXPECT_EQ(e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>(),
                      "metadata.annotations['batch.kubernetes.io/job-completion-index']");
        }
        if (name == "TARGET_WEBHOOK") target_env = true;
    }
    EXPECT_TRUE(index_env);
    EXPECT_TRUE(target_env);
    EXPECT_THAT(s, HasSubstr("$(TARGET_WEBHOOK)"));

    // Exit 2 (bad usage or scenario) fails the whole Job; the volume holds data and results.
    const YAML::Node rule = spec["podFailurePolicy"]["rules"][0];
    EXPECT_EQ(rule["action"].as<std::string>(), "FailJob");
    EXPECT_EQ(rule["onExitCodes"]["values"][0].as<int>(), 2);
    bool data = false, scenario = false;
    for (const auto& m : c["volumeMounts"]) {
        data = data || m["mountPath"].as<std::string>() == "/data";
        scenario = scenario || m["mountPath"].as<std::string>() == "/scenario";
    }
    EXPECT_TRUE(data && scenario);
    EXPECT_EQ(claim_of(spec["template"]["spec"]), "mediasim-data");
}

TEST(K8sManifests, MergeReadsEveryShardFromTheSameVolume) {
    const YAML::Node job = manifest("merge-job.yaml");
    EXPECT_EQ(job["kind"].as<std::string>(), "Job");
    EXPECT_FALSE(job["spec"]["completionMode"]);  // one pod
    const std::string s = script(job);
    EXPECT_THAT(s, HasSubstr("mediasim report merge /data/results/shard-* --out "
                             "/data/results/merged"));
    EXPECT_EQ(claim_of(job["spec"]["template"]["spec"]), "mediasim-data");
}

TEST(K8sManifests, TheClaimAndTheLoader) {
    const YAML::Node pvc = manifest("pvc.yaml");
    EXPECT_EQ(pvc["kind"].as<std::string>(), "PersistentVolumeClaim");
    EXPECT_EQ(pvc["metadata"]["name"].as<std::string>(), "mediasim-data");
    EXPECT_EQ(pvc["spec"]["accessModes"][0].as<std::string>(), "ReadWriteMany");
    const YAML::Node loader = manifest("loader-pod.yaml");
    EXPECT_EQ(loader["kind"].as<std::string>(), "Pod");
    EXPECT_EQ(claim_of(loader["spec"]), "mediasim-data");
}

}  // namespace
