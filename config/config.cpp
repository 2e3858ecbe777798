#include "config/config.h"

#include <cctype>
#include <cstdlib>

namespace ragd {

std::string resolve_data_dir(const std::string& flag_value) {
    if (!flag_value.empty()) return flag_value;
    const char* env = std::getenv("RAGD_DATA");
    if (env && *env) return env;
    return "./ragd-data";
}

int approx_tokens(const char* text, size_t len) {
    int tokens = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (std::isspace(c)) {
            ++i;
            continue;
        }
        size_t j = i;
        if (std::isalnum(c) || c >= 0x80) {
            while (j < len) {
                unsigned char d = static_cast<unsigned char>(text[j]);
                if (!(std::isalnum(d) || d >= 0x80)) break;
                ++j;
            }
            tokens += 1 + static_cast<int>((j - i - 1) / 6);
        } else {
            ++j;  // each punctuation byte is its own token
            ++tokens;
        }
        i = j;
    }
    return tokens;
}

}  // namespace ragd
