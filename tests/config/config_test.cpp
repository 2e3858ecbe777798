#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace ragd {
namespace {

TEST(Config, DataDirFlagWinsOverEnvironment) {
    setenv("RAGD_DATA", "/from/env", 1);
    EXPECT_EQ(resolve_data_dir("/from/flag"), "/from/flag");
    EXPECT_EQ(resolve_data_dir(""), "/from/env");
    unsetenv("RAGD_DATA");
    EXPECT_EQ(resolve_data_dir(""), "./ragd-data");
    setenv("RAGD_DATA", "", 1);  // empty counts as unset
    EXPECT_EQ(resolve_data_dir(""), "./ragd-data");
    unsetenv("RAGD_DATA");
}

TEST(Config, ApproxTokensCountsWordsPunctuationAndLongWords) {
    EXPECT_EQ(approx_tokens(""), 0);
    EXPECT_EQ(approx_tokens("   \n\t "), 0);
    EXPECT_EQ(approx_tokens("hello world"), 2);
    EXPECT_EQ(approx_tokens("Hello, world."), 4);
    // 18 letters: 1 + (18 - 1) / 6 = 3 tokens
    EXPECT_EQ(approx_tokens("pharmacokinetically"), 1 + (19 - 1) / 6);
}

}  // namespace
}  // namespace ragd

namespace ragd {
namespace {

TEST(Config, ParseIntAcceptsOnlyWholeNumbersInRange) {
    EXPECT_EQ(parse_int("-k", "5", 1, 10), 5);
    EXPECT_EQ(parse_int("-k", "-3", -5, 10), -3);
    for (const char* bad : {"", "abc", "5x", "1.5", "0", "11", "99999999999999999999999"})
        EXPECT_THROW(parse_int("-k", bad, 1, 10), Error) << bad;
    try {
        parse_int("--port", "http", 0, 65535);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("--port"), std::string::npos);
    }
}

TEST(Config, ModelEnvironmentFillsOnlyUnsetKeys) {
    setenv("RAGD_EMBED_MODEL", "/env/e.gguf", 1);
    setenv("RAGD_RERANK_MODEL", "/env/r.gguf", 1);
    Config cfg;
    EXPECT_EQ(cfg.rerank_top_n, 50);
    apply_model_env(&cfg);
    EXPECT_EQ(cfg.embed_model, "/env/e.gguf");
    EXPECT_EQ(cfg.rerank_model, "/env/r.gguf");
    Config flagged;
    flagged.embed_model = kBuiltinEmbedder;
    flagged.rerank_model = "/flag/r.gguf";
    apply_model_env(&flagged);
    EXPECT_EQ(flagged.embed_model, "builtin");
    EXPECT_EQ(flagged.rerank_model, "/flag/r.gguf");
    setenv("RAGD_EMBED_MODEL", "", 1);  // empty counts as unset
    unsetenv("RAGD_RERANK_MODEL");
    Config none;
    apply_model_env(&none);
    EXPECT_EQ(none.embed_model, "");
    EXPECT_EQ(none.rerank_model, "");
    unsetenv("RAGD_EMBED_MODEL");
}

}  // namespace
}  // namespace ragd
