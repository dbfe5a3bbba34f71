#include "core/result.hpp"

namespace mediasim::core {

std::string Diagnostic::to_string() const {
    std::string out;
    if (!file.empty()) {
        out += file;
        if (line > 0) {
            out += ':' + std::to_string(line);
            if (column > 0) out += ':' + std::to_string(column);
        }
        out += ": ";
    }
    if (!path.empty()) out += path + ": ";
    out += message;
    return out;
}

Diagnostic make_error(std::string message, std::string path) {
    Diagnostic d;
    d.message = std::move(message);
    d.path = std::move(path);
    return d;
}

}  // namespace mediasim::core
