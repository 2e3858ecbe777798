// The grammar matcher and the JSON Schema compiler: what compiled schemas accept and
// reject, token masks against a small vocabulary, the termination budget, and schema
// errors.
#include "generate/grammar.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "config/config.h"
#include "generate/json_schema.h"

namespace ragd {
namespace {

using J = nlohmann::ordered_json;

std::shared_ptr<Grammar> compile(const std::string& schema, bool unlisted = false) {
    SchemaOptions o;
    o.allow_unlisted_properties = unlisted;
    return compile_json_schema(J::parse(schema), o);
}

bool full(const std::shared_ptr<Grammar>& g, const std::string& text) {
    GrammarMatcher m(g);
    return m.accept(text) && m.is_complete();
}

std::string error_of(const std::string& schema) {
    try {
        compile(schema);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        return e.what();
    }
    return "";
}

TEST(Grammar, HandBuiltRightRecursionAndPrefixes) {
    auto g = std::make_shared<Grammar>();
    int as = g->add_rule("as");  // as := "" | "a" as
    g->add_alt(as, {});
    g->add_alt(as, {g->byte('a'), Grammar::ref(as)});
    int root = g->add_rule("root");  // root := "<" as ">"
    g->add_alt(root, {g->byte('<'), Grammar::ref(as), g->byte('>')});
    g->finalize(root);
    GrammarMatcher m(g);
    EXPECT_EQ(m.min_remaining(), 2u);
    EXPECT_TRUE(m.accept("<"));
    for (int i = 0; i < 10000; ++i) ASSERT_TRUE(m.accept("a"));  // constant stack depth
    EXPECT_FALSE(m.is_complete());
    EXPECT_EQ(m.min_remaining(), 1u);
    EXPECT_FALSE(m.accept("b"));
    EXPECT_TRUE(m.accept(">"));
    EXPECT_TRUE(m.is_terminal());
    EXPECT_FALSE(m.can_accept("a"));
}

TEST(Grammar, RejectsRulesWithoutBaseCaseAndLeftRecursion) {
    auto g = std::make_shared<Grammar>();
    int r = g->add_rule("loop");
    g->add_alt(r, {g->byte('['), Grammar::ref(r), g->byte(']')});
    EXPECT_THROW(g->finalize(r), Error);
    auto h = std::make_shared<Grammar>();
    int l = h->add_rule("left");
    h->add_alt(l, {Grammar::ref(l), h->byte('a')});
    h->add_alt(l, {h->byte('b')});
    EXPECT_THROW(h->finalize(l), Error);
}

TEST(JsonSchema, TypesAndObjects) {
    auto g = compile(R"({"type":"object","properties":{
        "name":{"type":"string"},"age":{"type":"integer"},"ok":{"type":"boolean"},
        "tags":{"type":"array","items":{"type":"string"}}},
        "required":["name","ok"],"additionalProperties":false})");
    EXPECT_TRUE(full(g, R"({"name":"Ann","ok":true})"));
    EXPECT_TRUE(full(g, R"({"name":"Ann","age":-12,"ok":false,"tags":["a","b"]})"));
    EXPECT_TRUE(full(g, R"({"name":"\u00e9\n\"x\"","ok":true,"tags":[]})"));
    EXPECT_TRUE(full(g, "{\"name\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\",\"ok\":true}"));
    EXPECT_FALSE(full(g, R"({"ok":true})"));                       // required missing
    EXPECT_FALSE(full(g, R"({"ok":true,"name":"x"})"));            // schema order
    EXPECT_FALSE(full(g, R"({"name":"x","ok":true,"z":1})"));      // additional
    EXPECT_FALSE(full(g, R"({"name":"x","age":1.5,"ok":true})"));  // integer
    EXPECT_FALSE(full(g, R"({"name":"x","age":01,"ok":true})"));   // leading zero
    EXPECT_FALSE(full(g, "{\"name\":\"\xC3\",\"ok\":true}"));      // bad UTF-8
    EXPECT_FALSE(full(g, "{\"name\":\"a\x01\",\"ok\":true}"));     // control char
    EXPECT_FALSE(full(g, R"({"name":"\ud800","ok":true})"));       // lone surrogate
    EXPECT_FALSE(full(g, R"({ "name":"x","ok":true})"));           // no whitespace
}

