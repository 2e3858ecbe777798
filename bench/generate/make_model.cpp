// make_model: writes a random-weight model with the project's GGUF writer, for `ragd
// bench` and the engine's speed figures. Shapes are llama's; --preset 7b gives the shape
// of ../shared/reference's llama.cpp figures (n_embd 4096, 32 layers, 32 heads, 8 KV
// heads, n_ff 14336, vocab 32000, ctx 32768, rope theta 1e6).
//
//   make_model --preset 7b --type Q4_K_M OUT.gguf
//   make_model --n-embd 512 --n-layer 4 --type Q8_0 OUT.gguf
//
// Types: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K, and the mixes Q4_K_M and Q5_K_M (Q4_K or
// Q5_K, with Q6_K for output and for attn_v and ffn_down in half of the layers).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/generate/model_writer.h"

using ragd::gguf::Type;

namespace {

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: make_model [--preset 7b|tiny] [--type T] [--arch llama|qwen2|qwen3]\n"
                 "                  [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N]\n"
                 "                  [--n-ff N] [--n-vocab N] [--n-ctx N] [--seed S] OUT.gguf\n");
    std::exit(2);
}

bool parse_type(const std::string& name, ragd::test::ModelSpec& s) {
    struct {
        const char* name;
        Type t;
    } plain[] = {{"F32", Type::F32},   {"F16", Type::F16},   {"BF16", Type::BF16},
                 {"Q8_0", Type::Q8_0}, {"Q4_0", Type::Q4_0}, {"Q4_K", Type::Q4_K},
                 {"Q5_K", Type::Q5_K}, {"Q6_K", Type::Q6_K}};
    for (const auto& p : plain)
        if (name == p.name) {
            s.matrix_type = s.embd_type = s.output_type = p.t;
            return true;
        }
    if (name == "Q4_K_M" || name == "Q5_K_M") {
        Type base = name == "Q4_K_M" ? Type::Q4_K : Type::Q5_K;
        s.matrix_type = s.embd_type = base;
        s.output_type = Type::Q6_K;
        return true;
    }
    return false;
}

// The _M mixes give attn_v and ffn_down more bits in about half of the layers: the first
// and last eighth, and every third layer in between (llama-quantize's documented choice).
void add_mix_overrides(ragd::test::ModelSpec& s) {
    const int n = s.n_layer;
    for (int i = 0; i < n; ++i) {
        bool more = i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        if (!more) continue;
        for (const char* t : {"attn_v", "ffn_down"})
            s.overrides.push_back({"blk." + std::to_string(i) + "." + t + ".weight", Type::Q6_K});
    }
}

}  // namespace

int main(int argc, char** argv) {
    ragd::test::ModelSpec s;
    s.matrix_type = s.embd_type = s.output_type = Type::Q8_0;
    std::string out, type_name;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        auto number = [&]() { return std::atoi(value().c_str()); };
        if (a == "--preset") {
            std::string p = value();
            if (p == "7b") {
                s.n_embd = 4096, s.n_layer = 32, s.n_head = 32, s.n_head_kv = 8, s.n_ff = 14336;
                s.n_vocab = 32000, s.n_ctx = 32768, s.rope_theta = 1e6f;
            } else if (p != "tiny") {
                usage();
            }
        } else if (a == "--type") {
            type_name = value();
            if (!parse_type(type_name, s)) usage();
        } else if (a == "--arch")
            s.arch = value();
        else if (a == "--n-embd")
            s.n_embd = number();
        else if (a == "--n-layer")
            s.n_layer = number();
        else if (a == "--n-head")
            s.n_head = number();
        else if (a == "--n-head-kv")
            s.n_head_kv = number();
        else if (a == "--n-ff")
            s.n_ff = number();
        else if (a == "--n-vocab")
            s.n_vocab = number();
        else if (a == "--n-ctx")
            s.n_ctx = number();
        else if (a == "--seed")
            s.seed = uint64_t(std::atoll(value().c_str()));
        else if (!a.empty() && a[0] != '-' && out.empty())
            out = a;
        else
            usage();
    }
    if (out.empty()) usage();
    if (type_name.size() > 2 && type_name.compare(type_name.size() - 2, 2, "_M") == 0)
        add_mix_overrides(s);
    auto t0 = std::chrono::steady_clock::now();
    ragd::test::make_model(s).write(out);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s in %.1f s\n", out.c_str(), secs);
    return 0;
}
