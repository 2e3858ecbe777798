// Page furniture: running headers, footers and page numbers that PDF text extraction
// returns as part of every page. Left in, they split sentences that cross a page break
// ("She does not Page 2 of 4 meet...") and pollute every chunk and quote.
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "ingest/pdf.h"

namespace ragd {

namespace {

constexpr int kEdgeLines = 2;  // lines looked at on each edge of a page

struct Line {
    size_t start, end;  // [start, end) in the page, without the newline
};

std::vector<Line> split_lines(const std::string& page) {
    std::vector<Line> lines;
    size_t start = 0;
    while (start <= page.size()) {
        size_t nl = page.find('\n', start);
        if (nl == std::string::npos) nl = page.size();
        lines.push_back({start, nl});
        start = nl + 1;
    }
    return lines;
}

bool blank(const std::string& page, const Line& l) {
    for (size_t i = l.start; i < l.end; ++i)
        if (!std::isspace(static_cast<unsigned char>(page[i]))) return false;
    return true;
}

// The line with whitespace collapsed and each run of digits as '#': "Page 3 of 12" and
// "Page 4 of 12" are the same furniture.
std::string shape(const std::string& page, const Line& l) {
    std::string s;
    bool digit = false, space = false;
    for (size_t i = l.start; i < l.end; ++i) {
        unsigned char c = static_cast<unsigned char>(page[i]);
        if (std::isdigit(c)) {
            if (space && !digit) s += ' ';
            space = false;
            if (!digit) s += '#';
            digit = true;
            space = false;
            continue;
        }
        digit = false;
        if (std::isspace(c)) {
            space = !s.empty();
            continue;
        }
        if (space) s += ' ';
        space = false;
        s += static_cast<char>(std::tolower(c));
    }
    return s;
}

// A bare page number: "7", "- 7 -", "Page 7", "page 7 of 9", "7/9", "vii".
bool is_page_number(const std::string& shaped) {
    static const char* const kForms[] = {"#",      "- # -", "-#-",   "page #", "page # of #",
                                         "# of #", "#/#",   "# / #", "p. #",   "[#]"};
    for (const char* f : kForms)
        if (shaped == f) return true;
    if (shaped.empty() || shaped.size() > 6) return false;
    for (char c : shaped)
        if (c != 'i' && c != 'v' && c != 'x') return false;
    return true;
}

// Indices of the first kEdgeLines non-blank lines of a page, from the top, then of the
// last kEdgeLines, from the bottom (a short page may list a line in both).
std::vector<size_t> edge_lines(const std::string& page, const std::vector<Line>& lines,
                               bool from_top) {
    std::vector<size_t> out;
    for (size_t k = 0; k < lines.size() && out.size() < kEdgeLines; ++k) {
        size_t i = from_top ? k : lines.size() - 1 - k;
        if (!blank(page, lines[i])) out.push_back(i);
    }
    return out;
}

}  // namespace

void strip_page_furniture(std::vector<std::string>& pages) {
    if (pages.size() < 2) return;
    const size_t n = pages.size();
    std::vector<std::vector<Line>> lines(n);
    std::vector<std::vector<std::string>> top(n), bottom(n);  // shapes of the edge lines
    std::vector<std::vector<size_t>> top_at(n), bottom_at(n);
    std::map<std::string, int> pages_with;  // shape -> pages whose edges hold it
    for (size_t p = 0; p < n; ++p) {
        lines[p] = split_lines(pages[p]);
        top_at[p] = edge_lines(pages[p], lines[p], true);
        bottom_at[p] = edge_lines(pages[p], lines[p], false);
        std::map<std::string, bool> seen;
        for (auto* at : {&top_at[p], &bottom_at[p]}) {
            auto& shapes = at == &top_at[p] ? top[p] : bottom[p];
            for (size_t i : *at) {
                shapes.push_back(shape(pages[p], lines[p][i]));
                if (!seen[shapes.back()]) {
                    seen[shapes.back()] = true;
                    ++pages_with[shapes.back()];
                }
            }
        }
    }
    // Furniture repeats on at least half of the pages (and on two at the least), or is a
    // bare page number; it sits at the edge, so the first line from an edge that is not
    // furniture ends the search on that edge.
    const int need = std::max<int>(2, static_cast<int>((n + 1) / 2));
    auto furniture = [&](const std::string& s) {
        return pages_with[s] >= need || is_page_number(s);
    };
    for (size_t p = 0; p < n; ++p) {
        std::vector<bool> drop(lines[p].size(), false);
        bool any = false;
        for (size_t k = 0; k < top_at[p].size() && furniture(top[p][k]); ++k)
            drop[top_at[p][k]] = any = true;
        for (size_t k = 0; k < bottom_at[p].size() && furniture(bottom[p][k]); ++k)
            drop[bottom_at[p][k]] = any = true;
        if (!any) continue;
        std::string kept;
        for (size_t i = 0; i < lines[p].size(); ++i) {
            if (drop[i]) continue;
            if (!kept.empty()) kept += '\n';
            kept.append(pages[p], lines[p][i].start, lines[p][i].end - lines[p][i].start);
        }
        // Trim the blank lines the furniture leaves at either edge.
        size_t b = kept.find_first_not_of(" \t\n");
        size_t e = kept.find_last_not_of(" \t\n");
        pages[p] = b == std::string::npos ? std::string() : kept.substr(b, e - b + 1);
    }
}

}  // namespace ragd
