// Constrained generation end to end: random-weight models of two architectures generate
// under 20 varied JSON Schemas, 200 generations in all, and every output must parse and
// validate against its schema as checked by ajv (an independent validator, not ragd's
// grammar). Also: the sampler's constraint path and the runner's budget errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "generate/json_schema.h"
#include "generate/runner.h"
#include "generate/sampler.h"
#include "tests/generate/ajv.h"
#include "tests/generate/model_writer.h"

namespace ragd {
namespace {

using OJ = nlohmann::ordered_json;

std::unique_ptr<ModelRunner> tiny_runner(const std::string& arch, uint64_t seed) {
    test::ModelSpec s;
    s.arch = arch;
    s.n_embd = 64;
    s.n_layer = 1;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 128;
    s.n_ctx = 512;
    s.weight_std = 0.5f;  // peaked logits: the sampled token is often disallowed
    s.seed = seed;
    std::vector<uint8_t> bytes = test::make_model(s).bytes();
    return std::make_unique<ModelRunner>(
        Model::from_file(gguf::File::parse(bytes.data(), bytes.size())), 512, 1);
}

const char* kSchemas[] = {
    R"({"type":"object","properties":{
        "parties":{"type":"array","items":{"type":"string","maxLength":12},"minItems":1,"maxItems":3},
        "effective_date":{"type":"string","format":"date"},
        "notice_days":{"type":"integer","minimum":0,"maximum":365},
        "governing_law":{"enum":["England and Wales","New York","Delaware"]}},
        "required":["parties","effective_date","notice_days","governing_law"],
        "additionalProperties":false})",
    R"({"type":"object","properties":{"medications":{"type":"array","maxItems":3,"items":{
        "type":"object","properties":{"name":{"type":"string","maxLength":10},
        "dose":{"type":"number","minimum":0,"maximum":1000},"unit":{"enum":["mg","ml","g"]},
        "frequency":{"type":"string","maxLength":8}},"required":["name","dose","unit"],
        "additionalProperties":false}}},"required":["medications"]})",
    R"({"type":"string"})",
    R"({"type":"integer","minimum":-50,"maximum":50})",
    R"({"type":"number","minimum":0,"exclusiveMaximum":1})",
    R"({"type":"boolean"})",
    R"({"enum":["red","green","blue"]})",
    R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":4})",
    R"({"type":"object","properties":{"a":{"const":42},"b":{"type":["string","null"],"maxLength":6}},
        "required":["a"]})",
    R"({"anyOf":[{"type":"string","maxLength":5},{"type":"integer"}]})",
    R"({"oneOf":[
        {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","minimum":0}},
         "required":["kind","r"],"additionalProperties":false},
        {"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"integer","minimum":0},
         "h":{"type":"integer","minimum":0}},"required":["kind","w","h"],"additionalProperties":false}]})",
    R"({"definitions":{"node":{"type":"object","properties":{"name":{"type":"string","maxLength":6},
        "children":{"type":"array","maxItems":2,"items":{"$ref":"#/definitions/node"}}},
        "required":["name"],"additionalProperties":false}},"$ref":"#/definitions/node"})",
    R"({"type":"string","format":"date-time"})",
    R"({"type":"object","additionalProperties":{"type":"integer"}})",
    R"({"type":"array","items":[{"type":"string"},{"type":"number"}],"additionalItems":false,
        "minItems":2})",
    R"({"type":"object","properties":{"x":{"type":"string","minLength":3,"maxLength":6}},
        "required":["x"]})",
    R"({"type":"null"})",
    R"({"type":"object","properties":{"id":{"type":"integer","exclusiveMinimum":0},
        "tags":{"type":"array","items":{"enum":[1,"a",true,null]}},
        "nested":{"type":"object","properties":{"deep":{"type":"object","properties":{
        "v":{"type":"boolean"}},"required":["v"]}},"required":["deep"]}},
        "required":["id","nested"]})",
    R"({})",
    R"({"type":"object","properties":{"title":{"type":"string"}},"additionalProperties":true})",
};

