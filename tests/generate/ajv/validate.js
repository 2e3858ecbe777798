#!/usr/bin/env node
// Validates generated texts against their JSON Schemas with ajv (draft-07) and
// ajv-formats, independently of ragd's own grammar.
//
//   node validate.js IN.json OUT.json
//
// IN: [{"schema": {...}, "texts": ["...", ...]}, ...]
// OUT: [[{"ok": bool, "error": "..."}, ...], ...] in the same order: ok when the text
// parses with JSON.parse and validates.
"use strict";

const fs = require("fs");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) {
    console.error("usage: node validate.js IN.json OUT.json");
    process.exit(2);
}
const cases = JSON.parse(fs.readFileSync(inPath, "utf8"));
const ajv = new Ajv({ strict: false, allErrors: false });
addFormats(ajv);
const out = cases.map((c) => {
    const validate = ajv.compile(c.schema);
    return c.texts.map((t) => {
        let v;
        try {
            v = JSON.parse(t);
        } catch (e) {
            return { ok: false, error: "JSON.parse: " + e.message };
        }
        if (validate(v)) return { ok: true };
        return { ok: false, error: ajv.errorsText(validate.errors) };
    });
});
fs.writeFileSync(outPath, JSON.stringify(out));