TEST(JsonSchema, AdditionalPropertiesComplementOfDeclaredNames) {
    auto g = compile(R"({"properties":{"a":{"type":"integer"},"ab":{"type":"string"}},
        "additionalProperties":{"type":"boolean"}})");
    EXPECT_TRUE(full(g, R"({"a":1,"ab":"x","abc":true,"b":false})"));
    EXPECT_TRUE(full(g, R"({"x":true})"));
    EXPECT_FALSE(full(g, R"({"a":1,"a":true})"));  // a declared name as an extra
    EXPECT_FALSE(full(g, R"({"ab":"x","ab":true})"));
    EXPECT_FALSE(full(g, R"({"q":1})"));
    EXPECT_TRUE(full(g, "1"));  // no type: other types pass
    auto open = compile(R"({"properties":{"a":{"type":"integer"}}})", true);
    EXPECT_TRUE(full(open, R"({"a":1,"b":[1,{"c":null}]})"));
    auto closed = compile(R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    EXPECT_FALSE(full(closed, R"({"a":1,"b":2})"));  // generation leaves extras out
}

TEST(JsonSchema, EnumConstAnyOfRef) {
    auto g = compile(R"({"type":"object","properties":{
        "unit":{"enum":["mg","ml",null,3]},"v":{"const":{"k":[1,2]}},
        "x":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/pos"}]}},
        "required":["unit","v","x"],
        "$defs":{"pos":{"type":"integer","minimum":1}}})");
    EXPECT_TRUE(full(g, R"({"unit":"mg","v":{"k":[1,2]},"x":null})"));
    EXPECT_TRUE(full(g, R"({"unit":null,"v":{"k":[1,2]},"x":17})"));
    EXPECT_TRUE(full(g, R"({"unit":3,"v":{"k":[1,2]},"x":1})"));
    EXPECT_FALSE(full(g, R"({"unit":"g","v":{"k":[1,2]},"x":1})"));
    EXPECT_FALSE(full(g, R"({"unit":"mg","v":{"k":[1]},"x":1})"));
    EXPECT_FALSE(full(g, R"({"unit":"mg","v":{"k":[1,2]},"x":0})"));
}

TEST(JsonSchema, RecursiveRefWithBaseCase) {
    auto g = compile(R"({"$defs":{"node":{"type":"object","properties":{
        "v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},
        "required":["v"]}},"$ref":"#/$defs/node"})");
    EXPECT_TRUE(full(g, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4}]}]})"));
    EXPECT_FALSE(full(g, R"({"v":1,"kids":[{}]})"));
}

TEST(JsonSchema, IntegerRangesExactly) {
    struct R {
        const char* schema;
        long lo, hi;
    };
    for (const R& r : {R{R"({"type":"integer","minimum":-37,"maximum":1234})", -37, 1234},
                       R{R"({"type":"integer","exclusiveMinimum":0,"maximum":100})", 1, 100},
                       R{R"({"type":"integer","minimum":-1000,"exclusiveMaximum":-7})", -1000, -8},
                       R{R"({"type":"integer","minimum":95,"maximum":105})", 95, 105},
                       R{R"({"type":"integer","minimum":1.5,"maximum":9.5})", 2, 9}}) {
        auto g = compile(r.schema);
        for (long v = -2000; v <= 2000; ++v)
            ASSERT_EQ(full(g, std::to_string(v)), v >= r.lo && v <= r.hi) << r.schema << " " << v;
    }
    auto lo = compile(R"({"type":"integer","minimum":42})");
    for (long v : {42L, 43L, 99L, 100L, 123456789L}) EXPECT_TRUE(full(lo, std::to_string(v)));
    for (long v : {41L, 0L, -42L, -1000L}) EXPECT_FALSE(full(lo, std::to_string(v)));
    auto hi = compile(R"({"type":"integer","maximum":-3})");
    for (long v : {-3L, -4L, -99L, -100000L}) EXPECT_TRUE(full(hi, std::to_string(v)));
    for (long v : {-2L, 0L, 3L}) EXPECT_FALSE(full(hi, std::to_string(v)));
}

