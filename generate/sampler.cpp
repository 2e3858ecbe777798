#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "config/config.h"

namespace ragd {

void validate(const SamplerParams& s) {
    auto bad = [](const std::string& what) { throw Error(Error::Code::InvalidArgument, what); };
    if (!(s.temperature >= 0 && s.temperature <= 100)) bad("temperature must be in [0, 100]");
    if (s.top_k < 0) bad("top_k must be >= 0");
    if (!(s.top_p > 0 && s.top_p <= 1)) bad("top_p must be in (0, 1]");
    if (!(s.min_p >= 0 && s.min_p < 1)) bad("min_p must be in [0, 1)");
    if (!(s.repeat_penalty > 0 && s.repeat_penalty <= 10)) bad("repeat_penalty must be in (0, 10]");
    if (s.repeat_last_n < 0) bad("repeat_last_n must be >= 0");
    if (!(s.presence_penalty >= -2 && s.presence_penalty <= 2))
        bad("presence_penalty must be in [-2, 2]");
    if (!(s.frequency_penalty >= -2 && s.frequency_penalty <= 2))
        bad("frequency_penalty must be in [-2, 2]");
}

int32_t argmax(const float* logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; ++i)
        if (logits[i] > logits[best]) best = i;
    return best;
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
    validate(params_);
}

int32_t Sampler::sample(const float* logits, int n_vocab, const std::vector<int32_t>& history,
                        TokenConstraint* constraint) {
    int32_t t = sample_free(logits, n_vocab, history);
    if (!constraint || constraint->allows(t)) return t;
    masked_.assign(logits, logits + n_vocab);
    if (constraint->mask(masked_.data(), n_vocab) == 0)
        throw Error(Error::Code::Internal, "constrained generation: no token is allowed");
    t = sample_free(masked_.data(), n_vocab, history);
    // A draw can only land on a masked token through rounding; take the best allowed one.
    if (!std::isfinite(masked_[size_t(t)])) t = argmax(masked_.data(), n_vocab);
    return t;
}

int32_t Sampler::sample_free(const float* logits, int n_vocab,
                             const std::vector<int32_t>& history) {
    // Temperature 0 is plain greedy decoding: the argmax of the model's own logits.
    if (params_.temperature == 0.0f) return argmax(logits, n_vocab);
    cand_.resize(size_t(n_vocab));
    for (int i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {logits[i], i};

    const bool penalize = params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                          params_.frequency_penalty != 0.0f;
    if (penalize && params_.repeat_last_n > 0) {
        size_t from = history.size() > size_t(params_.repeat_last_n)
                          ? history.size() - size_t(params_.repeat_last_n)
                          : 0;
        std::unordered_map<int32_t, int> seen;
        for (size_t i = from; i < history.size(); ++i) ++seen[history[i]];
        for (const auto& [id, count] : seen) {
            if (id < 0 || id >= n_vocab) continue;
            float& l = cand_[size_t(id)].first;
            l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
            l -= params_.presence_penalty + params_.frequency_penalty * float(count);
        }
    }
    auto by_logit = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t k = cand_.size();
    if (params_.top_k > 0 && size_t(params_.top_k) < k) k = size_t(params_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + long(k), cand_.end(), by_logit);
    cand_.resize(k);

    // Softmax at the temperature (logits sorted, so the first is the max).
    const float mx = cand_[0].first;
    double sum = 0;
    for (auto& c : cand_) sum += c.first = std::exp((c.first - mx) / params_.temperature);
    for (auto& c : cand_) c.first = float(c.first / sum);

    if (params_.top_p < 1.0f) {
        double acc = 0;
        size_t keep = 0;
        while (keep < cand_.size()) {
            acc += cand_[keep++].first;
            if (acc >= params_.top_p) break;
        }
        cand_.resize(keep);
    }
    if (params_.min_p > 0.0f) {
        const float floor = cand_[0].first * params_.min_p;
        size_t keep = 1;
        while (keep < cand_.size() && cand_[keep].first >= floor) ++keep;
        cand_.resize(keep);
    }
    double total = 0;
    for (const auto& c : cand_) total += c.first;
    double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    for (const auto& c : cand_) {
        r -= c.first;
        if (r <= 0) return c.second;
    }
    return cand_.back().second;
}

}  // namespace ragd
