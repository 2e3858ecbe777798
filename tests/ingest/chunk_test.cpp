// chunk_document: the span, coverage, size and page invariants, checked on hand-made and on
// random texts, plus the boundaries it prefers and pathological inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ingest/ingest.h"

namespace ragd {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_continuation(char c) {
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Checks every invariant chunk_document promises; returns a description of the first
// violation, or "" if none.
std::string check_invariants(const std::vector<std::string>& pages,
                             const std::vector<NewChunk>& chunks, int target, int overlap) {
    const std::string text = join_pages(pages);
    std::vector<int64_t> page_start;  // computed independently of the chunker
    for (size_t i = 0, off = 0; i < pages.size(); off += pages[i].size() + 2, ++i)
        page_start.push_back(static_cast<int64_t>(off));
    auto page_of = [&](int64_t pos) {
        int p = 0;
        while (p + 1 < static_cast<int>(page_start.size()) && page_start[p + 1] <= pos) ++p;
        return p + 1;
    };
    std::vector<bool> covered(text.size(), false);
    for (size_t k = 0; k < chunks.size(); ++k) {
        const NewChunk& c = chunks[k];
        std::string at = "chunk " + std::to_string(k) + ": ";
        if (c.start < 0 || c.start >= c.end || c.end > static_cast<int64_t>(text.size()))
            return at + "bad span";
        if (text.compare(c.start, c.end - c.start, c.text) != 0 ||
            c.text.size() != static_cast<size_t>(c.end - c.start))
            return at + "text is not the span";
        if (is_space(c.text.front()) || is_space(c.text.back()))
            return at + "starts or ends with whitespace";
        if (is_continuation(text[c.start]) ||
            (c.end < static_cast<int64_t>(text.size()) && is_continuation(text[c.end])))
            return at + "cuts a UTF-8 character";
        if (c.n_tokens != approx_tokens(c.text)) return at + "n_tokens is not approx_tokens";
        if (c.n_tokens < 1 || c.n_tokens > target)
            return at + "n_tokens " + std::to_string(c.n_tokens) + " out of range";
        if (c.page_start != page_of(c.start) || c.page_end != page_of(c.end - 1))
            return at + "wrong pages";
        if (k > 0) {
            const NewChunk& prev = chunks[k - 1];
            if (c.start <= prev.start || c.end <= prev.end) return at + "no progress";
            if (c.start < prev.end) {
                int shared = approx_tokens(text.data() + c.start, prev.end - c.start);
                if (shared > overlap + overlap / 2) return at + "overlap too large";
            }
        }
        for (int64_t i = c.start; i < c.end; ++i) covered[i] = true;
    }
    for (size_t i = 0; i < text.size(); ++i)
        if (!covered[i] && !is_space(text[i])) return "byte " + std::to_string(i) + " not covered";
    return "";
}

// Random prose: sentences of words (some long, some multi-byte), punctuation, line breaks,
// paragraphs, whitespace runs, and pages (some empty).
std::vector<std::string> random_pages(std::mt19937& rng, bool pathological) {
    static const char* words[] = {
        "the",    "of",         "contract",      "party",
        "shall",  "notice",     "Z\xC3\xBCrich", "\xE4\xB8\xAD\xE6\x96\x87",
        "data",   "3.14",       "e.g.",          "(see",
        "below)", "\"quoted\"", "end-to-end",    "\xF0\x9F\x98\x80",
        "a"};
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    std::vector<std::string> pages(1 + pick(4));
    for (std::string& page : pages) {
        if (pick(6) == 0) continue;  // empty page
        int sentences = pick(60);
        for (int s = 0; s < sentences; ++s) {
            int n = 1 + pick(30);
            for (int w = 0; w < n; ++w) {
                if (w > 0) page += pick(20) == 0 ? "  " : " ";
                if (pathological && pick(200) == 0) {
                    page += std::string(50 + pick(3000), pick(2) ? 'x' : 'y');
                } else if (pathological && pick(300) == 0) {
                    page += std::string(1 + pick(4000), "!-.,"[pick(4)]);
                } else {
                    page += words[pick(sizeof words / sizeof *words)];
                }
                if (pick(15) == 0) page += ",";
            }
            page += ".!?"[pick(3)];
            int gap = pick(10);
            if (gap == 0)
                page += "\n\n";
            else if (gap == 1)
                page += "\n";
            else if (pathological && gap == 2)
                page += std::string(pick(5000), ' ');
            else
                page += " ";
        }
    }
    return pages;
}

TEST(Chunk, ValidatesArguments) {
    std::vector<std::string> pages = {"Some text."};
    EXPECT_THROW(chunk_document(pages, 15, 0), Error);
    EXPECT_THROW(chunk_document(pages, 0, 0), Error);
    EXPECT_THROW(chunk_document(pages, 100, -1), Error);
    EXPECT_THROW(chunk_document(pages, 100, 50), Error);
    EXPECT_NO_THROW(chunk_document(pages, 100, 49));
    EXPECT_NO_THROW(chunk_document(pages, 16, 7));
    try {
        chunk_document(pages, 100, 60);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Error::Code::InvalidArgument);
    }
}

TEST(Chunk, JoinPages) {
    EXPECT_EQ(join_pages({}), "");
    EXPECT_EQ(join_pages({"a"}), "a");
    EXPECT_EQ(join_pages({"a", "", "b"}), "a\n\f\n\fb");
}

TEST(Chunk, EmptyAndBlankGiveNoChunks) {
    EXPECT_TRUE(chunk_document({}, 100, 10).empty());
    EXPECT_TRUE(chunk_document({""}, 100, 10).empty());
    EXPECT_TRUE(chunk_document({"", " \n\t ", ""}, 100, 10).empty());
}

TEST(Chunk, ShortTextIsOneTrimmedChunk) {
    std::vector<std::string> pages = {"\n  Hello there. Second sentence!  \n"};
    auto chunks = chunk_document(pages, 100, 10);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].text, "Hello there. Second sentence!");
    EXPECT_EQ(chunks[0].start, 3);
    EXPECT_EQ(chunks[0].page_start, 1);
    EXPECT_EQ(chunks[0].page_end, 1);
    EXPECT_EQ(chunks[0].n_tokens, approx_tokens("Hello there. Second sentence!"));
}

