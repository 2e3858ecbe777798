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

}  // namespace
}  // namespace ragd
