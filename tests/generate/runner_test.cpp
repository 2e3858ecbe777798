// Generation around the forward pass: sampling, stop strings, chat formats, prefix
// reuse, citations of model answers.
#include "generate/runner.h"

#include <gtest/gtest.h>

#include <map>

#include "config/config.h"
#include "generate/chat.h"
#include "generate/generate.h"
#include "generate/sampler.h"
#include "tests/generate/model_writer.h"

namespace ragd {
namespace {

TEST(Sampler, GreedyIsArgmaxWhateverThePenalty) {
    std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f};
    SamplerParams p;
    p.temperature = 0;
    p.repeat_penalty = 5;  // ignored: temperature 0 is plain greedy
    Sampler s(p);
    EXPECT_EQ(s.sample(logits.data(), 4, {1, 1, 1}), 1);
}

TEST(Sampler, TopKOneAndMinPKeepOnlyTheBest) {
    std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f};
    for (int i = 0; i < 50; ++i) {
        SamplerParams p;
        p.temperature = 5;
        p.top_k = 1;
        p.seed = uint64_t(i);
        EXPECT_EQ(Sampler(p).sample(logits.data(), 4, {}), 1);
        p.top_k = 0;
        p.min_p = 0.99f;  // only tokens within 1% of the best's probability
        EXPECT_EQ(Sampler(p).sample(logits.data(), 4, {}), 1);
    }
}

// Frequencies follow the softmax at the temperature; top-p cuts the tail.
TEST(Sampler, DrawsFollowTheDistribution) {
    std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    SamplerParams p;
    p.temperature = 1;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.seed = 42;
    Sampler s(p);
    std::map<int, int> count;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ++count[s.sample(logits.data(), 4, {})];
    EXPECT_NEAR(count[0] / double(n), 0.5, 0.02);
    EXPECT_NEAR(count[1] / double(n), 0.3, 0.02);
    EXPECT_NEAR(count[3] / double(n), 0.05, 0.01);
    p.top_p = 0.75f;  // {0.5, 0.3} reach 0.75: tokens 2 and 3 are never drawn
    Sampler cut(p);
    for (int i = 0; i < 2000; ++i) EXPECT_LT(cut.sample(logits.data(), 4, {}), 2);
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
    std::vector<float> logits = {2.0f, 1.9f};
    SamplerParams p;
    p.temperature = 0.01f;
    p.top_k = 0;
    p.repeat_penalty = 1.5f;  // 2.0 / 1.5 < 1.9
    EXPECT_EQ(Sampler(p).sample(logits.data(), 2, {0}), 1);
    EXPECT_EQ(Sampler(p).sample(logits.data(), 2, {}), 0);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
    std::vector<float> logits = {2.0f, 1.5f};
    SamplerParams p;
    p.temperature = 0.01f;
    p.top_k = 0;
    p.presence_penalty = 0.4f;  // 2.0 - 0.4 = 1.6 > 1.5: token 0 still wins
    EXPECT_EQ(Sampler(p).sample(logits.data(), 2, {0, 0, 0}), 0);
    p.frequency_penalty = 0.1f;  // 2.0 - 0.4 - 3 * 0.1 = 1.3 < 1.5
    EXPECT_EQ(Sampler(p).sample(logits.data(), 2, {0, 0, 0}), 1);
    p.presence_penalty = 3;
    EXPECT_THROW(validate(p), Error);
}

TEST(Sampler, RejectsBadParameters) {
    SamplerParams p;
    p.temperature = -1;
    EXPECT_THROW(validate(p), Error);
    p = SamplerParams();
    p.top_p = 0;
    EXPECT_THROW(validate(p), Error);
    p = SamplerParams();
    p.min_p = 1;
    EXPECT_THROW(validate(p), Error);
    EXPECT_NO_THROW(validate(SamplerParams()));
}

TEST(StopFilter, HoldsBackPossibleStopsAndCutsAtThem) {
    StopFilter f({"</s>", "\nUser:"});
    std::string out;
    out += f.push("Hello <");
    EXPECT_EQ(out, "Hello ");  // "<" may start "</s>"
    out += f.push("b> world\n");
    EXPECT_EQ(out, "Hello <b> world");
    out += f.push("Use");
    out += f.push("r: next");
    EXPECT_TRUE(f.stopped());
    EXPECT_EQ(out, "Hello <b> world");
    EXPECT_EQ(f.flush(), "");
}

