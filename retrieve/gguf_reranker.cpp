// make_gguf_reranker (retrieve.h): a cross-encoder on generate/bert.h's Encoder::rerank.
#include <sys/stat.h>

#include <mutex>

#include "generate/bert.h"
#include "retrieve/retrieve.h"

namespace ragd {

namespace {

class GgufReranker : public Reranker {
  public:
    GgufReranker(std::unique_ptr<BertModel> model, int threads)
        : model_(std::move(model)),
          encoder_(*model_, threads),
          name_("gguf:" + model_->params().name) {}
    std::string name() const override { return name_; }
    std::vector<float> score(const std::string& query,
                             const std::vector<std::string>& texts) const override {
        if (texts.empty()) return {};
        std::lock_guard lock(mu_);
        return encoder_.rerank(query, texts);
    }

  private:
    std::unique_ptr<BertModel> model_;
    mutable Encoder encoder_;  // guarded by mu_
    std::string name_;
    mutable std::mutex mu_;
};

}  // namespace

std::unique_ptr<Reranker> make_gguf_reranker(const std::string& path, int threads) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(Error::Code::NotFound, "rerank model " + path + ": no such file");
    std::unique_ptr<BertModel> model;
    try {
        model = BertModel::load(path);
    } catch (const Error& e) {
        throw Error(e.code(), "rerank model " + path + ": " + e.what());
    }
    if (!model->is_reranker())
        throw Error(Error::Code::Unsupported,
                    "rerank model " + path +
                        " has no classification head (an embedding model? use it as "
                        "--embed-model)");
    return std::make_unique<GgufReranker>(std::move(model), threads);
}

}  // namespace ragd
