// api/cli_model: the commands that run a GGUF model directly: run, tokenize.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "api/args.h"
#include "api/commands.h"
#include "generate/gguf.h"
#include "generate/model.h"
#include "generate/ops.h"
#include "generate/quant.h"
#include "generate/sampler.h"
#include "generate/tokenizer.h"

namespace ragd {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string require(const Args& args, const std::string& flag, const char* what) {
    if (!args.has(flag) || args.get(flag).empty())
        throw Error(Error::Code::InvalidArgument, flag + " " + what + " is required");
    return args.get(flag);
}

void write_floats(const std::string& path, const std::vector<float>& v) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw Error(Error::Code::IO, "cannot write " + path);
    bool ok = std::fwrite(v.data(), sizeof(float), v.size(), f) == v.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw Error(Error::Code::IO, "short write to " + path);
}

}  // namespace

int cmd_run(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"-m --model", true},
                            {"-p --prompt", true},
                            {"-n --n-predict", true},
                            {"--temp --temperature", true},
                            {"--seed", true},
                            {"-t --threads", true},
                            {"-c --ctx-size", true},
                            {"--top-k", true},
                            {"--top-p", true},
                            {"--min-p", true},
                            {"--repeat-penalty", true},
                            {"--mmap", false},
                            {"--no-mmap", false},
                            {"--kv-type", true},
                            {"--logits-out", true}});
    if (!args.positional.empty())
        throw Error(Error::Code::InvalidArgument,
                    "unexpected argument '" + args.positional[0] + "' (the prompt goes after -p)");
    const std::string model_path = require(args, "-m", "MODEL.gguf");
    if (!args.has("-p")) throw Error(Error::Code::InvalidArgument, "-p PROMPT is required");
    const std::string prompt = args.get("-p");
    const int n_predict = int(args.get_int("-n", 128, 0, 1 << 20));
    const int threads = int(args.get_int("-t", 0, 0, 1024));
    const int n_ctx = int(args.get_int("-c", 0, 0, 1 << 24));

    SamplerParams sp;
    sp.temperature = float(get_double(args, "--temp", sp.temperature, 0, 100));
    sp.top_k = int(args.get_int("--top-k", sp.top_k, 0, 1 << 24));
    sp.top_p = float(get_double(args, "--top-p", sp.top_p, 1e-6, 1));
    sp.min_p = float(get_double(args, "--min-p", sp.min_p, 0, 0.999));
    sp.repeat_penalty = float(get_double(args, "--repeat-penalty", sp.repeat_penalty, 0.01, 10));
    if (args.has("--seed")) {
        sp.seed = uint64_t(args.get_int("--seed", 0, 0, INT64_MAX));
    } else {
        sp.seed = std::random_device{}();
    }
    Sampler sampler(sp);

    auto t_load = Clock::now();
    std::unique_ptr<Model> model =
        Model::load(model_path, gguf::load_mode(args.has("--mmap"), args.has("--no-mmap")));
    const Tokenizer& tok = model->tokenizer();
    Sequence seq(*model, n_ctx, threads, parse_kv_type(args.get("--kv-type", "f32")));
    std::vector<int32_t> ids = tok.encode(prompt, true, true);
    if (ids.empty()) throw Error(Error::Code::InvalidArgument, "the prompt is empty");
    if (int(ids.size()) > seq.n_ctx())
        throw Error(Error::Code::InvalidArgument,
                    "the prompt is " + std::to_string(ids.size()) +
                        " tokens, longer than the context of " + std::to_string(seq.n_ctx()) +
                        " (raise -c, up to the model's " +
                        std::to_string(model->params().n_ctx_train) + ")");
    const double load_s = seconds_since(t_load);

    if (sp.temperature > 0 && !args.has("--seed"))
        std::fprintf(stderr, "seed: %llu (pass --seed to repeat this run)\n",
                     static_cast<unsigned long long>(sp.seed));
    auto t_prompt = Clock::now();
    seq.eval(ids);
    const double prompt_s = seconds_since(t_prompt);
    if (args.has("--logits-out")) write_floats(args.get("--logits-out"), seq.logits());

    auto t_gen = Clock::now();
    int generated = 0;
    std::vector<int32_t> history = ids;
    while (generated < n_predict) {
        int32_t next = sampler.sample(seq.logits().data(), model->params().n_vocab, history);
        if (tok.is_end_of_generation(next)) break;
        std::string piece = tok.piece(next);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        history.push_back(next);
        ++generated;
        if (generated == n_predict) break;
        if (seq.n_past() >= seq.n_ctx()) {
            std::fprintf(stderr, "\nragd: the context of %d tokens is full; stopping\n",
                         seq.n_ctx());
            break;
        }
        seq.eval(&next, 1);
    }
    const double gen_s = seconds_since(t_gen);
    if (generated) std::fputc('\n', stdout);
    std::fprintf(stderr,
                 "model: %s (%s), load %.2f s\nprompt: %zu tokens, %.2f s, %.1f tok/s\n"
                 "generated: %d tokens, %.2f s, %.1f tok/s\n",
                 model->params().name.c_str(), model->params().arch.c_str(), load_s, ids.size(),
                 prompt_s, double(ids.size()) / std::max(prompt_s, 1e-9), generated, gen_s,
                 generated ? generated / std::max(gen_s, 1e-9) : 0.0);
    return 0;
}

