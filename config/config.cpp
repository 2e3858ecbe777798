#include "config/config.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace ragd {

int64_t parse_int(const std::string& what, const std::string& text, int64_t lo, int64_t hi) {
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
        throw Error(Error::Code::InvalidArgument, what + " must be an integer from " +
                                                      std::to_string(lo) + " to " +
                                                      std::to_string(hi) + ", got '" + text + "'");
    return x;
}

std::string resolve_data_dir(const std::string& flag_value) {
    if (!flag_value.empty()) return flag_value;
    const char* env = std::getenv("RAGD_DATA");
    if (env && *env) return env;
    return "./ragd-data";
}

void apply_model_env(Config* cfg) {
    const char* e = std::getenv("RAGD_EMBED_MODEL");
    if (cfg->embed_model.empty() && e && *e) cfg->embed_model = e;
    const char* r = std::getenv("RAGD_RERANK_MODEL");
    if (cfg->rerank_model.empty() && r && *r) cfg->rerank_model = r;
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
