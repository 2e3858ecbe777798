// generate/sampler: picks the next token from logits.
//
// Temperature 0 is greedy: the argmax of the logits, nothing else applied. Otherwise, in
// order: penalties over the last repeat_last_n tokens (repetition: divide a positive
// logit, multiply a negative one; presence: subtract once per distinct token; frequency:
// subtract per occurrence, as OpenAI defines them), top-k, temperature, softmax, top-p (smallest
// set whose probability reaches p), min-p (drop tokens below min_p times the best), and a
// draw from what is left with a seeded generator, so equal seeds give equal outputs.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ragd {

struct SamplerParams {
    float temperature = 0.8f;
    int top_k = 40;                  // 0: no limit
    float top_p = 0.95f;             // 1: no limit
    float min_p = 0.05f;             // 0: no limit
    float repeat_penalty = 1.0f;     // 1: none
    float presence_penalty = 0.0f;   // OpenAI's, in [-2, 2]
    float frequency_penalty = 0.0f;  // OpenAI's, in [-2, 2]
    int repeat_last_n = 64;
    uint64_t seed = 0;
};

// Throws ragd::Error(InvalidArgument) naming the first parameter out of range.
void validate(const SamplerParams& params);

class Sampler {
  public:
    explicit Sampler(const SamplerParams& params);
    // history: the tokens so far (prompt and generated), for the repetition penalty.
    int32_t sample(const float* logits, int n_vocab, const std::vector<int32_t>& history);

  private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> cand_;
};

int32_t argmax(const float* logits, int n);

}  // namespace ragd
