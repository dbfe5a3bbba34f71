// The manifests of deploy/k8s, loaded with yaml-cpp, for the deploy tests.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace k8s_test {

inline YAML::Node manifest(const std::string& name) {
    return YAML::LoadFile(std::string(MEDIASIM_SOURCE_DIR "/deploy/k8s/") + name);
}

// The one container of a Job's or Pod's pod template.
inline YAML::Node container(const YAML::Node& m) {
    const YAML::Node spec =
        m["kind"].as<std::string>() == "Pod" ? m["spec"] : m["spec"]["template"]["spec"];
    return spec["containers"][0];
}

// The shell script a container runs (command ["/bin/sh", "-c"], args [SCRIPT]).
inline std::string script(const YAML::Node& m) {
    return container(m)["args"][0].as<std::string>();
}

}  // namespace k8s_test
