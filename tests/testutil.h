// Helpers shared by the tests: temporary directories, files, running the ragd binary.
#pragma once

#include <string>
#include <vector>

namespace ragd::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// The repository root and the ragd binary under test.
std::string source_dir();
std::string ragd_binary();
// llama.cpp's reference models and outputs: $RAGD_REFERENCE_DIR, else ../shared/reference
// beside the repository, else /work/shared/reference; "" when none exists (tests that
// need it then skip, saying so).
std::string reference_dir();

struct RunResult {
    int exit_code = -1;  // -1 if killed by a signal
    std::string out, err;
};
// Runs `ragd ARGS...` with RAGD_DATA unset; captures stdout and stderr.
RunResult run_ragd(const std::vector<std::string>& args);

// Starts `ragd ARGS...` in the background, output discarded; returns its pid.
int spawn_ragd(const std::vector<std::string>& args);
// Waits for a child started by spawn_ragd; returns its exit code, -1 if killed by a signal.
int wait_ragd(int pid);

}  // namespace ragd::test
