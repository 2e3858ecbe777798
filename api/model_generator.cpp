#include "api/model_generator.h"

#include <filesystem>

#include "generate/json_schema.h"

namespace ragd {

ModelGenerator::ModelGenerator(std::unique_ptr<ModelRunner> runner, std::string id)
    : runner_(std::move(runner)), id_(std::move(id)) {}

GenerateOptions ModelGenerator::options(const GenerationParams& p) {
    GenerateOptions o;
    if (p.response_format == "json_object")
        o.grammar = json_object_grammar();
    else if (p.response_format == "json_schema")
        o.grammar = compile_json_schema(nlohmann::ordered_json::parse(p.json_schema));
    else if (p.response_format != "text")
        throw Error(Error::Code::InvalidArgument,
                    "response_format '" + p.response_format + "' is not supported");
    o.max_tokens = p.max_tokens;
    o.stop = p.stop;
    SamplerParams& s = o.sampling;
    s.temperature = float(p.temperature);
    s.top_p = float(p.top_p);
    s.top_k = p.top_k;
    s.min_p = float(p.min_p);
    s.repeat_penalty = float(p.repeat_penalty);
    s.presence_penalty = float(p.presence_penalty);
    s.frequency_penalty = float(p.frequency_penalty);
    if (p.seed) {
        s.seed = *p.seed;
    } else {
        std::lock_guard<std::mutex> lock(seeds_mu_);
        s.seed = seeds_();
    }
    validate(s);
    return o;
}

namespace {

OnText to_on_text(const TokenSink& sink) {
    if (!sink) return nullptr;
    return [&sink](const std::string& piece) { return sink(piece); };
}

}  // namespace

Generation ModelGenerator::chat(const std::vector<ChatMessage>& messages, const GenerationParams& p,
                                const TokenSink& sink) {
    return runner_->chat(messages, options(p), to_on_text(sink));
}

Generation ModelGenerator::complete(const std::string& prompt, const GenerationParams& p,
                                    const TokenSink& sink) {
    return runner_->complete(prompt, options(p), to_on_text(sink));
}

std::vector<std::vector<float>> ModelGenerator::embed(const std::vector<std::string>&, int*) {
    throw Error(Error::Code::Unsupported,
                "model '" + id_ +
                    "' is a text generator; embeddings need an embedding model "
                    "(--embed-model, not available yet)");
}

Answer ModelGenerator::answer(const std::string& question, const std::vector<Passage>& passages,
                              const GenerationParams& p, const TokenSink& sink, Generation* stats) {
    return model_answer(*runner_, question, passages, options(p), to_on_text(sink), stats);
}

std::shared_ptr<Generator> load_model_generator(const std::string& path, int n_ctx, int n_threads,
                                                KvType kv_type, gguf::Load how) {
    auto runner = std::make_unique<ModelRunner>(Model::load(path, how), n_ctx, n_threads, kv_type);
    std::string id = std::filesystem::path(path).stem().string();
    return std::make_shared<ModelGenerator>(std::move(runner), id);
}

}  // namespace ragd