int cmd_bench(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"-m --model", true},
                            {"-p --n-prompt", true},
                            {"-n --n-gen", true},
                            {"-t --threads", true},
                            {"-r --repetitions", true},
                            {"--mmap", false},
                            {"--no-mmap", false},
                            {"--kv-type", true},
                            {"--json", false}});
    const std::string model_path = require(args, "-m", "MODEL.gguf");
    const KvType kv_type = parse_kv_type(args.get("--kv-type", "f32"));
    const int n_prompt = int(args.get_int("-p", 512, 0, 1 << 20));
    const int n_gen = int(args.get_int("-n", 128, 0, 1 << 20));
    const int reps = int(args.get_int("-r", 3, 1, 1000));
    const int threads = int(args.get_int("-t", 0, 0, 1024));
    if (n_prompt == 0 && n_gen == 0)
        throw Error(Error::Code::InvalidArgument, "nothing to measure: -p and -n are both 0");

    std::unique_ptr<Model> model =
        Model::load(model_path, gguf::load_mode(args.has("--mmap"), args.has("--no-mmap")));
    const ModelParams& mp = model->params();
    if (std::max(n_prompt, n_gen) > mp.n_ctx_train)
        throw Error(Error::Code::InvalidArgument,
                    "-p/-n exceed the model's context of " + std::to_string(mp.n_ctx_train));
    Sequence seq(*model, std::max(n_prompt, n_gen), threads, kv_type);
    uint64_t model_bytes = 0;
    for (const gguf::Tensor& t : model->file().tensors()) model_bytes += t.nbytes;

    // Token ids drawn at random (seeded): the speed does not depend on which tokens.
    std::mt19937 rng(1234);
    auto random_tokens = [&](int n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) id = int32_t(rng() % uint32_t(mp.n_vocab));
        return ids;
    };
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    // One untimed warm-up pass pages the weights in and sizes the scratch buffers.
    {
        std::vector<int32_t> warm = random_tokens(std::max(1, std::min(n_prompt, 16)));
        seq.eval(warm);
        seq.truncate(0);
    }
    // Decode beside the memory: after each decode repetition one pass reads the same
    // weights without computing (generate/ops.h read_weights), so decode is reported as a
    // fraction of what the memory delivered in the same minute; on a shared machine the
    // bandwidth moves more from minute to minute than the engine does.
    const std::vector<const gguf::Tensor*> decode_ws = model->decode_matrices();
    double decode_bytes = 0;  // per token; the token's embedding row is left out (tiny)
    for (const gguf::Tensor* w : decode_ws) decode_bytes += double(w->nbytes);
    ThreadPool read_pool(threads);
    std::vector<double> pp, tg, read_rate, fraction;
    volatile uint64_t checksum = 0;  // the reads' result goes somewhere
    for (int r = 0; r < reps; ++r) {
        if (n_prompt > 0) {
            std::vector<int32_t> ids = random_tokens(n_prompt);
            seq.truncate(0);
            auto t0 = Clock::now();
            seq.eval(ids);
            pp.push_back(n_prompt / seconds_since(t0));
        }
        if (n_gen > 0) {
            // As llama-bench's tg: n single-token steps from an empty cache.
            std::vector<int32_t> ids = random_tokens(n_gen);
            seq.truncate(0);
            auto t0 = Clock::now();
            for (int i = 0; i < n_gen; ++i) seq.eval(&ids[size_t(i)], 1);
            tg.push_back(n_gen / seconds_since(t0));
            auto t1 = Clock::now();
            checksum = checksum + read_weights(read_pool, decode_ws.data(), int(decode_ws.size()));
            read_rate.push_back(decode_bytes / seconds_since(t1));
            fraction.push_back(tg.back() * decode_bytes / read_rate.back());
        }
        std::fprintf(stderr, "repetition %d/%d done\r", r + 1, reps);
    }
    std::fprintf(stderr, "\n");
    const double pp_med = median(pp), tg_med = median(tg);
    const double read_med = median(read_rate) / 1e9, fraction_med = median(fraction);
    const int nth = threads > 0 ? threads : physical_cores();
    if (args.has("--json")) {
        std::printf(
            "{\"pp_tok_s\": %.3f, \"tg_tok_s\": %.3f, \"threads\": %d, \"model_bytes\": %llu, "
            "\"n_prompt\": %d, \"n_gen\": %d, \"repetitions\": %d, \"isa\": \"%s\", "
            "\"decode_bytes_per_token\": %.0f, \"read_gb_s\": %.3f, \"tg_of_read\": %.4f}\n",
            pp_med, tg_med, nth, static_cast<unsigned long long>(model_bytes), n_prompt, n_gen,
            reps, quant::isa_name(quant::detected_isa()), decode_bytes, read_med, fraction_med);
        return 0;
    }
    std::printf("model: %s (%s), %.2f GiB, %d layers, n_embd %d\n", mp.name.c_str(),
                mp.arch.c_str(), double(model_bytes) / (1 << 30), mp.n_layer, mp.n_embd);
    std::printf("threads: %d, kernels: %s, repetitions: %d (median)\n", nth,
                quant::isa_name(quant::detected_isa()), reps);
    if (n_prompt) std::printf("pp%-6d %10.2f tok/s\n", n_prompt, pp_med);
    if (n_gen) {
        std::printf("tg%-6d %10.2f tok/s\n", n_gen, tg_med);
        // A pass over the weights without arithmetic takes bytes / read rate; decode can
        // at best match it.
        std::printf(
            "decode reads %.2f GB a token; the memory read them at %.1f GB/s (%.2f tok/s "
            "at most): decode ran at %.0f%% of that\n",
            decode_bytes / 1e9, read_med, read_med * 1e9 / decode_bytes, 100 * fraction_med);
    }
    return 0;
}

int cmd_tokenize(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2, {{"-m --model", true}, {"--no-special", false}});
    const std::string model_path = require(args, "-m", "MODEL.gguf");
    if (args.positional.size() != 1)
        throw Error(Error::Code::InvalidArgument, "tokenize takes exactly one TEXT argument");
    gguf::File file = gguf::File::open(model_path);
    Tokenizer tok = Tokenizer::from_gguf(file);
    bool special = !args.has("--no-special");
    std::vector<int32_t> ids = tok.encode(args.positional[0], special, special);
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
    std::printf("%s]\n", out.c_str());
    return 0;
}

}  // namespace ragd
