#include <gtest/gtest.h>

#include "ingest/pdf.h"

namespace ragd {
namespace {

TEST(PageFurniture, RemovesRepeatedHeadersFootersAndPageNumbers) {
    const char* body[4] = {"The parties agree\nas follows.", "Fees are due\nin thirty days.",
                           "Either party may\nterminate.", "Delaware law\ngoverns."};
    std::vector<std::string> pages;
    for (int p = 1; p <= 4; ++p)
        pages.push_back("ACME Corp - Confidential\n\n" + std::string(body[p - 1]) + "\n\nPage " +
                        std::to_string(p) + " of 4");
    strip_page_furniture(pages);
    for (int p = 1; p <= 4; ++p) EXPECT_EQ(pages[p - 1], body[p - 1]);
}

TEST(PageFurniture, BarePageNumbersGoEvenWhenTheyDoNotRepeatInShape) {
    std::vector<std::string> pages = {"Intro text.\n\n- 1 -", "More text.\n\nii", "Last.\n12"};
    strip_page_furniture(pages);
    EXPECT_EQ(pages[0], "Intro text.");
    EXPECT_EQ(pages[1], "More text.");
    EXPECT_EQ(pages[2], "Last.");
}

TEST(PageFurniture, KeepsBodyLinesAndLinesThatRepeatRarely) {
    // "Section 2" heads one page of five: not furniture. A line that repeats on every page
    // but lies behind a body line (not at the edge) stays.
    const char* first[5] = {"Alpha begins", "Beta follows", "Gamma next", "Delta then", "Omega"};
    const char* last[5] = {"ends one", "ends two", "ends three", "ends four", "ends five"};
    std::vector<std::string> pages;
    for (int p = 0; p < 5; ++p)
        pages.push_back(std::string(p == 1 ? "Section 2\n" : "") + first[p] +
                        "\nthe same second line\n" + last[p]);
    std::vector<std::string> before = pages;
    strip_page_furniture(pages);
    EXPECT_EQ(pages, before);
}

TEST(PageFurniture, SinglePageAndEmptyPagesAreSafe) {
    std::vector<std::string> one = {"Title\nbody\n1"};
    strip_page_furniture(one);
    EXPECT_EQ(one[0], "Title\nbody\n1");
    std::vector<std::string> empty = {"", "", "\n\n"};
    strip_page_furniture(empty);
    EXPECT_EQ(empty[0], "");
    std::vector<std::string> only_furniture = {"Page 1 of 2", "Page 2 of 2"};
    strip_page_furniture(only_furniture);
    EXPECT_EQ(only_furniture[0], "");
    EXPECT_EQ(only_furniture[1], "");
}

}  // namespace
}  // namespace ragd