TEST(JsonSchema, NumberRangesAreSound) {
    auto g = compile(R"({"type":"number","minimum":-2.5,"maximum":10})");
    for (const char* ok : {"-2", "0", "10", "3.75", "9.999", "-1.5", "0.0"})
        EXPECT_TRUE(full(g, ok)) << ok;
    for (const char* bad : {"-3", "11", "10.5", "-2.6", "1e3", "-2.75"})
        EXPECT_FALSE(full(g, bad)) << bad;
    auto unit = compile(R"({"type":"number","minimum":0,"exclusiveMaximum":1})");
    for (const char* ok : {"0", "0.5", "0.999"}) EXPECT_TRUE(full(unit, ok)) << ok;
    for (const char* bad : {"-0.5", "1", "1.5", "-1"}) EXPECT_FALSE(full(unit, bad)) << bad;
    auto free = compile(R"({"type":"number"})");
    for (const char* ok : {"0", "-0.5", "1e10", "2.5E-3", "12"}) EXPECT_TRUE(full(free, ok));
    for (const char* bad : {"01", ".5", "1.", "+1", "1e"}) EXPECT_FALSE(full(free, bad));
}

TEST(JsonSchema, StringsLengthsAndFormats) {
    auto g = compile(R"({"type":"string","minLength":2,"maxLength":4})");
    EXPECT_FALSE(full(g, R"("a")"));
    EXPECT_TRUE(full(g, R"("ab")"));
    EXPECT_TRUE(full(g, "\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\""));  // code points, not bytes
    EXPECT_TRUE(full(g, R"("\n\t\u0041b")"));
    EXPECT_FALSE(full(g, R"("abcde")"));
    auto d = compile(R"({"type":"string","format":"date"})");
    for (const char* ok : {"\"2024-02-29\"", "\"2000-02-29\"", "\"1999-12-31\"", "\"2023-04-30\""})
        EXPECT_TRUE(full(d, ok)) << ok;
    for (const char* bad : {"\"2023-02-29\"", "\"1900-02-29\"", "\"2023-04-31\"", "\"2023-13-01\"",
                            "\"2023-00-10\"", "\"2023-1-01\"", "\"2023-01-00\""})
        EXPECT_FALSE(full(d, bad)) << bad;
    auto dt = compile(R"({"type":"string","format":"date-time"})");
    EXPECT_TRUE(full(dt, "\"2024-03-01T23:59:59Z\""));
    EXPECT_TRUE(full(dt, "\"2024-03-01T00:00:00.123+05:30\""));
    EXPECT_FALSE(full(dt, "\"2024-03-01T24:00:00Z\""));
    EXPECT_FALSE(full(dt, "\"2024-03-01T10:00:00\""));
}

TEST(JsonSchema, ArraysMinMaxAndTuples) {
    auto g = compile(R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3})");
    EXPECT_FALSE(full(g, "[]"));
    EXPECT_FALSE(full(g, "[1]"));
    EXPECT_TRUE(full(g, "[1,2]"));
    EXPECT_TRUE(full(g, "[1,2,3]"));
    EXPECT_FALSE(full(g, "[1,2,3,4]"));
    auto t = compile(R"({"type":"array","items":[{"type":"string"},{"type":"integer"}],
        "additionalItems":false})");
    EXPECT_TRUE(full(t, R"([])"));
    EXPECT_TRUE(full(t, R"(["a",1])"));
    EXPECT_FALSE(full(t, R"(["a",1,2])"));
    EXPECT_FALSE(full(t, R"([1])"));
    auto p = compile(R"({"type":"array","prefixItems":[{"type":"null"}],"items":{"type":"boolean"},
        "minItems":1})");
    EXPECT_TRUE(full(p, "[null,true,false]"));
    EXPECT_FALSE(full(p, "[]"));
    EXPECT_FALSE(full(p, "[true]"));
}

