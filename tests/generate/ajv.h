// tests/generate/ajv: an independent JSON Schema validator for constrained generation:
// ajv and ajv-formats, pinned in tests/generate/ajv/package.json and installed on demand
// with `npm ci` as tests/generate/npm.h does for the tokenizers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/generate/npm.h"
#include "tests/testutil.h"

namespace ragd::test {

inline std::string ajv_dir() {
    return test::source_dir() + "/tests/generate/ajv";
}

// "" when node_modules holds the pinned packages (installing them if needed), else why not.
inline std::string ensure_ajv() {
    return ensure_npm_dir(ajv_dir(), "for the ajv validator");
}

// Validates texts against schemas: cases is [{"schema", "texts": [...]}]; the result has
// one {"ok", "error"?} per text, in order. Throws std::runtime_error when ajv can't run.
inline nlohmann::json ajv_validate(const nlohmann::json& cases) {
    std::string err = ensure_ajv();
    if (!err.empty()) throw std::runtime_error(err);
    test::TempDir tmp;
    const std::string in = tmp / "in.json", outp = tmp / "out.json";
    test::write_file(in, cases.dump());
    std::string out;
    int rc = run("node " + shell_quote(ajv_dir() + "/validate.js") + " " + shell_quote(in) + " " +
                     shell_quote(outp),
                 out);
    if (rc != 0) throw std::runtime_error("node validate.js failed: " + out);
    return nlohmann::json::parse(test::read_file(outp));
}

}  // namespace ragd::test
