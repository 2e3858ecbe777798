// generate/tokenizer_unicode: the Unicode the tokenizers need, internal to generate/.
//
// UTF-8 decoding that never fails (ill-formed input becomes U+FFFD, one per maximal
// subpart, the replacement the WHATWG/Encoding standard and JavaScript's TextDecoder
// make), code point classes from the generated tables (tokenizer_unicode_tables.*,
// made by scripts/gen_unicode_tables.py), lower-casing, and the NFD/NFC normal forms.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "generate/tokenizer_unicode_tables.h"

namespace ragd::tok {

using tables::Flag;

// Code points of UTF-8 text; ill-formed sequences become U+FFFD.
std::u32string utf8_decode(std::string_view text);
// Well-formed UTF-8 equal to `text` where it is well-formed, with U+FFFD for the rest.
std::string utf8_sanitize(std::string_view text);
// Whether `text` is well-formed UTF-8 (no surrogates, no overlongs, at most U+10FFFF).
bool utf8_valid(std::string_view text);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(std::u32string_view cps);

// Flags (tables::Flag bits) of a code point; code points past U+10FFFF are "other".
uint16_t flags(char32_t cp);
inline bool is_letter(char32_t cp) {
    return flags(cp) & tables::kLetter;
}
inline bool is_number(char32_t cp) {
    return flags(cp) & tables::kNumber;
}
inline bool is_whitespace(char32_t cp) {
    return flags(cp) & tables::kWhitespace;
}
inline bool is_punct(char32_t cp) {
    return flags(cp) & tables::kPunct;
}
inline bool is_upper(char32_t cp) {
    return flags(cp) & tables::kUpper;
}

// Full lower-case mapping of one code point (1 to 3 code points), appended to out.
void append_lower(std::u32string& out, char32_t cp);

// Canonical decomposition (NFD) and composition (NFC).
std::u32string nfd(std::u32string_view text);
std::u32string nfc(std::u32string_view text);

// CJK ideographs as BERT's basic tokenizer defines them (split off as single words).
bool is_cjk_ideograph(char32_t cp);

}  // namespace ragd::tok
