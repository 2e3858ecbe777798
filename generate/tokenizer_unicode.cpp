// generate/tokenizer_unicode: see tokenizer_unicode.h.
#include "generate/tokenizer_unicode.h"

#include <algorithm>
#include <cstddef>

namespace ragd::tok {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

// The WHATWG UTF-8 decoder: a byte that cannot continue the sequence under way ends it
// with one U+FFFD and is then looked at again as a lead byte. EMIT is called per code point.
template <typename Emit>
void decode_utf8(std::string_view text, Emit&& emit) {
    uint32_t cp = 0;
    int needed = 0, seen = 0;
    uint8_t lower = 0x80, upper = 0xBF;
    size_t i = 0;
    while (i < text.size()) {
        uint8_t b = static_cast<uint8_t>(text[i]);
        if (needed == 0) {
            ++i;
            if (b < 0x80) {
                emit(char32_t(b));
            } else if (b >= 0xC2 && b <= 0xDF) {
                needed = 1;
                cp = b & 0x1F;
            } else if (b >= 0xE0 && b <= 0xEF) {
                if (b == 0xE0) lower = 0xA0;
                if (b == 0xED) upper = 0x9F;
                needed = 2;
                cp = b & 0x0F;
            } else if (b >= 0xF0 && b <= 0xF4) {
                if (b == 0xF0) lower = 0x90;
                if (b == 0xF4) upper = 0x8F;
                needed = 3;
                cp = b & 0x07;
            } else {
                emit(kReplacement);
            }
            continue;
        }
        if (b < lower || b > upper) {
            // Not consumed: it starts the next sequence.
            cp = 0;
            needed = seen = 0;
            lower = 0x80;
            upper = 0xBF;
            emit(kReplacement);
            continue;
        }
        ++i;
        lower = 0x80;
        upper = 0xBF;
        cp = (cp << 6) | (b & 0x3F);
        if (++seen == needed) {
            emit(char32_t(cp));
            cp = 0;
            needed = seen = 0;
        }
    }
    if (needed != 0) emit(kReplacement);
}

template <typename T, typename Key>
const T* find_run(const T* table, size_t size, Key key) {
    // The last entry whose first element is <= key.
    const T* end = table + size;
    const T* it = std::upper_bound(table, end, key, [](Key k, const T& e) { return k < e.first; });
    return it == table ? nullptr : it - 1;
}

// Hangul syllables are composed and decomposed arithmetically.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

uint8_t ccc(char32_t cp) {
    if (cp < 0x300) return 0;
    const tables::CombiningRange* r = find_run(tables::kCcc, tables::kCccSize, uint32_t(cp));
    return r && cp <= r->last ? r->ccc : 0;
}

const tables::Decomposition* decomposition(char32_t cp) {
    const auto* end = tables::kDecomp + tables::kDecompSize;
    const auto* it =
        std::lower_bound(tables::kDecomp, end, uint32_t(cp),
                         [](const tables::Decomposition& d, uint32_t k) { return d.cp < k; });
    return it != end && it->cp == cp ? it : nullptr;
}

void decompose(char32_t cp, std::u32string& out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        int s = int(cp - kSBase);
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount) out.push_back(kTBase + s % kTCount);
        return;
    }
    const tables::Decomposition* d = cp < 0xC0 ? nullptr : decomposition(cp);
    if (!d) {
        out.push_back(cp);
        return;
    }
    decompose(d->first, out);
    if (d->second) decompose(d->second, out);
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
        b < kTBase + kTCount)
        return a + (b - kTBase);
    const auto* end = tables::kCompose + tables::kComposeSize;
    const auto* it = std::lower_bound(
        tables::kCompose, end, std::pair<uint32_t, uint32_t>(a, b),
        [](const tables::Composition& c, std::pair<uint32_t, uint32_t> k) {
            return c.first < k.first || (c.first == k.first && c.second < k.second);
        });
    return it != end && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

std::u32string utf8_decode(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    decode_utf8(text, [&](char32_t cp) { out.push_back(cp); });
    return out;
}

bool utf8_valid(std::string_view text) {
    bool ok = true;
    size_t n = 0;
    decode_utf8(text, [&](char32_t cp) {
        ok = ok && cp != kReplacement;
        n++;
    });
    if (ok) return true;
    // U+FFFD itself is valid: compare with a re-encoding.
    return utf8_sanitize(text) == text;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

std::string utf8_encode(std::u32string_view cps) {
    std::string out;
    out.reserve(cps.size());
    for (char32_t cp : cps) utf8_append(out, cp);
    return out;
}

std::string utf8_sanitize(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    decode_utf8(text, [&](char32_t cp) { utf8_append(out, cp); });
    return out;
}

uint16_t flags(char32_t cp) {
    if (cp > 0x10FFFF) return tables::kOther;
    const tables::CategoryRun* r =
        find_run(tables::kCategories, tables::kCategoriesSize, uint32_t(cp));
    return r ? r->flags : uint16_t(tables::kOther);
}

void append_lower(std::u32string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return;
    }
    const auto* end = tables::kLower + tables::kLowerSize;
    const auto* it =
        std::lower_bound(tables::kLower, end, uint32_t(cp),
                         [](const tables::LowerMapping& m, uint32_t k) { return m.from < k; });
    if (it == end || it->from != cp) {
        out.push_back(cp);
        return;
    }
    for (uint32_t c : it->to)
        if (c) out.push_back(c);
}

std::u32string nfd(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (char32_t cp : text) decompose(cp, out);
    // Canonical ordering: stable sort of each run of non-starters by combining class.
    size_t i = 0;
    while (i < out.size()) {
        if (ccc(out[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < out.size() && ccc(out[j]) != 0) ++j;
        std::stable_sort(out.begin() + i, out.begin() + j,
                         [](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
        i = j;
    }
    return out;
}

std::u32string nfc(std::u32string_view text) {
    // Fast path: text below U+0300 is in NFC (nothing there decomposes to a singleton or
    // is excluded from composition, and combining marks start at U+0300).
    if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x300; }))
        return std::u32string(text);
    std::u32string d = nfd(text);
    std::u32string out;
    out.reserve(d.size());
    // Canonical composition: a character combines with the last starter when nothing
    // stands between them, or when everything between has a lower, non-zero combining
    // class (a character left in between with class 0 would itself be the last starter).
    size_t starter = std::u32string::npos;
    int prev_ccc = 0;  // class of the last character kept after the starter
    for (char32_t cp : d) {
        int c = ccc(cp);
        if (starter != std::u32string::npos) {
            bool adjacent = out.size() == starter + 1;
            if (adjacent || (prev_ccc != 0 && prev_ccc < c)) {
                if (char32_t comp = compose(out[starter], cp)) {
                    out[starter] = comp;
                    continue;
                }
            }
        }
        if (c == 0) starter = out.size();
        out.push_back(cp);
        prev_ccc = c;
    }
    return out;
}

bool is_cjk_ideograph(char32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace ragd::tok
