// Structured extraction: evidence for filled fields (exact, normalized dates and numbers,
// sentence overlap, nothing fabricated), passages of raw text, and the whole pipeline on
// a random-weight model (valid data, evidence keyed by every filled leaf).
#include "generate/extract.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "tests/generate/model_writer.h"

namespace ragd {
namespace {

using json = nlohmann::json;

std::vector<Passage> contract_passages() {
    const std::string text =
        "This Agreement is made on 1 March 2024 between Acme Ltd and Beta LLC. Either party may "
        "terminate it by giving 60 days written notice. It is governed by the laws of England "
        "and Wales. The fee is 12,500 euros, payable in 300 days.";
    std::vector<Passage> ps = text_passages(text, 1000);
    for (Passage& p : ps) {
        p.hit.chunk.start += 1000;  // as if the chunk started at byte 1000 of a document
        p.hit.chunk.document = "contract.pdf";
        p.hit.chunk.document_id = 7;
    }
    return ps;
}

TEST(Extract, EvidenceFindsValuesAndNeverFabricates) {
    auto ps = contract_passages();
    const std::string& text = ps[0].hit.chunk.text;
    json data = {{"parties", {"Acme Ltd", "beta llc"}},
                 {"effective_date", "2024-03-01"},
                 {"notice_days", 60},
                 {"fee", 12500},
                 {"law", "laws of England and Wales"},
                 {"summary", "governed by England laws"},
                 {"missing", "Gamma Corp"},
                 {"days", 30},
                 {"signed", true},
                 {"none", nullptr}};
    json ev = extraction_evidence(data, ps);
    auto quote = [&](const std::string& ptr) {
        EXPECT_TRUE(ev.contains(ptr)) << ptr;
        if (!ev.contains(ptr) || ev[ptr].empty()) return std::string("<none>");
        const json& c = ev[ptr][0];
        EXPECT_EQ(c["document_id"], 7);
        EXPECT_EQ(c["document"], "contract.pdf");
        // start/end are document offsets of the quoted text.
        EXPECT_EQ(text.substr(size_t(c["start"].get<int64_t>() - 1000),
                              size_t(c["end"].get<int64_t>() - c["start"].get<int64_t>())),
                  c["quote"].get<std::string>());
        return c["quote"].get<std::string>();
    };
    EXPECT_EQ(quote("/parties/0"), "Acme Ltd");
    EXPECT_EQ(quote("/parties/1"), "Beta LLC");  // case aside
    EXPECT_EQ(quote("/effective_date"), "1 March 2024");
    EXPECT_EQ(ev["/effective_date"][0]["match"], "normalized");
    EXPECT_EQ(quote("/notice_days"), "60");
    EXPECT_EQ(quote("/fee"), "12,500");
    EXPECT_EQ(quote("/law"), "laws of England and Wales");
    EXPECT_EQ(ev["/summary"][0]["match"], "overlap");
    EXPECT_TRUE(ev["/missing"].empty());
    EXPECT_TRUE(ev["/days"].empty());  // "30" is not in "300"
    EXPECT_TRUE(ev["/signed"].empty());
    EXPECT_FALSE(ev.contains("/none"));
}

TEST(Extract, TextPassagesCoverTheTextWithinTheBudget) {
    std::string text;
    for (int i = 0; i < 40; ++i) text += "Paragraph " + std::to_string(i) + " says something.\n\n";
    auto all = text_passages(text, 100000);
    std::string joined;
    for (const Passage& p : all) {
        EXPECT_EQ(text.substr(size_t(p.hit.chunk.start), p.hit.chunk.text.size()),
                  p.hit.chunk.text);
        joined += p.hit.chunk.text;
    }
    EXPECT_EQ(joined, text);
    auto some = text_passages(text, 50);  // about 200 bytes
    size_t bytes = 0;
    for (const Passage& p : some) bytes += p.hit.chunk.text.size();
    EXPECT_LE(bytes, 200u);
    EXPECT_GT(bytes, 0u);
}

TEST(Extract, PipelineOnARandomModelGivesValidDataAndEvidence) {
    test::ModelSpec s;
    s.arch = "qwen2";
    s.n_embd = 64;
    s.n_layer = 1;
    s.n_ff = 128;
    s.n_ctx = 1024;
    std::vector<uint8_t> bytes = test::make_model(s).bytes();
    ModelRunner runner(Model::from_file(gguf::File::parse(bytes.data(), bytes.size())), 1024, 1);
    nlohmann::ordered_json schema = nlohmann::ordered_json::parse(R"({"type":"object",
        "properties":{"medications":{"type":"array","maxItems":2,"items":{"type":"object",
        "properties":{"name":{"type":"string","maxLength":8},"dose":{"type":"number","minimum":0,
        "maximum":1000},"unit":{"enum":["mg","ml"]},"frequency":{"type":"string","maxLength":6}},
        "required":["name","dose","unit"],"additionalProperties":false}}},
        "required":["medications"],"additionalProperties":false})");
    auto ps = text_passages("Discharge: metformin 500 mg twice daily; aspirin 75 mg daily.", 500);
    GenerateOptions o;
    o.max_tokens = 120;
    o.sampling.temperature = 0.9f;
    o.sampling.seed = 4;
    Extraction e = extract(runner, schema, "list medications", ps, o);
    ASSERT_TRUE(e.data.contains("medications"));
    EXPECT_TRUE(e.data["medications"].is_array());
    // Every non-null leaf has an evidence entry (possibly empty).
    for (size_t i = 0; i < e.data["medications"].size(); ++i) {
        const auto& m = e.data["medications"][i];
        ASSERT_TRUE(m.contains("name") && m.contains("dose") && m.contains("unit"));
        EXPECT_TRUE(e.evidence.contains("/medications/" + std::to_string(i) + "/name"));
    }
    // A bad schema is an InvalidArgument before anything runs.
    EXPECT_THROW(extract(runner, nlohmann::ordered_json::parse(R"({"not":{}})"), "", ps, o), Error);

    // Passages chosen by a token estimate that the model counts higher than the context
    // holds (the test vocabulary is mostly single bytes): the last ones are dropped until
    // the prompt fits, instead of failing.
    std::string long_text;
    for (int i = 0; i < 40; ++i)
        long_text += "Paragraph " + std::to_string(i) + ": aspirin 75 mg daily, reviewed.\n\n";
    auto many = text_passages(long_text, 100000);
    size_t chars = 0;
    for (const Passage& p : many) chars += p.hit.chunk.text.size();
    ASSERT_GT(chars, 1200u);  // more bytes than the 1,024-token context
    o.max_tokens = 100;
    Extraction fit = extract(runner, schema, "list medications", many, o);
    EXPECT_TRUE(fit.data.contains("medications"));
    EXPECT_LE(fit.stats.prompt_tokens + 100, runner.n_ctx());
}

}  // namespace
}  // namespace ragd