TEST(JsonSchema, BadSchemasNameTheProblem) {
    EXPECT_NE(error_of(R"({"type":"string","pattern":"a+"})").find("\"pattern\""),
              std::string::npos);
    EXPECT_NE(error_of(R"({"properties":{"x":{"not":{}}}})").find("#/properties/x"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"$ref":"#"})").find("base case"), std::string::npos);
    EXPECT_NE(error_of(R"({"$defs":{"a":{"type":"object","properties":{"b":{"$ref":"#/$defs/a"}},
        "required":["b"]}},"$ref":"#/$defs/a"})")
                  .find("base case"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"anyOf":[{"$ref":"#"},{"type":"null"}]})").find("left recursion"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"$ref":"#/definitions/missing"})").find("does not resolve"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"$ref":"http://x/y.json"})").find("within the schema"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"type":"string","format":"email"})").find("email"), std::string::npos);
    EXPECT_NE(error_of(R"({"type":"integer","minimum":5,"maximum":4})").find("no integer"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"type":"string","maxLength":100000000})").find("maxLength"),
              std::string::npos);
    std::string deep = R"({"type":"string"})";
    for (int i = 0; i < 40; ++i) deep = R"({"type":"array","items":)" + deep + "}";
    EXPECT_NE(error_of(deep).find("nesting deeper"), std::string::npos);
    std::string big = R"({"type":"string","description":")" + std::string(1 << 20, 'x') + "\"}";
    EXPECT_NE(error_of(big).find("over the limit"), std::string::npos);
    std::string many = R"({"type":"object","properties":{)";
    for (int i = 0; i < 10500; ++i)
        many += (i ? "," : "") + std::string("\"p") + std::to_string(i) + "\":{\"type\":\"null\"}";
    many += "}}";
    EXPECT_NE(error_of(many).find("grammar rules"), std::string::npos);
}

// A small vocabulary: all single bytes, some multi-byte pieces, EOS last.
GrammarVocab test_vocab() {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, char(b));
    for (const char* p : {"{\"", "\":", "\",\"", "\"}", "true", "false", "null", "name", "age",
                          "12", "00", "\"}]", "],", "-0", "ab", "2024", "-02-", " the", "é"})
        pieces.emplace_back(p);
    pieces.emplace_back("");  // a special token that adds no text
    pieces.emplace_back("");  // EOS
    return GrammarVocab(pieces, {int32_t(pieces.size() - 1)});
}

TEST(GrammarMask, MaskAgreesWithTokenChecks) {
    GrammarVocab v = test_vocab();
    auto g = compile(R"({"type":"object","properties":{"name":{"type":"string","maxLength":5},
        "age":{"type":"integer","minimum":0,"maximum":120},"d":{"type":"string","format":"date"}},
        "required":["name","age"]})");
    GrammarMatcher m(g);
    std::mt19937 rng(7);
    std::vector<uint8_t> allowed;
    for (int step = 0; step < 200 && !m.is_terminal(); ++step) {
        int budget = 60 - step;
        size_t n = m.fill_mask(v, budget, allowed);
        ASSERT_GT(n, 0u) << "dead end at step " << step;
        std::vector<int32_t> ok;
        for (int32_t id = 0; id < v.n_vocab(); ++id) {
            ASSERT_EQ(allowed[size_t(id)] != 0, m.allows_token(v, id, budget)) << id;
            if (allowed[size_t(id)]) ok.push_back(id);
        }
        int32_t pick = ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng)];
        if (v.is_eog(pick)) break;
        ASSERT_TRUE(m.accept_token(v, pick));
    }
    EXPECT_TRUE(m.is_complete());
}

TEST(GrammarMask, BudgetForcesCompletion) {
    GrammarVocab v = test_vocab();
    auto g = compile(R"({"type":"object","properties":{"a":{"type":"array","items":{
        "type":"object","properties":{"s":{"type":"string"},"n":{"type":"number"}},
        "required":["s","n"]}}},"required":["a"]})");
    std::mt19937 rng(3);
    for (int trial = 0; trial < 20; ++trial) {
        GrammarMatcher m(g);
        const int limit = 40 + trial;
        ASSERT_LE(int(m.min_remaining()), limit);
        std::string text;
        std::vector<uint8_t> allowed;
        int used = 0;
        for (; used < limit && !m.is_terminal(); ++used) {
            size_t n = m.fill_mask(v, limit - used - 1, allowed);
            ASSERT_GT(n, 0u);
            std::vector<int32_t> ok;
            for (int32_t id = 0; id < v.n_vocab(); ++id)
                if (allowed[size_t(id)]) ok.push_back(id);
            int32_t pick = ok[std::uniform_int_distribution<size_t>(0, ok.size() - 1)(rng)];
            if (v.is_eog(pick)) break;
            ASSERT_TRUE(m.accept_token(v, pick));
            text += v.piece(pick);
        }
        EXPECT_TRUE(m.is_complete()) << text;
        EXPECT_NO_THROW({
            auto j = nlohmann::json::parse(text);
            (void)j;
        }) << text;
    }
}

}  // namespace
}  // namespace ragd
