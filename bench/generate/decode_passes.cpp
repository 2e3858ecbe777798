// decode_passes: where a decode step's time goes, measured against the memory.
//
// On a shared VM the memory bandwidth moves by a third from one minute to the next, so
// decode tokens/s taken at different times cannot be compared to a tenth. This times
// passes over a model's decode matrices in one process, in rotating order, round after
// round, so that every kind sees the same bandwidth, and reports each against the plain
// read of the same round:
//
//   read      every byte of the decode matrices once, no arithmetic (read_weights, what
//             `ragd bench` puts decode beside);
//   one-job   decode's matrix-vector products as one pool job: no barrier between them;
//   products  the same products grouped as the forward pass runs them (q/k/v, wo,
//             gate/up, down, output), one pool job per group;
//   decode    whole decode steps (Sequence::eval of one token: products, attention,
//             norms, RoPE, SiLU, the barriers between them).
//
//   decode_passes -m MODEL.gguf [-t THREADS (2)] [-r ROUNDS (30)]
//
// Prints GB/s of decode weights per pass (median, min, max over the rounds) and the
// median of each round's ratio to that round's read pass.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "generate/model.h"
#include "generate/ops.h"
#include "generate/quant.h"
#include "generate/threadpool.h"

using namespace ragd;

namespace {

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: decode_passes -m MODEL.gguf [-t THREADS (2)] [-r ROUNDS (30)]\n");
    std::exit(2);
}

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string path;
    int threads = 2, rounds = 30;
    for (int i = 1; i < argc; ++i) {
        if (i + 1 >= argc) usage();
        if (!std::strcmp(argv[i], "-m"))
            path = argv[++i];
        else if (!std::strcmp(argv[i], "-t"))
            threads = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "-r"))
            rounds = std::max(1, std::atoi(argv[++i]));
        else
            usage();
    }
    if (path.empty()) usage();
    std::unique_ptr<Model> model;
    try {
        model = Model::load(path, gguf::Load::Read);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "decode_passes: %s\n", e.what());
        return 1;
    }
    const ModelParams& mp = model->params();
    const std::vector<const gguf::Tensor*> ws = model->decode_matrices();
    double bytes = 0;
    int64_t max_rows = 0, max_cols = 0;
    for (const gguf::Tensor* w : ws) {
        bytes += double(w->nbytes);
        max_rows = std::max(max_rows, w->ne[1]);
        max_cols = std::max(max_cols, w->ne[0]);
    }
    ThreadPool pool(threads);
    std::vector<float> x(static_cast<size_t>(max_cols)), out(static_cast<size_t>(max_rows) * 3);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    std::vector<uint8_t> xq;
    std::atomic<uint64_t> sink{0};

    auto read = [&] { sink += read_weights(pool, ws.data(), int(ws.size())); };

    // x converted once per (dot-product format, length), as decode converts it per product.
    std::map<std::pair<gguf::Type, int64_t>, std::vector<uint8_t>> xs;
    for (const gguf::Tensor* w : ws) {
        const gguf::Type dt = quant::vec_dot_type(w->type);
        std::vector<uint8_t>& b = xs[{dt, w->ne[0]}];
        if (!b.empty()) continue;
        b.resize(gguf::row_bytes(dt, w->ne[0]));
        if (dt == gguf::Type::F32)
            std::memcpy(b.data(), x.data(), b.size());
        else
            quant::quantize_row(dt, x.data(), b.data(), w->ne[0]);
    }
    std::vector<int64_t> first(ws.size() + 1, 0);
    for (size_t i = 0; i < ws.size(); ++i) first[i + 1] = first[i] + ws[i]->ne[1];
    auto one_job = [&] {
        pool.parallel_for(first.back(), 16, [&](int64_t b, int64_t e) {
            size_t i = size_t(std::upper_bound(first.begin(), first.end(), b) - first.begin()) - 1;
            for (; b < e; ++i) {
                const gguf::Tensor& w = *ws[i];
                const int64_t r0 = b - first[i], r1 = std::min(first[i + 1], e) - first[i];
                const uint8_t* xr = xs.at({quant::vec_dot_type(w.type), w.ne[0]}).data();
                const size_t wrb = gguf::row_bytes(w.type, w.ne[0]);
                const quant::VecDotFn dot = quant::vec_dot_fn(w.type);
                for (int64_t r = r0; r < r1; ++r)
                    out[size_t(r)] = dot(w.ne[0], w.data + size_t(r) * wrb, xr);
                b = first[i] + r1;
            }
        });
    };

    // As Sequence::forward groups them (generate/model.cpp).
    const size_t o1 = size_t(max_rows), o2 = 2 * size_t(max_rows);
    auto products = [&] {
        for (const LayerWeights& l : model->layers) {
            const MatmulOut qkv[] = {
                {l.wq, out.data()}, {l.wk, out.data() + o1}, {l.wv, out.data() + o2}};
            matmul(pool, qkv, 3, x.data(), 1, xq);
            matmul(pool, *l.wo, x.data(), 1, xq, out.data());
            const MatmulOut gate_up[] = {{l.w_gate, out.data()}, {l.w_up, out.data() + o1}};
            matmul(pool, gate_up, 2, x.data(), 1, xq);
            matmul(pool, *l.w_down, x.data(), 1, xq, out.data());
        }
        matmul(pool, *model->output, x.data(), 1, xq, out.data());
    };

    // Decode steps on the Sequence's own pool (the other pool's worker sleeps meanwhile),
    // 4 a pass, positions 0-255 over and over.
    constexpr int kSteps = 4;
    Sequence seq(*model, 256, threads);
    int pos = 0;
    auto decode = [&] {
        for (int i = 0; i < kSteps; ++i) {
            if (pos == 256) {
                seq.truncate(0);
                pos = 0;
            }
            const int32_t token = int32_t((pos * 7919) % mp.n_vocab);
            seq.eval(&token, 1);
            ++pos;
        }
    };

    struct Pass {
        const char* name;
        std::function<void()> run;
        double bytes;
        std::vector<double> gb_s;
    };
    std::vector<Pass> passes = {{"read", read, bytes, {}},
                                {"one-job", one_job, bytes, {}},
                                {"products", products, bytes, {}},
                                {"decode", decode, kSteps * bytes, {}}};
    for (Pass& p : passes) p.run();  // warm-up: scratch buffers, the KV cache's first pages
    for (int r = 0; r < rounds; ++r) {
        for (size_t k = 0; k < passes.size(); ++k) {
            Pass& p = passes[(k + size_t(r)) % passes.size()];
            const double t0 = now();
            p.run();
            p.gb_s.push_back(p.bytes / (now() - t0) / 1e9);
        }
        std::fprintf(stderr, "round %d/%d\r", r + 1, rounds);
    }
    std::fprintf(stderr, "\n");
    std::printf("%s: decode reads %.2f GB a token; %d threads, %d rounds, kernels %s\n",
                path.c_str(), bytes / 1e9, threads, rounds, quant::isa_name(quant::detected_isa()));
    std::printf("%-9s %8s %8s %8s %10s\n", "pass", "GB/s", "min", "max", "/ read");
    for (const Pass& p : passes) {
        std::vector<double> ratio;
        for (size_t i = 0; i < p.gb_s.size(); ++i) ratio.push_back(p.gb_s[i] / passes[0].gb_s[i]);
        const auto [lo, hi] = std::minmax_element(p.gb_s.begin(), p.gb_s.end());
        std::printf("%-9s %8.1f %8.1f %8.1f %10.3f", p.name, median(p.gb_s), *lo, *hi,
                    median(ratio));
        if (&p == &passes.back()) std::printf("   (%.2f tok/s)", median(p.gb_s) * 1e9 / bytes);
        std::printf("\n");
    }
    std::printf("[checksum %llu]\n", static_cast<unsigned long long>(sink.load()));
    return 0;
}
