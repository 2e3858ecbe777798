// GgufEmbedder: generate/bert.h's Encoder behind the Embedder interface.
#include "index/gguf_embedder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "generate/bert.h"

namespace ragd {

namespace {

constexpr size_t kBlock = 64 << 10;  // bytes hashed per sample
constexpr int kSamples = 32;         // samples spread over the file, head and tail included

inline uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

}  // namespace

std::string GgufEmbedder::fingerprint(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(Error::Code::IO, "open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        throw Error(Error::Code::IO, "stat " + path + ": " + std::strerror(errno));
    }
    uint64_t size = uint64_t(st.st_size);
    uint64_t h = mix(0x243f6a8885a308d3ull, size);
    std::vector<uint8_t> buf(kBlock);
    // The first MiB whole (header, vocabulary, first weights), then samples spread evenly.
    std::vector<uint64_t> offsets;
    for (uint64_t o = 0; o < std::min<uint64_t>(size, 16 * kBlock); o += kBlock)
        offsets.push_back(o);
    if (size > 16 * kBlock) {
        for (int i = 0; i < kSamples; ++i) {
            uint64_t span = size - kBlock;
            offsets.push_back(span / uint64_t(kSamples - 1) * uint64_t(i));
        }
    }
    for (uint64_t off : offsets) {
        ssize_t n = ::pread(fd, buf.data(), kBlock, off_t(off));
        if (n <= 0) continue;
        h = mix(h, off);
        size_t i = 0;
        for (; i + 8 <= size_t(n); i += 8) {
            uint64_t w;
            std::memcpy(&w, buf.data() + i, 8);
            h = mix(h, w);
        }
        for (; i < size_t(n); ++i) h = mix(h, buf[i]);
    }
    ::close(fd);
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
    return out;
}

std::unique_ptr<GgufEmbedder> GgufEmbedder::load(const std::string& path, int threads) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(Error::Code::NotFound, "embedding model " + path + ": no such file");
    std::unique_ptr<BertModel> model;
    try {
        model = BertModel::load(path);
    } catch (const Error& e) {
        throw Error(e.code(), "embedding model " + path + ": " + e.what());
    }
    if (model->is_reranker())
        throw Error(Error::Code::Unsupported,
                    "embedding model " + path +
                        " is a reranker (classification head): use it as --rerank-model");
    const BertParams& p = model->params();
    // As the Encoder pools by default: mean when the file says none; CLS for "rank".
    Pooling pool = p.pooling == Pooling::None   ? Pooling::Mean
                   : p.pooling == Pooling::Rank ? Pooling::Cls
                                                : p.pooling;
    std::unique_ptr<GgufEmbedder> e(new GgufEmbedder());
    e->path_ = path;
    e->model_name_ = p.name;
    e->dim_ = model->dim();
    e->max_tokens_ = p.n_ctx_train;
    e->pooling_ = pool;
    e->name_ = "gguf:" + p.name + ":" + fingerprint(path) + ":" + std::to_string(e->dim_) + ":" +
               pooling_name(pool);
    if (e->name_.size() > 1000) e->name_.resize(1000);  // the vector file allows 1024
    e->model_ = std::move(model);
    e->encoder_ = std::make_unique<Encoder>(*e->model_, threads);
    return e;
}

GgufEmbedder::~GgufEmbedder() = default;

void GgufEmbedder::embed(const std::vector<std::string>& texts, float* out) const {
    embed_counted(texts, out, nullptr);
}

void GgufEmbedder::embed_counted(const std::vector<std::string>& texts, float* out,
                                 int64_t* tokens) const {
    if (texts.empty()) return;
    std::lock_guard lock(mu_);
    std::vector<std::vector<int32_t>> seqs;
    seqs.reserve(texts.size());
    for (const std::string& t : texts) {
        seqs.push_back(encoder_->tokenize(t));
        if (tokens) *tokens += int64_t(seqs.back().size());
    }
    std::vector<float> v = encoder_->embed_ids(seqs, pooling_, /*normalize=*/true);
    if (v.size() != texts.size() * size_t(dim_))
        throw Error(Error::Code::Internal, "embedding model returned " + std::to_string(v.size()) +
                                               " floats for " + std::to_string(texts.size()) +
                                               " texts");
    std::memcpy(out, v.data(), v.size() * sizeof(float));
}

std::unique_ptr<Embedder> make_gguf_embedder(const std::string& path, int threads) {
    return GgufEmbedder::load(path, threads);
}

}  // namespace ragd
