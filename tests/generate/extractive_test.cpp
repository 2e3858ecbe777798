#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "generate/generate.h"

namespace ragd {
namespace {

// A document text built like the store builds it: pages joined by "\n\f".
struct Doc {
    int64_t id;
    std::string name;
    std::vector<std::string> pages;
    std::string text;

    Doc(int64_t id_, std::string name_, std::vector<std::string> pages_)
        : id(id_), name(std::move(name_)), pages(std::move(pages_)) {
        for (size_t i = 0; i < pages.size(); i++) {
            if (i > 0) text += "\n\f";
            text += pages[i];
        }
    }
    int page_of(int64_t offset) const {
        int page = 1;
        for (int64_t i = 0; i < offset; i++) page += text[i] == '\f';
        return page;
    }
    // A passage whose chunk is text[start, end), consistent in every field.
    Passage passage(int number, int64_t chunk_id, int64_t start, int64_t end) const {
        Passage p;
        p.number = number;
        ChunkRow& c = p.hit.chunk;
        c.id = chunk_id;
        c.document_id = id;
        c.start = start;
        c.end = end;
        c.text = text.substr(start, end - start);
        c.page_start = page_of(start);
        c.page_end = page_of(end > start ? end - 1 : start);
        c.document = name;
        c.path = "/docs/" + name;
        return p;
    }
    Passage whole(int number, int64_t chunk_id) const {
        return passage(number, chunk_id, 0, static_cast<int64_t>(text.size()));
    }
};

void expect_consistent(const Answer& a, const std::vector<const Doc*>& docs) {
    for (const Citation& c : a.citations) {
        const Doc* d = nullptr;
        for (const Doc* x : docs) {
            if (x->id == c.document_id) d = x;
        }
        ASSERT_NE(d, nullptr);
        ASSERT_LE(c.start, c.end);
        ASSERT_LE(c.end, static_cast<int64_t>(d->text.size()));
        EXPECT_EQ(c.quote, d->text.substr(c.start, c.end - c.start));
        EXPECT_EQ(c.page, d->page_of(c.start));
        EXPECT_EQ(c.document, d->name);
        EXPECT_EQ(c.path, "/docs/" + d->name);
        EXPECT_GT(c.score, 0);
        EXPECT_NE(a.text.find(" [" + std::to_string(c.number) + "]"), std::string::npos);
    }
}

const char kNotFound[] = "No answer found in the indexed documents.";

TEST(ExtractiveAnswer, PicksTheMatchingSentence) {
    Doc leaflet(7, "leaflet.pdf",
                {"Ibuprofen is a painkiller. It belongs to a group of medicines called NSAIDs.",
                 "The maximum daily dose of ibuprofen for adults is 1200 mg. Do not exceed "
                 "the stated dose. Take the tablets with food.",
                 "Store below 25 C. Keep out of the reach of children."});
    Doc other(9, "notes.txt", {"The weather was mild in March. Rain fell on most days."});
    std::vector<Passage> ps = {leaflet.whole(1, 100), other.whole(2, 200)};

    Answer a = extractive_answer("What is the maximum daily dose of ibuprofen?", ps, 1);
    ASSERT_EQ(a.citations.size(), 1u);
    const Citation& c = a.citations[0];
    EXPECT_EQ(c.quote, "The maximum daily dose of ibuprofen for adults is 1200 mg.");
    EXPECT_EQ(c.number, 1);
    EXPECT_EQ(c.chunk_id, 100);
    EXPECT_EQ(c.document_id, 7);
    EXPECT_EQ(c.page, 2);
    EXPECT_EQ(a.text, c.quote + " [1]");
    expect_consistent(a, {&leaflet, &other});
}

TEST(ExtractiveAnswer, QuoteAndPageFollowTheChunkSpanAcrossPages) {
    Doc d(3, "contract.pdf",
          {"1. Parties. This lease is between Alice and Bob.",
           "2. Rent. The rent is 900 euros per month.",
           "3. Deposit. The tenant pays a deposit of two months rent before moving in."});
    // A chunk that starts in the middle of page 2 and ends on page 3.
    int64_t start = static_cast<int64_t>(d.text.find("The rent"));
    Passage p = d.passage(1, 42, start, static_cast<int64_t>(d.text.size()));
    ASSERT_EQ(p.hit.chunk.page_start, 2);
    ASSERT_EQ(p.hit.chunk.page_end, 3);

    Answer a = extractive_answer("How large is the deposit the tenant pays?", {p}, 1);
    ASSERT_EQ(a.citations.size(), 1u);
    const Citation& c = a.citations[0];
    EXPECT_EQ(c.quote, "The tenant pays a deposit of two months rent before moving in.");
    EXPECT_EQ(c.page, 3);
    EXPECT_EQ(c.start, static_cast<int64_t>(d.text.find("The tenant pays")));
    EXPECT_EQ(c.end, c.start + static_cast<int64_t>(c.quote.size()));
    expect_consistent(a, {&d});
}

TEST(ExtractiveAnswer, NothingFound) {
    Doc d(1, "a.txt", {"Cats sleep most of the day. Dogs like to walk."});
    std::vector<Passage> ps = {d.whole(1, 1)};
    for (const Answer& a :
         {extractive_answer("What is the boiling point of mercury?", ps),
          extractive_answer("dose", {}), extractive_answer("What is it and where is it?", ps),
          extractive_answer("", ps)}) {
        EXPECT_EQ(a.text, kNotFound);
        EXPECT_TRUE(a.citations.empty());
    }
    Passage empty = d.whole(1, 1);
    empty.hit.chunk.text = " \n\f ";
    EXPECT_EQ(extractive_answer("cats", {empty}).text, kNotFound);
}

TEST(ExtractiveAnswer, StemsAndCaseMatch) {
    Doc d(1, "a.txt", {"Patients were dosed twice daily. Nothing else happened here."});
    Answer a = extractive_answer("DOSING of the patient", {d.whole(1, 5)});
    ASSERT_EQ(a.citations.size(), 1u);
    EXPECT_EQ(a.citations[0].quote, "Patients were dosed twice daily.");
}

TEST(ExtractiveAnswer, OrderLimitAndDistinctSentences) {
    Doc d(1, "guide.md",
          {"Aspirin thins the blood. The sky is blue today. Aspirin can upset the stomach "
           "lining. Water boils at 100 degrees. Aspirin was first sold by Bayer in 1899."});
    int64_t cut = static_cast<int64_t>(d.text.find("Aspirin can"));
    int64_t overlap_end = static_cast<int64_t>(d.text.find("Water boils"));
    // Passage 1 is the second half; passage 2 the first half and, overlapping passage 1,
    // the sentence at the cut.
    Passage p1 = d.passage(1, 11, cut, static_cast<int64_t>(d.text.size()));
    Passage p2 = d.passage(2, 10, 0, overlap_end);

    // Four sentences match but one is shared: three distinct ones come back, ordered by
    // passage number, then position.
    Answer a = extractive_answer("aspirin", {p1, p2}, 4);
    ASSERT_EQ(a.citations.size(), 3u);
    EXPECT_EQ(a.citations[0].quote, "Aspirin can upset the stomach lining.");
    EXPECT_EQ(a.citations[0].number, 1);
    EXPECT_EQ(a.citations[1].quote, "Aspirin was first sold by Bayer in 1899.");
    EXPECT_EQ(a.citations[1].number, 1);
    EXPECT_EQ(a.citations[2].quote, "Aspirin thins the blood.");
    EXPECT_EQ(a.citations[2].number, 2);
    EXPECT_EQ(a.text,
              "Aspirin can upset the stomach lining. [1] Aspirin was first sold by Bayer in "
              "1899. [1] Aspirin thins the blood. [2]");
    expect_consistent(a, {&d});

    Answer two = extractive_answer("aspirin", {p1, p2}, 2);
    EXPECT_EQ(two.citations.size(), 2u);
    EXPECT_THROW(extractive_answer("aspirin", {p1, p2}, 0), Error);
}

TEST(ExtractiveAnswer, RarerWordsAndBetterPassagesWin) {
    Doc d1(1, "a.txt", {"The contract term is five years from signing."});
    Doc d2(2, "b.txt", {"The contract may be renewed by written notice of termination."});
    Doc d3(3, "c.txt", {"This contract is governed by the laws of France."});
    // "contract" is everywhere, "renewed" only in d2: the renewal sentence wins even from
    // a worse-ranked passage.
    std::vector<Passage> ps = {d1.whole(1, 1), d3.whole(2, 3), d2.whole(3, 2)};
    Answer a = extractive_answer("Can the contract be renewed?", ps, 1);
    ASSERT_EQ(a.citations.size(), 1u);
    EXPECT_EQ(a.citations[0].chunk_id, 2);
    EXPECT_EQ(a.citations[0].number, 3);

    // Equal matches: the better-ranked passage wins.
    Doc e1(4, "x.txt", {"Refunds are issued within thirty days of purchase."});
    Doc e2(5, "y.txt", {"Refunds are issued within thirty days of purchase."});
    Answer b = extractive_answer("refunds", {e2.whole(1, 50), e1.whole(2, 40)}, 1);
    ASSERT_EQ(b.citations.size(), 1u);
    EXPECT_EQ(b.citations[0].chunk_id, 50);
}

TEST(ExtractiveAnswer, VeryShortSentencesArePenalized) {
    Doc d(1, "a.txt", {"Ibuprofen dose. The ibuprofen dose for adults is 400 mg."});
    Answer a = extractive_answer("ibuprofen dose", {d.whole(1, 1)}, 1);
    ASSERT_EQ(a.citations.size(), 1u);
    EXPECT_EQ(a.citations[0].quote, "The ibuprofen dose for adults is 400 mg.");
}

TEST(ExtractiveAnswer, Utf8Text) {
    Doc d(1, "notice.txt",
          {"Le médicament se prend à jeun. La posologie est de 2 comprimés.",
           "Ne pas dépasser la dose prescrite. 薬は食後に服用してください。"});
    Answer a = extractive_answer("Quelle est la POSOLOGIE du Médicament ?", {d.whole(1, 1)}, 2);
    ASSERT_EQ(a.citations.size(), 2u);
    EXPECT_EQ(a.citations[0].quote, "Le médicament se prend à jeun.");
    EXPECT_EQ(a.citations[1].quote, "La posologie est de 2 comprimés.");
    expect_consistent(a, {&d});

    Answer j = extractive_answer("薬は食後に服用してください", {d.whole(1, 1)}, 1);
    ASSERT_EQ(j.citations.size(), 1u);
    EXPECT_EQ(j.citations[0].quote, "薬は食後に服用してください。");
    EXPECT_EQ(j.citations[0].page, 2);
    expect_consistent(j, {&d});
}

TEST(ExtractiveAnswer, AnswerTextSqueezesWhitespace) {
    Doc d(1, "a.txt", {"The filter must be\nreplaced every   six months."});
    Answer a = extractive_answer("When is the filter replaced?", {d.whole(4, 1)}, 1);
    ASSERT_EQ(a.citations.size(), 1u);
    EXPECT_EQ(a.citations[0].quote, "The filter must be\nreplaced every   six months.");
    EXPECT_EQ(a.text, "The filter must be replaced every six months. [4]");
}

}  // namespace
}  // namespace ragd
