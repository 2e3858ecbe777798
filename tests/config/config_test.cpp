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
