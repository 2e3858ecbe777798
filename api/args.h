// api/args: command-line flag parsing shared by the CLI's command files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace ragd {

struct FlagSpec {
    const char* names;  // space-separated aliases, e.g. "-k --top-k"
    bool takes_value;
};

// Parsed command line of one command: flags by their first alias, and positionals.
struct Args {
    std::map<std::string, std::string> flags;
    std::vector<std::string> positional;

    bool has(const std::string& name) const { return flags.count(name) > 0; }
    std::string get(const std::string& name, const std::string& def = "") const {
        auto it = flags.find(name);
        return it == flags.end() ? def : it->second;
    }
    int64_t get_int(const std::string& name, int64_t def, int64_t lo, int64_t hi) const {
        auto it = flags.find(name);
        return it == flags.end() ? def : parse_int(name, it->second, lo, hi);
    }
};

// Parses argv[first..] against the specs. "--flag=value" and "--flag value" both work;
// "--" ends the flags. Unknown flags are errors.
Args parse_args(int argc, char** argv, int first, const std::vector<FlagSpec>& specs);

// A float flag in [lo, hi]; the default when absent. Throws InvalidArgument otherwise.
double get_double(const Args& args, const std::string& name, double def, double lo, double hi);

}  // namespace ragd
