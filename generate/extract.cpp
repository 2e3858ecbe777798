#include "generate/extract.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "config/config.h"
#include "generate/generate.h"
#include "generate/json_schema.h"
#include "index/index.h"

namespace ragd {

namespace {

using OJ = nlohmann::ordered_json;

// Field names, titles and descriptions of a schema, as a retrieval query.
void schema_words(const OJ& s, std::string& out, int depth) {
    if (depth > 16 || out.size() > 2000) return;
    if (s.is_object()) {
        for (auto it = s.begin(); it != s.end(); ++it) {
            if ((it.key() == "title" || it.key() == "description") && it->is_string())
                out += " " + it->get<std::string>();
            if (it.key() == "properties" && it->is_object())
                for (auto p = it->begin(); p != it->end(); ++p) {
                    std::string k = p.key();
                    std::replace(k.begin(), k.end(), '_', ' ');
                    out += " " + k;
                }
            schema_words(*it, out, depth + 1);
        }
    } else if (s.is_array()) {
        for (const OJ& v : s) schema_words(v, out, depth + 1);
    }
}

// Lowercase ASCII, whitespace runs as one space; map[i] is the source byte of out[i].
std::string normalize(const std::string& s, std::vector<size_t>& map) {
    std::string out;
    map.clear();
    bool space = false;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (std::isspace(c)) {
            space = !out.empty();
            continue;
        }
        if (space) {
            out += ' ';
            map.push_back(i);
            space = false;
        }
        out += char(std::tolower(c));
        map.push_back(i);
    }
    return out;
}

bool is_word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

const char* kMonths[] = {"january", "february", "march",     "april",   "may",      "june",
                         "july",    "august",   "september", "october", "november", "december"};

// Other written forms of a value: dates and numbers.
std::vector<std::string> variants(const nlohmann::json& v) {
    std::vector<std::string> out;
    if (v.is_number_integer() || v.is_number_unsigned() ||
        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
         std::fabs(v.get<double>()) < 1e15)) {
        long long n = v.is_number_float() ? (long long)(v.get<double>()) : v.get<long long>();
        std::string d = std::to_string(n < 0 ? -n : n), g;
        for (size_t i = 0; i < d.size(); ++i) {
            if (i && (d.size() - i) % 3 == 0) g += ',';
            g += d[i];
        }
        std::string sign = n < 0 ? "-" : "";
        if (g != d) out.push_back(sign + g);
        if (v.is_number_float()) out.push_back(sign + d);
        return out;
    }
    if (!v.is_string()) return out;
    const std::string s = v.get<std::string>();
    if (s.size() >= 10 && std::isdigit(static_cast<unsigned char>(s[0])) && s[4] == '-' &&
        s[7] == '-') {
        int y = std::atoi(s.substr(0, 4).c_str()), m = std::atoi(s.substr(5, 2).c_str()),
            d = std::atoi(s.substr(8, 2).c_str());
        if (m < 1 || m > 12 || d < 1 || d > 31) return out;
        std::string Y = std::to_string(y), M = std::to_string(m), D = std::to_string(d);
        std::string MM = s.substr(5, 2), DD = s.substr(8, 2);
        std::string name = kMonths[m - 1], abbr = name.substr(0, 3);
        std::string suffix = (d % 10 == 1 && d != 11)   ? "st"
                             : (d % 10 == 2 && d != 12) ? "nd"
                             : (d % 10 == 3 && d != 13) ? "rd"
                                                        : "th";
        for (const std::string& mo : {name, abbr}) {
            out.push_back(mo + " " + D + ", " + Y);
            out.push_back(mo + " " + D + " " + Y);
            out.push_back(mo + " " + D + suffix + ", " + Y);
            out.push_back(D + " " + mo + " " + Y);
            out.push_back(D + " " + mo + ", " + Y);
            out.push_back(D + suffix + " " + mo + " " + Y);
            out.push_back(D + suffix + " day of " + mo + ", " + Y);
            out.push_back(D + suffix + " day of " + mo + " " + Y);
        }
        for (const char* sep : {"/", ".", "-"}) {
            out.push_back(DD + sep + MM + sep + Y);
            out.push_back(MM + sep + DD + sep + Y);
            out.push_back(D + sep + M + sep + Y);
            out.push_back(M + sep + D + sep + Y);
        }
        if (s.size() > 10) out.push_back(s.substr(0, 10));
    }
    return out;
}

nlohmann::json citation(const Passage& p, size_t from, size_t to, const char* match) {
    const ChunkRow& c = p.hit.chunk;
    return {{"number", p.number},
            {"chunk_id", c.id},
            {"document_id", c.document_id},
            {"document", c.document},
            {"path", c.path},
            {"page", c.page_start},
            {"start", c.start + int64_t(from)},
            {"end", c.start + int64_t(to)},
            {"quote", c.text.substr(from, to - from)},
            {"match", match}};
}

