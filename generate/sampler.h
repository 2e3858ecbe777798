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

// Restricts which tokens may be sampled (constrained decoding, generate/grammar.h).
class TokenConstraint {
  public:
    virtual ~TokenConstraint() = default;
    virtual bool allows(int32_t id) = 0;
    // Sets the logits of disallowed tokens to -infinity; returns how many are allowed.
    virtual size_t mask(float* logits, int n_vocab) = 0;
};

class Sampler {
  public:
    explicit Sampler(const SamplerParams& params);
    // history: the tokens so far (prompt and generated), for the repetition penalty.
    //
    // With a constraint, the result is always a token it allows. The full mask costs a
    // walk of the vocabulary, so the token is first sampled from the unmasked logits and
    // kept when allowed; only when it is not are the logits masked (disallowed ones set to
    // -inf before penalties, top-k and the rest) and the token sampled again. Greedy, the
    // unmasked argmax when allowed is the masked argmax; sampling, accepting a draw from p
    // when allowed and else drawing from p restricted to the allowed set A gives each
    // allowed token p(t) + (1 - p(A)) p(t) / p(A) = p(t) / p(A): the masked distribution.
    // (With top-k/top-p truncation the two differ slightly: truncation then applies to
    // the unmasked candidates first.) Throws ragd::Error(Internal) when the constraint
    // allows nothing.
    int32_t sample(const float* logits, int n_vocab, const std::vector<int32_t>& history,
                   TokenConstraint* constraint = nullptr);

  private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> cand_;
    std::vector<float> masked_;
    int32_t sample_free(const float* logits, int n_vocab, const std::vector<int32_t>& history);
};

int32_t argmax(const float* logits, int n);

}  // namespace ragd