TEST(Chunk, PrefersParagraphBoundaries) {
    // Paragraphs of about 30 tokens, target 100: every chunk ends where a paragraph ends.
    std::string text;
    for (int p = 0; p < 40; ++p) {
        for (int s = 0; s < 3; ++s) text += "Word word word word word word word word word. ";
        text.back() = '\n';
        text += "\n";
    }
    auto chunks = chunk_document({text}, 100, 0);
    ASSERT_GT(chunks.size(), 5u);
    for (const NewChunk& c : chunks) {
        EXPECT_TRUE(c.end == static_cast<int64_t>(text.size()) - 2 ||
                    text.compare(c.end, 2, "\n\n") == 0)
            << c.end;
        if (&c != &chunks.back()) {
            EXPECT_GE(c.n_tokens, 50);
        }
    }
    EXPECT_EQ(check_invariants({text}, chunks, 100, 0), "");
}

TEST(Chunk, PrefersSentencesAndOverlapsAtSentences) {
    // One paragraph of 10-token sentences.
    std::string text;
    for (int s = 0; s < 200; ++s)
        text += "This is sentence number " + std::to_string(s) + " of many here. ";
    auto chunks = chunk_document({text}, 100, 20);
    ASSERT_GT(chunks.size(), 10u);
    for (size_t k = 0; k < chunks.size(); ++k) {
        const NewChunk& c = chunks[k];
        EXPECT_EQ(c.text.back(), '.') << k;
        EXPECT_EQ(c.text.substr(0, 5), "This ") << k;
        if (k > 0) {
            int shared = approx_tokens(text.data() + c.start, chunks[k - 1].end - c.start);
            EXPECT_GE(shared, 10) << k;
            EXPECT_LE(shared, 30) << k;
        }
    }
    EXPECT_EQ(check_invariants({text}, chunks, 100, 20), "");
}

TEST(Chunk, WordBoundariesWhenNoSentences) {
    std::string text;
    for (int i = 0; i < 5000; ++i) text += "word" + std::to_string(i % 97) + " ";
    auto chunks = chunk_document({text}, 64, 8);
    for (size_t k = 0; k + 1 < chunks.size(); ++k) {
        EXPECT_GE(chunks[k].n_tokens, 56) << k;  // word breaks are everywhere: nearly full
        EXPECT_EQ(text[chunks[k].end], ' ');
    }
    EXPECT_EQ(check_invariants({text}, chunks, 64, 8), "");
}

TEST(Chunk, NoOverlapMeansDisjoint) {
    std::mt19937 rng(7);
    auto pages = random_pages(rng, false);
    auto chunks = chunk_document(pages, 50, 0);
    for (size_t k = 1; k < chunks.size(); ++k) EXPECT_GE(chunks[k].start, chunks[k - 1].end);
    EXPECT_EQ(check_invariants(pages, chunks, 50, 0), "");
}

TEST(Chunk, PageRanges) {
    std::vector<std::string> pages;
    for (int p = 0; p < 12; ++p) {
        std::string page;
        for (int s = 0; s < 3; ++s) page += "Page " + std::to_string(p + 1) + " says a thing. ";
        pages.push_back(page);
    }
    pages[5] = "";  // an empty page in the middle
    auto chunks = chunk_document(pages, 40, 8);
    bool spans_pages = false;
    for (const NewChunk& c : chunks) {
        EXPECT_LE(c.page_start, c.page_end);
        // The first and last words name the page they are on.
        EXPECT_EQ(c.text.substr(0, 5 + std::to_string(c.page_start).size()),
                  "Page " + std::to_string(c.page_start));
        spans_pages |= c.page_end > c.page_start;
    }
    EXPECT_TRUE(spans_pages);
    EXPECT_EQ(chunks.front().page_start, 1);
    EXPECT_EQ(chunks.back().page_end, 12);
    EXPECT_EQ(check_invariants(pages, chunks, 40, 8), "");
}