std::set<std::string> content_words(const std::string& s) {
    std::set<std::string> w;
    std::string cur;
    auto flush = [&] {
        if (!cur.empty() && !is_stop_word(cur)) w.insert(cur);
        cur.clear();
    };
    for (char c : s) {
        if (is_word_char(c) || (static_cast<unsigned char>(c) >= 0x80))
            cur += char(std::tolower(static_cast<unsigned char>(c)));
        else
            flush();
    }
    flush();
    return w;
}

// Citations supporting one leaf value (at most 3, one per passage).
nlohmann::json support(const nlohmann::json& v, const std::vector<Passage>& passages) {
    nlohmann::json out = nlohmann::json::array();
    if (v.is_boolean() || v.is_null()) return out;
    std::string main;
    if (v.is_string())
        main = v.get<std::string>();
    else if (v.is_number())
        main = v.dump();
    std::vector<size_t> tmp;
    std::vector<std::pair<std::string, const char*>> needles;
    if (!main.empty()) needles.push_back({normalize(main, tmp), "exact"});
    for (const std::string& s : variants(v)) needles.push_back({normalize(s, tmp), "normalized"});
    for (const Passage& p : passages) {
        if (out.size() >= 3) break;
        std::vector<size_t> map;
        const std::string text = normalize(p.hit.chunk.text, map);
        bool found = false;
        for (const auto& [needle, how] : needles) {
            if (needle.empty()) continue;
            for (size_t at = text.find(needle); at != std::string::npos;
                 at = text.find(needle, at + 1)) {
                size_t end = at + needle.size();
                bool left = at == 0 || !is_word_char(text[at - 1]) || !is_word_char(needle[0]);
                bool right =
                    end == text.size() || !is_word_char(text[end]) || !is_word_char(needle.back());
                // A number is not part of a longer one ("30" in "300" or "1.30").
                if (v.is_number() && end < text.size() &&
                    (std::isdigit(static_cast<unsigned char>(text[end])) ||
                     (text[end] == '.' && end + 1 < text.size() &&
                      std::isdigit(static_cast<unsigned char>(text[end + 1])))))
                    right = false;
                if (v.is_number() && at > 0 && (text[at - 1] == '.' || text[at - 1] == '-'))
                    left = false;
                if (!left || !right) continue;
                size_t from = map[at], to = map[end - 1] + 1;
                out.push_back(citation(p, from, to, how));
                found = true;
                break;
            }
            if (found) break;
        }
    }
    if (!out.empty() || !v.is_string()) return out;
    // The sentence sharing the most content words, at least half of the value's.
    const std::set<std::string> want = content_words(main);
    if (want.empty()) return out;
    double best = 0;
    nlohmann::json best_cite;
    for (const Passage& p : passages) {
        const std::string& text = p.hit.chunk.text;
        for (auto [a, b] : split_sentences(text)) {
            std::set<std::string> have = content_words(text.substr(a, b - a));
            size_t common = 0;
            for (const std::string& w : want) common += have.count(w);
            double score = double(common) / double(want.size());
            if (score > best) {
                best = score;
                best_cite = citation(p, a, b, "overlap");
            }
        }
    }
    if (best >= 0.5) out.push_back(best_cite);
    return out;
}

void leaves(const nlohmann::json& v, const std::string& ptr, const std::vector<Passage>& passages,
            nlohmann::json& out) {
    if (v.is_object()) {
        for (auto it = v.begin(); it != v.end(); ++it) {
            std::string k;
            for (char c : it.key())
                k += c == '~' ? std::string("~0") : c == '/' ? "~1" : std::string(1, c);
            leaves(it.value(), ptr + "/" + k, passages, out);
        }
    } else if (v.is_array()) {
        for (size_t i = 0; i < v.size(); ++i)
            leaves(v[i], ptr + "/" + std::to_string(i), passages, out);
    } else if (!v.is_null()) {
        out[ptr.empty() ? "" : ptr] = support(v, passages);
    }
}

}  // namespace

