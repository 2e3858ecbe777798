#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "generate/generate.h"

namespace ragd {
namespace {

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    for (auto [b, e] : split_sentences(text)) {
        EXPECT_LT(b, e);
        EXPECT_LE(e, text.size());
        out.push_back(text.substr(b, e - b));
    }
    return out;
}

using V = std::vector<std::string>;

TEST(SplitSentences, EmptyAndBlank) {
    EXPECT_TRUE(split_sentences("").empty());
    EXPECT_TRUE(split_sentences("  \n\n\t \f ").empty());
    EXPECT_TRUE(split_sentences("...  ---  ***").empty());
}

TEST(SplitSentences, BasicPunctuationAndTrim) {
    EXPECT_EQ(split("  One two.  Three four!\tFive six?  "),
              (V{"One two.", "Three four!", "Five six?"}));
    EXPECT_EQ(split("No terminator at the end"), (V{"No terminator at the end"}));
    EXPECT_EQ(split("Wait... What now?! Fine."), (V{"Wait...", "What now?!", "Fine."}));
}

TEST(SplitSentences, ClosingQuotesStayWithTheSentence) {
    EXPECT_EQ(split("He said \"stop.\" Then he left. (See above.) Next."),
              (V{"He said \"stop.\"", "Then he left.", "(See above.)", "Next."}));
    EXPECT_EQ(split("She wrote “done.” Then she left."),
              (V{"She wrote “done.”", "Then she left."}));
}

TEST(SplitSentences, Abbreviations) {
    EXPECT_EQ(split("Dr. Smith met Mr. Jones and Mrs. Brown. Ms. Lee was late."),
              (V{"Dr. Smith met Mr. Jones and Mrs. Brown.", "Ms. Lee was late."}));
    EXPECT_EQ(split("Use a solvent, e.g. ethanol, i.e. alcohol. Then stir."),
              (V{"Use a solvent, e.g. ethanol, i.e. alcohol.", "Then stir."}));
    EXPECT_EQ(split("Take 50 mg. daily. See clause No. 4 vs. clause 5. Done."),
              (V{"Take 50 mg. daily.", "See clause No. 4 vs. clause 5.", "Done."}));
    EXPECT_EQ(split("Acme Inc. and Foo Ltd. signed at 9 a.m. on Main St. in town. Good."),
              (V{"Acme Inc. and Foo Ltd. signed at 9 a.m. on Main St. in town.", "Good."}));
    EXPECT_EQ(split("It weighs approx. 5 kg. The box is red."),
              (V{"It weighs approx. 5 kg.", "The box is red."}));
    // "etc." and "Inc." end a sentence when a capital follows.
    EXPECT_EQ(split("Bring pens, paper, etc. The rest is provided."),
              (V{"Bring pens, paper, etc.", "The rest is provided."}));
    EXPECT_EQ(split("Signed by Acme Co. Payment follows."),
              (V{"Signed by Acme Co.", "Payment follows."}));
}

TEST(SplitSentences, InitialsAndDottedAbbreviations) {
    EXPECT_EQ(split("J. R. Tolkien wrote it. It sold well."),
              (V{"J. R. Tolkien wrote it.", "It sold well."}));
    EXPECT_EQ(split("The meeting ends at 5 p.m. Everyone leaves."),
              (V{"The meeting ends at 5 p.m.", "Everyone leaves."}));
}

TEST(SplitSentences, DecimalsAndNumbers) {
    EXPECT_EQ(split("The dose is 1.5 mg per kg. Increase to 2.25 mg if needed."),
              (V{"The dose is 1.5 mg per kg.", "Increase to 2.25 mg if needed."}));
    EXPECT_EQ(split("The total was 12. Then we left."), (V{"The total was 12.", "Then we left."}));
    EXPECT_EQ(split("Version 3.10.2 is out. Upgrade."), (V{"Version 3.10.2 is out.", "Upgrade."}));
}

TEST(SplitSentences, NumberedClauses) {
    std::string t =
        "12.3 The tenant shall pay rent monthly. Late payment incurs a fee.\n"
        "12.4 The landlord shall repair the roof\n"
        "12.5 Notices must be in writing.";
    EXPECT_EQ(split(t),
              (V{"12.3 The tenant shall pay rent monthly.", "Late payment incurs a fee.",
                 "12.4 The landlord shall repair the roof", "12.5 Notices must be in writing."}));
    // A list number with a dot at the start of a line is not a sentence of its own.
    EXPECT_EQ(split("1. Wash hands. Dry them.\n2. Apply the cream."),
              (V{"1. Wash hands.", "Dry them.", "2. Apply the cream."}));
    EXPECT_EQ(split("The parties agree to:\n(a) pay the rent;\n(b) keep the peace."),
              (V{"The parties agree to:", "(a) pay the rent;", "(b) keep the peace."}));
    // A wrapped line that starts with a number is not a clause.
    EXPECT_EQ(split("The recommended dose is\n12.5 mg twice a day."),
              (V{"The recommended dose is\n12.5 mg twice a day."}));
}

TEST(SplitSentences, LinesParagraphsAndHeadings) {
    // Single newlines are line wraps; blank lines end a paragraph.
    EXPECT_EQ(split("The patient should take\nthe tablet with water\n\nStore below 25 C"),
              (V{"The patient should take\nthe tablet with water", "Store below 25 C"}));
    EXPECT_EQ(split("# Dosage\nTake one tablet daily.\n## Storage\nKeep dry."),
              (V{"Dosage", "Take one tablet daily.", "Storage", "Keep dry."}));
    // A short title-like line followed by a capitalised line is a heading.
    EXPECT_EQ(split("Dosage and administration\nTake one tablet daily."),
              (V{"Dosage and administration", "Take one tablet daily."}));
    // ... but not when it ends like a wrapped sentence.
    EXPECT_EQ(split("Tablets must be taken with the\nWater provided."),
              (V{"Tablets must be taken with the\nWater provided."}));
}

TEST(SplitSentences, BulletItems) {
    std::string t = "Side effects include\n- headache\n- nausea\n* dizziness\n• rash";
    EXPECT_EQ(split(t), (V{"Side effects include", "headache", "nausea", "dizziness", "rash"}));
}

TEST(SplitSentences, PageSeparators) {
    // A page break after a finished sentence ends it.
    std::string t = "End of page one.\n\fStart of page two. More text.";
    EXPECT_EQ(split(t), (V{"End of page one.", "Start of page two.", "More text."}));
    // The spans are byte offsets into the text.
    auto spans = split_sentences(t);
    ASSERT_EQ(spans.size(), 3u);
    EXPECT_EQ(spans[1].first, t.find("Start"));
    // A sentence that runs across the break is one sentence, spanning both pages.
    t = "She does not\n\fmeet the criteria. Next one.";
    EXPECT_EQ(split(t), (V{"She does not\n\fmeet the criteria.", "Next one."}));
}

TEST(SplitSentences, Utf8) {
    std::string t = "Le médecin prescrit 5 mg. L’effet est rapide. 患者は回復した。次の文。";
    EXPECT_EQ(split(t), (V{"Le médecin prescrit 5 mg.", "L’effet est rapide.", "患者は回復した。",
                           "次の文。"}));
    // No-break spaces are trimmed like spaces.
    EXPECT_EQ(split("\xC2\xA0Über alles.\xC2\xA0"), (V{"Über alles."}));
    // Invalid UTF-8 does not crash and stays inside the spans.
    std::string bad = "Bad \xFF\xFE bytes here. Next \xE2\x80 one.";
    EXPECT_EQ(split(bad), (V{"Bad \xFF\xFE bytes here.", "Next \xE2\x80 one."}));
}

}  // namespace
}  // namespace ragd
