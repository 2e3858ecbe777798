// The official JSON Schema Test Suite (Debian package json-schema-test-suite, draft 6)
// against the schema compiler and the matcher: for each keyword file, each group's schema
// is compiled (with extra properties allowed, as JSON Schema says) and each test's
// instance is fed to the matcher as a token stream; accepted must equal valid.
//
// Instances are serialized the way the grammar writes JSON: compact, and object members
// in the order of the schema's "properties" (then the others). The grammar is sound by
// construction, so no invalid instance may be accepted, in any file: that is asserted.
// Completeness (every valid instance accepted) is asserted for the keyword files listed
// in kExact; for the others the misses are counted and printed (see bench/README.md,
// "Structured output"): integers written as 1.0, numbers in a bounded range with a
// fraction near the bounds, non-ASCII or escaped extra keys, enum values equal but
// written differently, members in an order other than the schema's inside anyOf.
// Groups whose schema uses an unsupported keyword fail to compile: counted, not run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "config/config.h"
#include "generate/grammar.h"
#include "generate/json_schema.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using OJ = nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string suite_dir() {
    if (const char* e = std::getenv("RAGD_JSON_SCHEMA_SUITE")) return e;
    return "/usr/share/json-schema-test-suite/tests/draft6";
}

// The keyword files run, and those whose compiled groups must agree exactly.
const char* kFiles[] = {"type",
                        "properties",
                        "required",
                        "additionalProperties",
                        "enum",
                        "const",
                        "items",
                        "additionalItems",
                        "minItems",
                        "maxItems",
                        "minLength",
                        "maxLength",
                        "minimum",
                        "maximum",
                        "exclusiveMinimum",
                        "exclusiveMaximum",
                        "ref",
                        "definitions",
                        "anyOf",
                        "oneOf",
                        "allOf",
                        "boolean_schema",
                        "default",
                        "optional/format"};
const std::set<std::string> kExact = {
    "type",     "properties", "required",        "additionalProperties",
    "enum",     "items",      "additionalItems", "minItems",
    "maxItems", "minLength",  "maxLength",       "exclusiveMaximum",
    "ref",      "anyOf",      "oneOf",           "boolean_schema",
    "default"};
const char* kUnsupported[] = {"contains",      "dependencies", "maxProperties", "minProperties",
                              "multipleOf",    "not",          "pattern",       "patternProperties",
                              "propertyNames", "uniqueItems",  "refRemote"};

// Property order of a schema (following $ref and the branches of anyOf/oneOf/allOf).
void property_order(const OJ& s, const OJ& root, std::vector<std::string>& out, int depth) {
    if (depth > 8 || !s.is_object()) return;
    if (s.contains("$ref") && s["$ref"].is_string()) {
        std::string r = s["$ref"].get<std::string>();
        if (r.size() >= 1 && r[0] == '#') {
            try {
                const OJ& t = root.at(OJ::json_pointer(r.substr(1)));
                property_order(t, root, out, depth + 1);
            } catch (...) {
            }
        }
    }
    if (s.contains("properties") && s["properties"].is_object())
        for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it)
            if (std::find(out.begin(), out.end(), it.key()) == out.end()) out.push_back(it.key());
    for (const char* k : {"anyOf", "oneOf", "allOf"})
        if (s.contains(k) && s[k].is_array())
            for (const OJ& b : s[k]) property_order(b, root, out, depth + 1);
}

const OJ* sub_schema(const OJ& s, const OJ& root, const std::string& key, int depth = 0) {
    if (depth > 8 || !s.is_object()) return nullptr;
    if (s.contains("$ref") && s["$ref"].is_string()) {
        std::string r = s["$ref"].get<std::string>();
        try {
            if (!r.empty() && r[0] == '#')
                return sub_schema(root.at(OJ::json_pointer(r.substr(1))), root, key, depth + 1);
        } catch (...) {
        }
        return nullptr;
    }
    if (s.contains("properties") && s["properties"].contains(key)) return &s["properties"][key];
    if (s.contains("additionalProperties")) return &s["additionalProperties"];
    return nullptr;
}

// Compact JSON with object members in schema order.
std::string serialize(const OJ& v, const OJ* s, const OJ& root) {
    if (v.is_object()) {
        std::vector<std::string> order;
        if (s) property_order(*s, root, order, 0);
        for (auto it = v.begin(); it != v.end(); ++it)
            if (std::find(order.begin(), order.end(), it.key()) == order.end())
                order.push_back(it.key());
        std::string out = "{";
        bool first = true;
        for (const std::string& k : order) {
            if (!v.contains(k)) continue;
            if (!first) out += ",";
            first = false;
            out +=
                OJ(k).dump() + ":" + serialize(v[k], s ? sub_schema(*s, root, k) : nullptr, root);
        }
        return out + "}";
    }
    if (v.is_array()) {
        std::string out = "[";
        for (size_t i = 0; i < v.size(); ++i) {
            const OJ* item = nullptr;
            if (s && s->is_object() && s->contains("items")) {
                const OJ& it = (*s)["items"];
                item = it.is_array() ? (i < it.size() ? &it[i] : nullptr) : &it;
            }
            if (i) out += ",";
            out += serialize(v[i], item, root);
        }
        return out + "]";
    }
    return v.dump();
}

