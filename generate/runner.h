// generate/runner: text generation on a loaded model, shared by the CLI and the server.
//
// A ModelRunner owns a model and one KV-cached sequence. Requests run one at a time (a
// mutex; the server queues them), and each reuses the cached prefix of the previous
// prompt: a system prompt and the same first passages are not computed again.
//
// Text comes out as it is generated, in pieces that are whole UTF-8 characters and never
// part of a stop string, so a streaming client sees exactly the final text.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "generate/chat.h"
#include "generate/grammar.h"
#include "generate/model.h"
#include "generate/sampler.h"

namespace ragd {

struct GenerateOptions {
    int max_tokens = 512;           // tokens to generate at most
    SamplerParams sampling;         // temperature 0 is greedy
    std::vector<std::string> stop;  // stop strings (cut from the output)
    // Constrained decoding (generate/grammar.h, json_schema.h): only tokens the grammar
    // allows are sampled, and the text is a complete sentence of the grammar when
    // generation ends, within max_tokens: when the tokens left get tight, only tokens
    // that keep completion reachable are allowed (each later token can add one byte). Stop
    // strings are not applied (the grammar decides the end); finish_reason is "stop" once
    // the text is complete. A grammar that needs more than max_tokens bytes at least is
    // an InvalidArgument error before anything runs.
    std::shared_ptr<const Grammar> grammar;
};

struct Generation {
    std::string text;
    int prompt_tokens = 0;
    int reused_tokens = 0;  // prompt tokens found in the cache from the last request
    int completion_tokens = 0;
    std::string finish_reason;  // "stop" (EOS or stop string), "length", "cancelled"
    double prompt_seconds = 0, generate_seconds = 0;
    double constraint_seconds = 0;  // of generate_seconds: token checks and masks
    int constraint_masks = 0;       // full vocabulary masks computed
};

// Receives each new piece of text; returns false to cancel (a client went away).
using OnText = std::function<bool(const std::string& piece)>;

class ModelRunner {
  public:
    // n_ctx 0: the model's trained length capped at Sequence::kDefaultContext.
    ModelRunner(std::unique_ptr<Model> model, int n_ctx = 0, int n_threads = 0,
                KvType kv_type = KvType::F32);

    const Model& model() const { return *model_; }
    int n_ctx() const { return seq_.n_ctx(); }
    ChatFormat chat_format() const { return chat_format_; }

    // Tokens of text as a prompt (BOS when the model wants it, special tokens parsed).
    std::vector<int32_t> tokenize_prompt(const std::string& text) const;

    // Generates a continuation of prompt text. Throws ragd::Error(InvalidArgument) when
    // the prompt plus max_tokens cannot fit in the context.
    Generation complete(const std::string& prompt, const GenerateOptions& options,
                        const OnText& on_text = nullptr);
    // The same from prompt tokens the caller already has (tokenize_prompt).
    Generation complete(const std::vector<int32_t>& prompt_tokens, const GenerateOptions& options,
                        const OnText& on_text = nullptr);

    // Chat: applies the model's chat template. When the conversation is too long for the
    // context (with room for max_tokens), the oldest turns after the system message are
    // dropped, in pairs, until it fits; a single last message that alone does not fit
    // is an error (InvalidArgument).
    Generation chat(std::vector<ChatMessage> messages, const GenerateOptions& options,
                    const OnText& on_text = nullptr);

  private:
    std::unique_ptr<Model> model_;
    std::unique_ptr<GrammarVocab> vocab_;  // built on the first constrained request
    Sequence seq_;
    ChatFormat chat_format_;
    std::mutex mu_;

    Generation run(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                   const OnText& on_text);
};

// Holds back the end of generated text that could still become a stop string or is an
// incomplete UTF-8 character; releases the rest.
class StopFilter {
  public:
    explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
    // Adds text; returns what can be shown now. Sets stopped() when a stop string
    // appeared (the text up to it is returned, the rest dropped).
    std::string push(const std::string& piece);
    // What is still held back, at the end of generation (incomplete UTF-8 dropped).
    std::string flush();
    bool stopped() const { return stopped_; }

  private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace ragd
