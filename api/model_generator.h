// api/model_generator: the server's Generator (api/server.h) backed by the engine's
// ModelRunner: OpenAI parameters become sampling options, tokens stream to the sink.
#pragma once

#include <memory>
#include <random>
#include <string>

#include "api/server.h"
#include "generate/generate.h"
#include "generate/runner.h"

namespace ragd {

class ModelGenerator : public Generator {
  public:
    // id: what /v1/models lists (the model file's name without .gguf).
    ModelGenerator(std::unique_ptr<ModelRunner> runner, std::string id);

    std::string model_id() const override { return id_; }
    Generation chat(const std::vector<ChatMessage>& messages, const GenerationParams& p,
                    const TokenSink& sink) override;
    Generation complete(const std::string& prompt, const GenerationParams& p,
                        const TokenSink& sink) override;
    std::vector<std::vector<float>> embed(const std::vector<std::string>& inputs,
                                          int* prompt_tokens) override;
    Answer answer(const std::string& question, const std::vector<Passage>& passages,
                  const GenerationParams& p, const TokenSink& sink, Generation* stats) override;

  private:
    std::unique_ptr<ModelRunner> runner_;
    std::string id_;
    std::mt19937_64 seeds_{std::random_device{}()};
    std::mutex seeds_mu_;

    GenerateOptions options(const GenerationParams& p);
};

// Loads MODEL.gguf for `ragd serve -m`; n_ctx and n_threads 0 mean the defaults.
std::shared_ptr<Generator> load_model_generator(const std::string& path, int n_ctx, int n_threads,
                                                KvType kv_type = KvType::F32,
                                                gguf::Load how = gguf::Load::Auto);

}  // namespace ragd