std::vector<Passage> document_passages(Indexes& indexes, Store& store, int64_t document_id,
                                       const nlohmann::ordered_json& schema,
                                       const std::string& instructions, const Config& cfg,
                                       int budget_tokens) {
    if (!store.document(document_id))
        throw Error(Error::Code::NotFound, "no document with id " + std::to_string(document_id));
    std::vector<ChunkRow> chunks = store.chunks_of_document(document_id);
    int64_t total = 0;
    for (const ChunkRow& c : chunks)
        total += c.n_tokens > 0 ? c.n_tokens : int64_t(c.text.size() / 4 + 1);
    std::vector<Passage> out;
    if (total <= budget_tokens) {
        for (const ChunkRow& c : chunks) {
            Passage p;
            p.number = int(out.size()) + 1;
            p.hit.chunk = c;
            out.push_back(std::move(p));
        }
        return out;
    }
    std::string query = instructions;
    schema_words(schema, query, 0);
    SearchRequest req;
    req.query = query.substr(0, 4000);
    if (req.query.find_first_not_of(" \t\n") == std::string::npos) req.query = "the";
    req.k = 50;
    req.filter.document_id = document_id;
    std::vector<Hit> hits = search(indexes, store, req, cfg);
    out = assemble_context(hits, budget_tokens);
    std::sort(out.begin(), out.end(),
              [](const Passage& a, const Passage& b) { return a.hit.chunk.seq < b.hit.chunk.seq; });
    for (size_t i = 0; i < out.size(); ++i) out[i].number = int(i) + 1;
    return out;
}

std::vector<Passage> text_passages(const std::string& text, int budget_tokens) {
    std::vector<Passage> out;
    const size_t budget = size_t(std::max(budget_tokens, 0)) * 4;
    size_t used = 0, start = 0;
    while (start < text.size() && used < budget) {
        // About 1,000 bytes, ending at a paragraph break (else a line, else a space).
        size_t end = std::min(text.size(), start + 1000);
        if (end < text.size()) {
            size_t cut = text.rfind("\n\n", end);
            if (cut == std::string::npos || cut <= start) cut = text.rfind('\n', end);
            if (cut == std::string::npos || cut <= start) cut = text.rfind(' ', end);
            if (cut != std::string::npos && cut > start) end = cut + 1;
        }
        end = std::min(end, start + (budget - used));
        // Never cut inside a UTF-8 character.
        while (end < text.size() && end > start &&
               (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
            --end;
        if (end <= start) break;
        Passage p;
        p.number = int(out.size()) + 1;
        ChunkRow& c = p.hit.chunk;
        c.seq = int(out.size());
        c.page_start = c.page_end = 1;
        c.start = int64_t(start);
        c.end = int64_t(end);
        c.text = text.substr(start, end - start);
        c.document = "text";
        out.push_back(std::move(p));
        used += end - start;
        start = end;
    }
    return out;
}

std::vector<ChatMessage> extraction_messages(const nlohmann::ordered_json& schema,
                                             const std::string& instructions,
                                             const std::vector<Passage>& passages) {
    std::string sys =
        "You extract information from documents into JSON. Reply with one JSON value that "
        "matches this JSON Schema, and nothing else:\n" +
        schema.dump() +
        "\nUse only what the passages state. Leave out optional fields that the passages do "
        "not give; use null only where the schema allows it. Write dates as YYYY-MM-DD.";
    std::string user;
    if (!instructions.empty()) user += "Instructions: " + instructions + "\n\n";
    user += "Passages:\n" + format_context(passages);
    return {{"system", sys}, {"user", user}};
}

nlohmann::json extraction_evidence(const nlohmann::json& data,
                                   const std::vector<Passage>& passages) {
    nlohmann::json out = nlohmann::json::object();
    leaves(data, "", passages, out);
    return out;
}

Extraction extract(ModelRunner& runner, const nlohmann::ordered_json& schema,
                   const std::string& instructions, const std::vector<Passage>& passages,
                   GenerateOptions options) {
    options.grammar = compile_json_schema(schema);
    // The passages were chosen by an estimate of their tokens; the model's own count
    // decides. Drop the last passages until the prompt leaves room for max_tokens (with
    // none left, complete() reports the prompt that does not fit). The stop strings are
    // the chat format's, as chat() would add.
    // The prompt's tokens from the last count are the ones generated from.
    std::vector<Passage> used = passages;
    std::vector<int32_t> prompt;
    for (;;) {
        const std::vector<ChatMessage> messages = extraction_messages(schema, instructions, used);
        prompt = runner.tokenize_prompt(apply_chat_template(runner.chat_format(), messages, true));
        if (used.empty() || int64_t(prompt.size()) + options.max_tokens <= runner.n_ctx()) break;
        used.pop_back();
    }
    for (const std::string& s : chat_stop_strings(runner.chat_format())) options.stop.push_back(s);
    Extraction e;
    e.stats = runner.complete(prompt, options);
    e.data = nlohmann::ordered_json::parse(e.stats.text);
    e.evidence = extraction_evidence(nlohmann::json::parse(e.stats.text), used);
    return e;
}

}  // namespace ragd