TEST(StopFilter, KeepsUtf8WholeAndRepairsInvalidBytes) {
    StopFilter f({});
    std::string e_acute = "\xC3\xA9";
    EXPECT_EQ(f.push("caf" + e_acute.substr(0, 1)), "caf");
    EXPECT_EQ(f.push(e_acute.substr(1)), e_acute);
    EXPECT_EQ(f.push("\xFF ok"), "\xEF\xBF\xBD ok");
    EXPECT_EQ(f.push("\xE2\x82"), "");
    EXPECT_EQ(f.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");  // an unfinished character at the end
}

TEST(Chat, DetectsTheFamiliesByTheirMarkers) {
    EXPECT_EQ(detect_chat_format("{% for m in messages %}<|im_start|>{{ m.role }}"),
              ChatFormat::ChatML);
    EXPECT_EQ(detect_chat_format("<|start_header_id|>' + message['role']"), ChatFormat::Llama3);
    EXPECT_EQ(detect_chat_format("{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
              ChatFormat::Mistral);
    EXPECT_EQ(detect_chat_format("<start_of_turn>user\n"), ChatFormat::Gemma);
    EXPECT_EQ(detect_chat_format(""), ChatFormat::Plain);
}

TEST(Chat, FormatsConversations) {
    std::vector<ChatMessage> m = {
        {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
    EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, m),
              "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
              "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n"
              "<|im_start|>assistant\n");
    EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, m),
              "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(apply_chat_template(ChatFormat::Mistral, m),
              "[INST] S\n\nU1 [/INST] A1</s>[INST] U2 [/INST]");
    EXPECT_EQ(apply_chat_template(ChatFormat::Gemma, m),
              "<start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
              "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
    EXPECT_THROW(apply_chat_template(ChatFormat::ChatML, {{"tool", "x"}}), Error);
}

TEST(Rag, CitedNumbers) {
    EXPECT_EQ(cited_numbers("A [1]. B [2][3], C [3, 4] and [ 5 ]? [x] [12345] [2]"),
              (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(cited_numbers("no citations"), std::vector<int>{});
    EXPECT_EQ(cited_numbers("[7"), std::vector<int>{});
}

TEST(Rag, MessagesNumberThePassages) {
    Passage p;
    p.number = 1;
    p.hit.chunk.document = "contract.pdf";
    p.hit.chunk.page_start = p.hit.chunk.page_end = 3;
    p.hit.chunk.text = "Either party may terminate with 60 days notice.";
    std::vector<ChatMessage> m = rag_messages("How much notice?", {p});
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].role, "system");
    EXPECT_NE(m[0].content.find("[1]"), std::string::npos);
    EXPECT_NE(m[1].content.find("[1] contract.pdf"), std::string::npos) << m[1].content;
    EXPECT_NE(m[1].content.find("60 days"), std::string::npos);
    EXPECT_NE(m[1].content.find("Question: How much notice?"), std::string::npos);
}

std::unique_ptr<ModelRunner> small_runner(int n_ctx) {
    test::ModelSpec s;
    s.matrix_type = s.embd_type = s.output_type = gguf::Type::Q8_0;
    s.n_ctx = 512;
    std::vector<uint8_t> bytes = test::make_model(s).bytes();
    return std::make_unique<ModelRunner>(
        Model::from_file(gguf::File::parse(bytes.data(), bytes.size())), n_ctx, 1);
}

// A second request with the same beginning reuses the cache, and gives what a cold
// runner gives.
TEST(Runner, ReusesThePromptPrefix) {
    auto warm = small_runner(256);
    GenerateOptions o;
    o.max_tokens = 8;
    o.sampling.temperature = 0;
    Generation a = warm->complete("The same long system prompt, then question one", o);
    EXPECT_EQ(a.reused_tokens, 0);
    Generation b = warm->complete("The same long system prompt, then question two", o);
    EXPECT_GE(b.reused_tokens, 40);
    auto cold = small_runner(256);
    Generation c = cold->complete("The same long system prompt, then question two", o);
    EXPECT_EQ(b.text, c.text);
    EXPECT_EQ(b.completion_tokens, c.completion_tokens);
    // The identical prompt again: all but the last token come from the cache.
    Generation d = warm->complete("The same long system prompt, then question two", o);
    EXPECT_EQ(d.reused_tokens, d.prompt_tokens - 1);
    EXPECT_EQ(d.text, c.text);
}

TEST(Runner, LimitsCancellationAndContext) {
    auto r = small_runner(64);
    GenerateOptions o;
    o.max_tokens = 5;
    o.sampling.temperature = 0;
    Generation g = r->complete("abc", o);
    EXPECT_LE(g.completion_tokens, 5);
    if (g.completion_tokens == 5) {
        EXPECT_EQ(g.finish_reason, "length");
    }
    int calls = 0;
    o.max_tokens = 50;
    g = r->complete("abc", o, [&](const std::string&) { return ++calls < 2; });
    EXPECT_EQ(g.finish_reason, "cancelled");
    EXPECT_EQ(calls, 2);
    // max_tokens past the end of the context is cut at the context.
    o.max_tokens = 1000;
    g = r->complete("abc", o);
    EXPECT_LE(g.prompt_tokens + g.completion_tokens, 64);
    // A prompt that does not fit is refused.
    EXPECT_THROW(r->complete(std::string(200, 'x'), o), Error);
    // Chat drops the oldest turns until the conversation fits.
    std::vector<ChatMessage> m = {{"system", "S"}};
    for (int i = 0; i < 10; ++i) {
        m.push_back({"user", std::string(20, 'q')});
        m.push_back({"assistant", std::string(20, 'a')});
    }
    m.push_back({"user", "last"});
    o.max_tokens = 4;
    EXPECT_NO_THROW(r->chat(m, o));
}

}  // namespace
}  // namespace ragd
