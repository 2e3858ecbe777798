// generate/rag: answers written by the model from numbered passages, with the citations
// the answer uses.
#include <algorithm>
#include <cctype>

#include "generate/generate.h"

namespace ragd {

namespace {

const char* kSystemPrompt =
    "You answer questions about the user's documents using only the numbered passages "
    "you are given. After each statement, cite the passages it comes from by their "
    "numbers in square brackets, like [1] or [2][3]. If the passages do not contain the "
    "answer, say that the documents do not say. Be concise.";

// The sentence of text around byte offset at: from the previous sentence end to the next.
std::string sentence_around(const std::string& text, size_t at) {
    size_t begin = 0;
    for (size_t i = at; i > 0; --i)
        if (text[i - 1] == '.' || text[i - 1] == '\n' || text[i - 1] == '?' || text[i - 1] == '!') {
            begin = i;
            break;
        }
    return text.substr(begin, at - begin);
}

}  // namespace

std::vector<ChatMessage> rag_messages(const std::string& question,
                                      const std::vector<Passage>& passages) {
    std::string user =
        passages.empty() ? "There are no passages.\n" : "Passages:\n\n" + format_context(passages);
    user += "\nQuestion: " + question;
    return {{"system", kSystemPrompt}, {"user", user}};
}

std::vector<int> cited_numbers(const std::string& text) {
    // A citation is '[' numbers of 1-3 digits separated by ',' or spaces ']'.
    std::vector<int> out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '[') continue;
        size_t j = i + 1;
        std::vector<int> nums;
        bool valid = false;
        while (j < text.size()) {
            size_t start = j;
            int n = 0;
            while (j < text.size() && j - start < 4 &&
                   std::isdigit(static_cast<unsigned char>(text[j])))
                n = n * 10 + (text[j++] - '0');
            if (j == start || j - start > 3) break;
            nums.push_back(n);
            while (j < text.size() && (text[j] == ',' || text[j] == ' ')) ++j;
            if (j < text.size() && text[j] == ']') {
                valid = true;
                break;
            }
        }
        if (!valid) continue;
        for (int n : nums)
            if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
}

Answer model_answer(ModelRunner& runner, const std::string& question, std::vector<Passage> passages,
                    const GenerateOptions& options, const OnText& on_text, Generation* stats) {
    std::vector<int32_t> prompt;
    for (;;) {
        prompt = runner.tokenize_prompt(
            apply_chat_template(runner.chat_format(), rag_messages(question, passages), true));
        if (int(prompt.size()) + options.max_tokens <= runner.n_ctx() || passages.empty()) break;
        passages.pop_back();
    }
    GenerateOptions opts = options;
    for (const std::string& s : chat_stop_strings(runner.chat_format())) opts.stop.push_back(s);
    Generation g = runner.complete(prompt, opts, on_text);
    if (stats) *stats = g;

    Answer ans;
    ans.text = g.text;
    for (int n : cited_numbers(g.text)) {
        auto p = std::find_if(passages.begin(), passages.end(),
                              [&](const Passage& x) { return x.number == n; });
        if (p == passages.end()) continue;
        // Quote the passage sentence closest to what the answer says where it cites [n].
        std::string marker = "[";  // (built in two steps: GCC 12 warns on "[" + string)
        marker += std::to_string(n);
        size_t at = g.text.find(marker);
        if (at == std::string::npos) at = g.text.find(std::to_string(n));
        std::string claim = sentence_around(g.text, at == std::string::npos ? 0 : at);
        Answer best = extractive_answer(claim.empty() ? question : claim, {*p}, 1);
        if (!best.citations.empty()) {
            ans.citations.push_back(best.citations[0]);
            continue;
        }
        ans.citations.push_back(passage_citation(*p));  // no sentence overlaps: the whole passage
    }
    return ans;
}

}  // namespace ragd