TEST(Chunk, RandomTextsKeepInvariants) {
    std::mt19937 rng(12345);
    for (int iter = 0; iter < 300; ++iter) {
        bool pathological = iter % 3 == 2;
        auto pages = random_pages(rng, pathological);
        int target = 16 + static_cast<int>(rng() % 300);
        int overlap = static_cast<int>(rng() % (target / 2));
        if (iter % 5 == 0) overlap = 0;
        auto chunks = chunk_document(pages, target, overlap);
        ASSERT_EQ(check_invariants(pages, chunks, target, overlap), "")
            << "iter " << iter << " target " << target << " overlap " << overlap;
        if (!pathological) {
            // Ordinary prose: every chunk but the last is at least half full, and fills at
            // least half of the room its overlap with the previous one leaves.
            const std::string text = join_pages(pages);
            for (size_t k = 0; k + 1 < chunks.size(); ++k) {
                ASSERT_GE(chunks[k].n_tokens, target / 2) << "iter " << iter << " chunk " << k;
                if (k == 0) continue;
                int64_t prev_end = chunks[k - 1].end;
                int shared =
                    chunks[k].start < prev_end
                        ? approx_tokens(text.data() + chunks[k].start, prev_end - chunks[k].start)
                        : 0;
                int added = approx_tokens(text.data() + prev_end, chunks[k].end - prev_end);
                ASSERT_GE(added, (target - shared) / 2) << "iter " << iter << " chunk " << k;
            }
        }
        ASSERT_EQ(chunks.size(), chunk_document(pages, target, overlap).size()) << "deterministic";
    }
}

TEST(Chunk, Deterministic) {
    std::mt19937 rng(99);
    auto pages = random_pages(rng, true);
    auto a = chunk_document(pages, 120, 30), b = chunk_document(pages, 120, 30);
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].start, b[k].start);
        EXPECT_EQ(a[k].end, b[k].end);
    }
}

TEST(Chunk, HugeWordIsCutAtCharacterBoundaries) {
    // 20 MB without a space or newline: two-byte and three-byte characters and ASCII mixed,
    // so that cuts would land inside characters if they ignored UTF-8.
    std::string blob;
    blob.reserve(20 << 20);
    const char* pieces[] = {"\xC3\xA9", "\xE4\xB8\xAD", "a", "\xF0\x9F\x98\x80"};
    for (size_t i = 0; blob.size() < (20u << 20); ++i) blob += pieces[(i * 31 + i / 7) % 4];
    auto chunks = chunk_document({blob}, 200, 40);
    ASSERT_GT(chunks.size(), 10000u);
    EXPECT_EQ(check_invariants({blob}, chunks, 200, 40), "");
    for (size_t k = 1; k < chunks.size(); ++k) ASSERT_EQ(chunks[k].start, chunks[k - 1].end);
}

TEST(Chunk, PunctuationAndWhitespacePathologies) {
    std::string text = "start " + std::string(1 << 20, '!') + " middle" +
                       std::string(3 << 20, ' ') + "end\n\f" + std::string(1 << 20, '\n') + "tail";
    auto chunks = chunk_document({text}, 32, 10);
    EXPECT_EQ(check_invariants({text}, chunks, 32, 10), "");
    EXPECT_EQ(chunks.back().text, "tail");
}

TEST(Chunk, LongWordAfterShortStartMakesProgress) {
    // A chunk that ends early because a long word follows, with overlap: the next chunk
    // must not restart inside the previous one forever.
    std::string text = "a b c " + std::string(5000, 'x') + " d e f " + std::string(5000, 'y');
    for (int overlap : {0, 1, 5, 15}) {
        auto chunks = chunk_document({text}, 32, overlap);
        EXPECT_EQ(check_invariants({text}, chunks, 32, overlap), "") << overlap;
        EXPECT_EQ(chunks.front().text, "a b c");
    }
}

}  // namespace
}  // namespace ragd

namespace ragd {
namespace {

TEST(ChunkPages, ASentenceRunningAcrossAPageBreakIsNotCutThere) {
    // Page one ends mid-sentence. With room for 24 tokens, the chunk can end at the page
    // break (21 tokens) or after the first sentence (14): a page break inside a sentence is
    // only a line break, so the sentence end wins.
    std::string p1 =
        "A long first sentence with many words in it here and there too. Then a second one "
        "that does not";
    std::string p2 = "stop until much later in the text of page two, after many more words.";
    std::vector<NewChunk> chunks = chunk_document({p1, p2}, 24, 0);
    ASSERT_GE(chunks.size(), 2u);
    EXPECT_EQ(chunks[0].text, "A long first sentence with many words in it here and there too.");
    // And where page one ends a sentence, the page break is a paragraph break.
    chunks = chunk_document({"One sentence on page one that fills the room here.", p2}, 24, 0);
    EXPECT_EQ(chunks[0].text, "One sentence on page one that fills the room here.");
}

}  // namespace
}  // namespace ragd