// Pieces for the token stream: every byte, and some multi-byte JSON pieces, matched
// longest first.
GrammarVocab suite_vocab() {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, char(b));
    for (const char* p : {"{\"", "\":", "\",\"", "\"}", "true", "false", "null", "\"]", "],", "12",
                          "00", "foo", "bar", "\":{\"", "}}", "[[", "]]"})
        pieces.emplace_back(p);
    pieces.emplace_back("");  // EOS
    return GrammarVocab(pieces, {int32_t(pieces.size() - 1)});
}

bool accepts(const std::shared_ptr<Grammar>& g, const GrammarVocab& v, const std::string& text) {
    GrammarMatcher m(g);
    size_t at = 0;
    while (at < text.size()) {
        int32_t best = -1;
        size_t best_len = 0;
        for (int32_t id = 0; id + 1 < v.n_vocab(); ++id) {
            const std::string& p = v.piece(id);
            if (p.size() > best_len && text.compare(at, p.size(), p) == 0) {
                best = id;
                best_len = p.size();
            }
        }
        if (!m.accept_token(v, best)) return false;
        at += best_len;
    }
    return m.accept_token(v, v.n_vocab() - 1);  // EOS: allowed only when complete
}

TEST(SchemaSuite, CompiledGrammarsAcceptExactlyTheValidInstances) {
    const std::string dir = suite_dir();
    if (!fs::exists(dir + "/type.json"))
        GTEST_SKIP() << "the JSON Schema Test Suite is not installed (apt-get install "
                        "json-schema-test-suite; scripts/install-deps.sh), or set "
                        "RAGD_JSON_SCHEMA_SUITE";
    GrammarVocab vocab = suite_vocab();
    SchemaOptions opts;
    opts.allow_unlisted_properties = true;
    std::string report =
        "| keyword file | tests | schema compiled | agree | valid rejected | invalid accepted |\n"
        "|---|---|---|---|---|---|\n";
    int all = 0, all_compiled = 0, all_agree = 0;
    for (const char* file : kFiles) {
        const std::string path = dir + "/" + file + ".json";
        if (!fs::exists(path)) continue;
        OJ groups = OJ::parse(test::read_file(path));
        int total = 0, compiled = 0, agree = 0, missed = 0, wrong = 0;
        std::string notes;
        for (const OJ& grp : groups) {
            std::shared_ptr<Grammar> g;
            try {
                g = compile_json_schema(grp["schema"], opts);
            } catch (const Error& e) {
                total += int(grp["tests"].size());
                if (notes.size() < 600)
                    notes += "  not compiled: " + grp["description"].get<std::string>() + ": " +
                             e.what() + "\n";
                continue;
            }
            for (const OJ& t : grp["tests"]) {
                ++total;
                ++compiled;
                const std::string text = serialize(t["data"], &grp["schema"], grp["schema"]);
                const bool valid = t["valid"].get<bool>();
                const bool ok = accepts(g, vocab, text);
                if (ok == valid) {
                    ++agree;
                } else if (valid) {
                    ++missed;
                    if (notes.size() < 1200)
                        notes += "  valid rejected: " + grp["description"].get<std::string>() +
                                 " / " + t["description"].get<std::string>() + ": " + text + "\n";
                    EXPECT_FALSE(kExact.count(file)) << file << ": " << text;
                } else {
                    ++wrong;
                    ADD_FAILURE() << file << ": invalid instance accepted: " << text << " ("
                                  << grp["description"] << " / " << t["description"] << ")";
                }
            }
        }
        all += total;
        all_compiled += compiled;
        all_agree += agree;
        char line[256];
        std::snprintf(line, sizeof line, "| %s | %d | %d | %d (%.0f%%) | %d | %d |\n", file, total,
                      compiled, agree, compiled ? 100.0 * agree / compiled : 0.0, missed, wrong);
        report += line;
        if (!notes.empty()) std::printf("%s:\n%s", file, notes.c_str());
    }
    char line[256];
    std::snprintf(line, sizeof line, "| all | %d | %d | %d (%.1f%%) | | |\n", all, all_compiled,
                  all_agree, all_compiled ? 100.0 * all_agree / all_compiled : 0.0);
    report += line;
    report += "\nNot run (unsupported keywords):";
    for (const char* u : kUnsupported) report += std::string(" ") + u;
    report += "\n";
    std::printf("%s", report.c_str());
    if (const char* out = std::getenv("RAGD_SUITE_REPORT")) test::write_file(out, report);
}

}  // namespace
}  // namespace ragd