TEST(Constrained, TwoHundredGenerationsValidateWithAjv) {
    std::vector<std::unique_ptr<ModelRunner>> runners;
    runners.push_back(tiny_runner("llama", 11));
    runners.push_back(tiny_runner("qwen3", 12));
    nlohmann::json cases = nlohmann::json::array();
    int budget_hits = 0, total = 0, masks = 0;
    for (size_t si = 0; si < std::size(kSchemas); ++si) {
        auto grammar = compile_json_schema(OJ::parse(kSchemas[si]));
        nlohmann::json texts = nlohmann::json::array();
        for (int i = 0; i < 10; ++i) {
            ModelRunner& r = *runners[size_t(i % 2)];
            GenerateOptions o;
            o.grammar = grammar;
            o.max_tokens = std::max(72, int(GrammarMatcher(grammar).min_remaining()) + 32);
            o.sampling.temperature = i < 2 ? 0.0f : 0.6f + 0.2f * float(i);
            o.sampling.top_k = 0;
            o.sampling.top_p = 1;
            o.sampling.min_p = 0;
            o.sampling.seed = uint64_t(1000 * si + size_t(i));
            Generation g =
                r.complete("Extract JSON " + std::to_string(si) + "/" + std::to_string(i) + ":", o);
            EXPECT_EQ(g.finish_reason, "stop") << g.text;
            EXPECT_LE(g.completion_tokens, o.max_tokens);
            if (g.completion_tokens >= o.max_tokens - 1) ++budget_hits;
            masks += g.constraint_masks;
            EXPECT_TRUE(nlohmann::json::accept(g.text)) << kSchemas[si] << "\n" << g.text;
            texts.push_back(g.text);
            ++total;
        }
        cases.push_back({{"schema", nlohmann::json::parse(kSchemas[si])}, {"texts", texts}});
    }
    EXPECT_EQ(total, 200);
    nlohmann::json res;
    try {
        res = test::ajv_validate(cases);
    } catch (const std::exception& e) {
        FAIL() << e.what();
    }
    int valid = 0;
    for (size_t si = 0; si < res.size(); ++si)
        for (size_t i = 0; i < res[si].size(); ++i) {
            if (res[si][i]["ok"].get<bool>()) {
                ++valid;
                continue;
            }
            ADD_FAILURE() << "schema " << si << ": " << cases[si]["texts"][i].get<std::string>()
                          << "\n  " << res[si][i].value("error", "");
        }
    EXPECT_EQ(valid, 200);
    std::printf("constrained: %d/200 valid per ajv; %d ran into the token budget; %d full masks\n",
                valid, budget_hits, masks);
}

// The sampler only ever returns allowed tokens, greedy or not.
class EvenOnly : public TokenConstraint {
  public:
    bool allows(int32_t id) override { return id % 2 == 0; }
    size_t mask(float* logits, int n) override {
        for (int i = 1; i < n; i += 2) logits[i] = -std::numeric_limits<float>::infinity();
        return size_t((n + 1) / 2);
    }
};

TEST(Constrained, SamplerReturnsOnlyAllowedTokens) {
    std::vector<float> logits = {0.1f, 5.0f, 1.9f, 4.0f, 0.5f};
    EvenOnly c;
    SamplerParams p;
    p.temperature = 0;
    EXPECT_EQ(Sampler(p).sample(logits.data(), 5, {}, &c), 2);
    p.temperature = 1.5f;
    for (int i = 0; i < 200; ++i) {
        p.seed = uint64_t(i);
        EXPECT_EQ(Sampler(p).sample(logits.data(), 5, {}, &c) % 2, 0);
    }
}

TEST(Constrained, BudgetTooSmallIsAnError) {
    auto r = tiny_runner("llama", 3);
    GenerateOptions o;
    o.grammar = compile_json_schema(OJ::parse(
        R"({"type":"object","properties":{"a_long_property_name":{"type":"string"}},"required":["a_long_property_name"]})"));
    o.max_tokens = 10;
    EXPECT_THROW(r->complete("x", o), Error);
    o.max_tokens = 30;  // just enough: the output is forced closed
    Generation g = r->complete("x", o);
    EXPECT_EQ(g.finish_reason, "stop");
    EXPECT_TRUE(nlohmann::json::accept(g.text)) << g.text;
}

}  // namespace
}  // namespace ragd
