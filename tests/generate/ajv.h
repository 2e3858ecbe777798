// tests/generate/ajv: an independent JSON Schema validator for constrained generation:
// ajv and ajv-formats, pinned in tests/generate/ajv/package.json and installed on demand
// with `npm ci` as tests/generate/npm.h does for the tokenizers.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
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
    std::string out;
    if (run("command -v node && command -v npm", out) != 0)
        return "node and npm are needed for the ajv validator (apt-get install nodejs npm; "
               "scripts/install-deps.sh)";
    const std::string dir = ajv_dir();
    nlohmann::json pkg = nlohmann::json::parse(test::read_file(dir + "/package.json"));
    auto installed = [&] {
        for (auto& [name, version] : pkg["dependencies"].items()) {
            std::string p = dir + "/node_modules/" + name + "/package.json";
            if (!std::filesystem::exists(p)) return false;
            if (nlohmann::json::parse(test::read_file(p)).value("version", "") != version)
                return false;
        }
        return true;
    };
    const char* tmp = std::getenv("TMPDIR");
    std::string lock_path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ragd-ajv-npm.lock";
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0666);
    if (fd < 0) return "cannot open " + lock_path;
    ::flock(fd, LOCK_EX);
    std::string err;
    if (!installed()) {
        int rc = run("npm ci --no-audit --no-fund --prefix " + shell_quote(dir), out);
        if (rc != 0 || !installed())
            err = "npm ci in " + dir + " failed (exit " + std::to_string(rc) + "):\n" +
                  out.substr(out.size() > 3000 ? out.size() - 3000 : 0);
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
    return err;
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
