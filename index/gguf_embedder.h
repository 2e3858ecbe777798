// index/gguf_embedder: the Embedder of a BERT-family GGUF embedding model (bge, MiniLM,
// nomic), on generate/bert.h's Encoder. make_gguf_embedder (index.h) returns one; the
// server uses this class directly for /v1/embeddings (token counts).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "generate/bert.h"
#include "index/index.h"

namespace ragd {

class GgufEmbedder : public Embedder {
  public:
    // Loads PATH (threads: 0 = hardware). Throws Error with a one-line message naming the
    // file: NotFound when it does not exist, Unsupported for a reranker (a classification
    // head) or an architecture the engine does not run, Corrupt for a malformed file.
    static std::unique_ptr<GgufEmbedder> load(const std::string& path, int threads = 0);
    ~GgufEmbedder() override;

    // "gguf:<general.name>:<fingerprint>:<dim>:<pooling>"
    std::string name() const override { return name_; }
    int dim() const override { return dim_; }
    // Thread-safe (one encoder behind a mutex). Inputs longer than the model's context
    // are truncated; an empty text embeds like the empty string does in the model.
    void embed(const std::vector<std::string>& texts, float* out) const override;
    std::string source() const override { return path_; }

    // embed() that also adds the tokens read (with [CLS]/[SEP]) to *tokens.
    void embed_counted(const std::vector<std::string>& texts, float* out, int64_t* tokens) const;
    const std::string& model_name() const { return model_name_; }  // general.name
    int max_tokens() const { return max_tokens_; }

    // size + hash of sampled blocks of the file (16 hex digits).
    static std::string fingerprint(const std::string& path);

  private:
    GgufEmbedder() = default;
    std::string path_, name_, model_name_;
    int dim_ = 0, max_tokens_ = 0;
    Pooling pooling_ = Pooling::Cls;
    std::unique_ptr<BertModel> model_;
    std::unique_ptr<Encoder> encoder_;  // guarded by mu_
    mutable std::mutex mu_;
};

}  // namespace ragd
