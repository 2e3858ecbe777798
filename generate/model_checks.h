// generate/model_checks: the load-time checks every architecture's loader shares (internal
// to the engine; not part of its interface).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "generate/gguf.h"

namespace ragd::model_checks {

[[noreturn]] inline void corrupt(const std::string& msg) {
    throw Error(Error::Code::Corrupt, "model: " + msg);
}

// "[ne0, ne1, ...]" for error messages.
inline std::string dims(const gguf::Tensor& t) {
    std::string s = "[";
    for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

// Hyper-parameters must be positive and small enough that every product of them fits
// in an int (the forward pass sizes its buffers from them).
inline int positive(const gguf::File& f, const std::string& key, int64_t def, int64_t hi) {
    int64_t v = f.get_int(key, def);
    if (v <= 0 || v > hi) corrupt(key + " = " + std::to_string(v) + " is out of range");
    return int(v);
}

}  // namespace ragd::model_checks
