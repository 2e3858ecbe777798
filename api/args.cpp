#include "api/args.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace ragd {

namespace {

std::vector<std::string> split_names(const char* names) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = names;; ++p) {
        if (*p == ' ' || *p == '\0') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
            if (*p == '\0') break;
        } else {
            cur += *p;
        }
    }
    return out;
}

}  // namespace

Args parse_args(int argc, char** argv, int first, const std::vector<FlagSpec>& specs) {
    Args args;
    bool flags_done = false;
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (flags_done || a.size() < 2 || a[0] != '-' ||
            (a.size() > 1 && std::isdigit(static_cast<unsigned char>(a[1])))) {
            args.positional.push_back(a);
            continue;
        }
        if (a == "--") {
            flags_done = true;
            continue;
        }
        std::string value;
        bool has_inline = false;
        if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_inline = true;
        }
        const FlagSpec* spec = nullptr;
        std::string canonical;
        for (const FlagSpec& s : specs) {
            std::vector<std::string> names = split_names(s.names);
            if (std::find(names.begin(), names.end(), a) != names.end()) {
                spec = &s;
                canonical = names[0];
                break;
            }
        }
        if (!spec) throw Error(Error::Code::InvalidArgument, "unknown option " + a);
        if (spec->takes_value) {
            if (!has_inline) {
                if (i + 1 >= argc) throw Error(Error::Code::InvalidArgument, a + " needs a value");
                value = argv[++i];
            }
        } else if (has_inline) {
            throw Error(Error::Code::InvalidArgument, a + " takes no value");
        }
        args.flags[canonical] = value;
    }
    return args;
}

double get_double(const Args& args, const std::string& name, double def, double lo, double hi) {
    if (!args.has(name)) return def;
    const std::string text = args.get(name);
    char* end = nullptr;
    double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v >= lo && v <= hi))
        throw Error(Error::Code::InvalidArgument, name + " must be a number in [" +
                                                      std::to_string(lo) + ", " +
                                                      std::to_string(hi) + "], got '" + text + "'");
    return v;
}

}  // namespace ragd
