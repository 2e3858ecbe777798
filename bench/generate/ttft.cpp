// ttft: time to first token of a RAG-shaped prompt, cold and warm (prefix reuse).
//
// A RAG request is a fixed instruction, then the retrieved passages, then the question.
// When the next question retrieves the same first passages, ModelRunner finds their KV
// entries in the cache and only evaluates what differs. This measures what that saves:
//
//   cold: a prompt whose passages the cache has never seen (every token evaluated);
//   warm: the same instruction and passages with another question (only the question).
//
//   ttft -m MODEL.gguf [-c PREFIX_TOKENS] [-r REPS] [-t THREADS] [--mmap | --no-mmap]
//
// Passages are text of corpus/ (read from the source tree), rotated between repetitions
// so that every cold prompt is new to the cache. TTFT is the wall time of a request for
// one token: tokenizing, evaluating the uncached part of the prompt, sampling.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "generate/runner.h"

namespace {

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: ttft -m MODEL.gguf [-c PREFIX_TOKENS (1024)] [-r REPS (3)] [-t THREADS]\n"
                 "            [--mmap | --no-mmap] [--corpus DIR]\n");
    std::exit(2);
}

// Paragraphs of the corpus's text files, in a fixed order.
std::vector<std::string> corpus_paragraphs(const std::string& dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        std::string ext = e.path().extension().string();
        if (ext == ".md" || ext == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> paras;
    for (const auto& f : files) {
        std::ifstream in(f);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        for (size_t pos = 0; pos < text.size();) {
            size_t end = text.find("\n\n", pos);
            if (end == std::string::npos) end = text.size();
            std::string p = text.substr(pos, end - pos);
            if (p.size() > 80) paras.push_back(p);
            pos = end + 2;
        }
    }
    return paras;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_path, corpus = RAGD_SOURCE_DIR "/corpus";
    int prefix_tokens = 1024, reps = 3, threads = 0;
    bool mmap = false, no_mmap = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "-m")
            model_path = next();
        else if (a == "-c")
            prefix_tokens = std::atoi(next().c_str());
        else if (a == "-r")
            reps = std::atoi(next().c_str());
        else if (a == "-t")
            threads = std::atoi(next().c_str());
        else if (a == "--corpus")
            corpus = next();
        else if (a == "--no-mmap")
            no_mmap = true;
        else if (a == "--mmap")
            mmap = true;
        else
            usage();
    }
    if (model_path.empty() || prefix_tokens < 16 || reps < 1) usage();

    try {
        auto model = ragd::Model::load(model_path, ragd::gguf::load_mode(mmap, no_mmap));
        // The last passage may overshoot the prefix size by a whole paragraph.
        const int n_ctx = std::min(model->params().n_ctx_train, 2 * prefix_tokens + 256);
        ragd::ModelRunner runner(std::move(model), n_ctx, threads);
        const std::vector<std::string> paras = corpus_paragraphs(corpus);
        if (paras.empty()) throw std::runtime_error("no paragraphs in " + corpus);
        const char* questions[] = {"What is the notice period for termination?",
                                   "Which law governs the agreement?",
                                   "What dose of metformin was prescribed?"};
        ragd::GenerateOptions opts;
        opts.max_tokens = 1;
        opts.sampling.temperature = 0;

        std::printf("model %s, prefix ~%d tokens, %d threads\n", model_path.c_str(), prefix_tokens,
                    threads);
        std::printf("%-5s %-4s %8s %8s %10s\n", "rep", "kind", "prompt", "reused", "ttft_ms");
        std::vector<double> cold, warm;
        for (int r = 0; r < reps; ++r) {
            // Instruction + passages starting at a different paragraph each repetition,
            // grown until the prefix has prefix_tokens tokens.
            std::string prefix =
                "Answer the question from the numbered passages. Cite them as [n].\n\n";
            for (size_t k = 0; k < paras.size(); ++k) {
                const std::string& p = paras[(size_t(r) * 7 + k) % paras.size()];
                prefix += '[';
                prefix += std::to_string(k + 1);
                prefix += "] " + p + "\n\n";
                if (int(runner.tokenize_prompt(prefix).size()) >= prefix_tokens) break;
            }
            for (size_t q = 0; q < std::size(questions); ++q) {
                std::string prompt = prefix + "Question: " + questions[q] + "\nAnswer:";
                auto t0 = std::chrono::steady_clock::now();
                ragd::Generation g = runner.complete(prompt, opts);
                double ms =
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
                const bool is_cold = q == 0;
                (is_cold ? cold : warm).push_back(ms);
                std::printf("%-5d %-4s %8d %8d %10.1f\n", r, is_cold ? "cold" : "warm",
                            g.prompt_tokens, g.reused_tokens, ms);
            }
        }
        std::printf("median ttft: cold %.1f ms, warm %.1f ms (%.1fx)\n", median(cold), median(warm),
                    median(cold) / std::max(median(warm), 1e-9));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ttft: %s\n", e.what());
        return 1;
    }
    return 0;
}
