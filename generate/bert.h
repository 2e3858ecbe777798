// generate/bert: encoder models from GGUF files, for embeddings and reranking.
//
// Architectures: bert (absolute position embeddings, token types, post-norm LayerNorm,
// GELU) and nomic-bert (rotary positions, fused QKV, SwiGLU) where present. Attention sees
// the whole sequence (no causal mask). Pooling as the GGUF metadata says (mean, CLS,
// last), or a classification head for cross-encoder rerankers (bge-reranker).
//
// Batched: encode() runs many texts in one pass over the weights; sequences of a batch are
// packed one after another and attention never crosses from one to the next.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "generate/gguf.h"
#include "generate/threadpool.h"
#include "generate/tokenizer.h"

namespace ragd {

enum class Pooling { None = 0, Mean = 1, Cls = 2, Last = 3, Rank = 4 };  // GGUF's numbering
const char* pooling_name(Pooling p);
// "mean", "cls", "last" (and "none", "rank"); throws Error(InvalidArgument) otherwise.
Pooling parse_pooling(const std::string& name);

struct BertParams {
    std::string arch;  // "bert", "nomic-bert"
    std::string name;  // general.name, or the file name
    int n_vocab = 0;
    int n_embd = 0;
    int n_layer = 0;
    int n_head = 0;
    int n_ff = 0;
    int n_ctx_train = 0;  // longest input in tokens; longer inputs are truncated
    float norm_eps = 1e-12f;
    Pooling pooling = Pooling::Cls;  // from "<arch>.pooling_type"
    int n_cls_out = 0;               // classification head outputs (rerankers), else 0
};

class BertModel {
  public:
    // Opens PATH (gguf::Load, like Model::load) and checks every tensor the architecture needs
    // (shape, supported type). Throws ragd::Error like Model::load.
    static std::unique_ptr<BertModel> load(const std::string& path,
                                           gguf::Load how = gguf::Load::Auto);
    static std::unique_ptr<BertModel> from_file(gguf::File file);
    ~BertModel();

    const BertParams& params() const;
    const Tokenizer& tokenizer() const;
    int dim() const { return params().n_embd; }
    bool is_reranker() const { return params().n_cls_out > 0; }

    struct Impl;  // weights; defined in bert.cpp

  private:
    friend class Encoder;
    explicit BertModel(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Runs a BertModel. Holds the thread pool and scratch buffers; not thread-safe (one per
// concurrent caller, or a mutex around it).
class Encoder {
  public:
    explicit Encoder(const BertModel& model, int n_threads = 0);
    ~Encoder();

    // Token ids of text as the model expects them: [CLS] text [SEP], truncated to the
    // model's context (the [SEP] kept). An empty text gives [CLS] [SEP].
    std::vector<int32_t> tokenize(const std::string& text) const;
    // Token ids of a (query, document) pair for a cross-encoder: [CLS] q [SEP] d [SEP],
    // truncated to the context by dropping tokens from the end of the longer part first.
    // rerank() gives the document's segment token type 1 when the model has two types.
    std::vector<int32_t> tokenize_pair(const std::string& query, const std::string& doc) const;

    // Per-token output states of each sequence (n_tokens × n_embd each, after the last
    // layer). Throws Error(InvalidArgument) for an empty or over-long sequence or an
    // out-of-range id.
    std::vector<std::vector<float>> forward(const std::vector<std::vector<int32_t>>& batch);

    // One vector per text (texts.size() × dim() floats), pooled (Pooling::None: the
    // model's own pooling; mean for a model whose pooling_type is none, the [CLS] state
    // for a reranker) and L2-normalised when normalize is set. Over-long texts are
    // truncated (tokenize). Texts are packed into forward passes of up to batch_tokens
    // tokens (a longer text runs alone). Throws InvalidArgument for Pooling::Rank.
    std::vector<float> embed(const std::vector<std::string>& texts, Pooling pooling = Pooling::None,
                             bool normalize = true);
    // The same for texts already tokenized (tokenize()), e.g. by a chunker that counts
    // the model's tokens. Throws like forward() on bad ids.
    std::vector<float> embed_ids(const std::vector<std::vector<int32_t>>& seqs,
                                 Pooling pooling = Pooling::None, bool normalize = true);

    // Relevance of each document to the query (the reranker's raw score, higher is more
    // relevant): the first output of cls.output·tanh(cls·h + b) + b' on the [CLS] state h
    // (without cls.output: the first element of the tanh). Throws
    // Error(InvalidArgument) when the model has no classification head.
    std::vector<float> rerank(const std::string& query, const std::vector<std::string>& docs);

    int batch_tokens = 2048;  // tokens per forward pass at most

  private:
    struct Scratch;
    void check(const std::vector<std::vector<int32_t>>& batch) const;
    void run(const std::vector<std::vector<int32_t>>& batch, size_t begin, size_t end,
             const std::vector<size_t>* second);
    template <typename Fn>
    void batched(const std::vector<std::vector<int32_t>>& seqs, const std::vector<size_t>* second,
                 Fn fn);
    const BertModel& model_;
    std::unique_ptr<ThreadPool> pool_;
    std::unique_ptr<Scratch> scratch_;
};

}  // namespace ragd
