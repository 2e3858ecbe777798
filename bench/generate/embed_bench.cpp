// embed_bench: chunks embedded per second by the engine's encoder (generate/bert), on a
// bge-small-shaped random-weight bert model (n_embd 384, 12 layers, 12 heads, n_ff 1536,
// vocab 30522, ctx 512) written with the tests' GGUF writer.
//
//   embed_bench [-t THREADS] [-r REPS] [--types F16,F32,Q8_0] [--lens 128,256]
//               [--batches 1,32] [--n-layer N] [--dir /tmp]
//
// For each weight type, chunk length L (tokens, [CLS] and [SEP] included) and batch size
// B: B chunks of random token ids go through Encoder::embed_ids in one forward pass
// (batch_tokens = B × L, packed, no padding), pooled and normalised. Batch 1 runs 8
// chunks one after another per repetition. Prints chunks/s and tokens/s, the median of
// the repetitions after one untimed warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "generate/bert.h"
#include "generate/quant.h"
#include "generate/threadpool.h"
#include "tests/generate/model_writer.h"

using ragd::gguf::Type;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: embed_bench [-t THREADS] [-r REPS] [--types F16,F32,Q8_0]\n"
                 "                   [--lens 128,256] [--batches 1,32] [--n-layer N] "
                 "[--dir DIR]\n");
    std::exit(2);
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

bool parse_type(const std::string& name, Type* t) {
    const std::pair<const char*, Type> known[] = {{"F32", Type::F32},
                                                  {"F16", Type::F16},
                                                  {"BF16", Type::BF16},
                                                  {"Q8_0", Type::Q8_0},
                                                  {"Q4_0", Type::Q4_0}};
    for (const auto& [n, ty] : known)
        if (name == n) {
            *t = ty;
            return true;
        }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 0, reps = 3, n_layer = 12;
    std::vector<std::string> types = {"F16", "F32", "Q8_0"};
    std::vector<int> lens = {128, 256}, batches = {1, 32};
    std::string dir = "/tmp";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage();
            return argv[++i];
        };
        if (a == "-t") {
            threads = std::atoi(value().c_str());
        } else if (a == "-r") {
            reps = std::max(1, std::atoi(value().c_str()));
        } else if (a == "--types") {
            types = split(value());
        } else if (a == "--lens") {
            lens.clear();
            for (const auto& s : split(value())) lens.push_back(std::atoi(s.c_str()));
        } else if (a == "--batches") {
            batches.clear();
            for (const auto& s : split(value())) batches.push_back(std::atoi(s.c_str()));
        } else if (a == "--n-layer") {
            n_layer = std::atoi(value().c_str());
        } else if (a == "--dir") {
            dir = value();
        } else {
            usage();
        }
    }
    for (int l : lens)
        if (l < 2 || l > 512) usage();
    for (int b : batches)
        if (b < 1) usage();

    const int nth = threads > 0 ? threads : ragd::physical_cores();
    std::printf(
        "embed_bench: bge-small shape (n_embd 384, %d layers, 12 heads, n_ff 1536, "
        "vocab 30522), %d threads, kernels %s, median of %d\n",
        n_layer, nth, ragd::quant::isa_name(ragd::quant::detected_isa()), reps);
    std::printf("%-6s %6s %6s %12s %12s %10s\n", "type", "tokens", "batch", "chunks/s", "tokens/s",
                "ms/batch");
    for (const std::string& tname : types) {
        ragd::test::BertSpec spec;
        if (!parse_type(tname, &spec.matrix_type)) usage();
        spec.embd_type = spec.matrix_type == Type::F32 ? Type::F32 : Type::F16;
        spec.n_vocab = 30522;
        spec.n_embd = 384;
        spec.n_layer = n_layer;
        spec.n_head = 12;
        spec.n_ff = 1536;
        spec.n_ctx = 512;
        spec.pooling = 2;
        const std::string path = dir + "/ragd-embed-bench-" + tname + ".gguf";
        ragd::test::write_bert_model(path, spec);
        std::unique_ptr<ragd::BertModel> model = ragd::BertModel::load(path);
        ragd::Encoder enc(*model, threads);

        std::mt19937 rng(1234);
        auto chunk = [&](int len) {
            std::vector<int32_t> ids(static_cast<size_t>(len));
            ids.front() = 2;
            ids.back() = 3;
            for (int i = 1; i + 1 < len; ++i) ids[size_t(i)] = int32_t(5 + rng() % 30000u);
            return ids;
        };
        for (int len : lens) {
            for (int batch : batches) {
                // Batch 1: eight chunks one by one per repetition; else one pass of B.
                const int passes = batch == 1 ? 8 : 1;
                enc.batch_tokens = batch * len;
                std::vector<std::vector<int32_t>> seqs;
                for (int i = 0; i < batch; ++i) seqs.push_back(chunk(len));
                enc.embed_ids(seqs);  // warm-up: pages in the weights, sizes the scratch
                std::vector<double> rates;
                double ms = 0;
                for (int r = 0; r < reps; ++r) {
                    auto t0 = Clock::now();
                    for (int p = 0; p < passes; ++p) enc.embed_ids(seqs);
                    double s = std::chrono::duration<double>(Clock::now() - t0).count();
                    rates.push_back(double(batch) * passes / s);
                    ms += s * 1000 / passes / reps;
                }
                std::sort(rates.begin(), rates.end());
                const double cps = rates[rates.size() / 2];
                std::printf("%-6s %6d %6d %12.2f %12.1f %10.1f\n", tname.c_str(), len, batch, cps,
                            cps * len, ms);
                std::fflush(stdout);
            }
        }
        std::remove(path.c_str());
    }
    return 0;
}
