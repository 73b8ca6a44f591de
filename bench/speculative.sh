#!/usr/bin/env bash
# Speculative decoding next to plain decoding, the same prompt, greedy, alternating (issue 21 acceptance 3):
#   plain             duet generate
#   draft             duet generate --draft DRAFT $DRAFT_ARGS (default --draft-p-min 0: random-weight models are never
#                     confident; a trained draft takes e.g. DRAFT_ARGS="--draft-p-min 0.75 --draft-max 16")
#   lookup            duet generate --lookup (prompt lookup, no draft model)
# Decode speed is generated tokens after the first / the time after the first token (`--timings`), so the prompt is
# not counted; the drafts taken and accepted are printed by --timings too. Greedy output is checked equal to plain.
# Usage: bench/speculative.sh TARGET.gguf DRAFT.gguf [PROMPT_FILE] [TOKENS] [ROUNDS]   (JSON lines, then a table)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:?target model}"; draft="${2:?draft model}"; prompt_file="${3:-}"; n="${4:-400}"; rounds="${5:-3}"
if [ -n "$prompt_file" ]; then prompt="$(cat "$prompt_file")"; else
  # A summarise-the-document prompt: the first lines of the shipped bilingual text, then the request.
  prompt="$(printf 'Summarise the following document.\n\n%s\n\nSummary:' "$(head -c 2500 "$root/tests/TestData/bilingual-test.txt")")"
fi
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
out="$(mktemp)"; ids="$(mktemp -d)"
for round in $(seq 1 "$rounds"); do
  for mode in plain draft lookup; do
    case $mode in plain) extra=() ;; draft) extra=(--draft "$draft" ${DRAFT_ARGS:---draft-p-min 0}) ;; lookup) extra=(--lookup) ;; esac
    err="$("${duet[@]}" generate -m "$target" -p "$prompt" -n "$n" --temp 0 --print-ids --timings "${extra[@]}" 2>&1 > "$ids/$mode.$round")"
    tps="$(grep -o '[0-9.]* tokens/s after' <<< "$err" | cut -d' ' -f1 || true)"
    [ -n "$tps" ] || { echo "duet generate ($mode) failed: $err" >&2; exit 1; }
    drafted="$(grep -o '[0-9]* tokens drafted' <<< "$err" | cut -d' ' -f1 || true)"
    accepted="$(grep -o '[0-9]* accepted' <<< "$err" | cut -d' ' -f1 || true)"
    same=true; cmp -s "$ids/plain.$round" "$ids/$mode.$round" || same=false
    echo "{\"round\":$round,\"mode\":\"$mode\",\"target\":\"$(basename "$target")\",\"draft\":\"$(basename "$draft")\",\"tokens\":$n,\"decode_tokens_per_s\":$tps,\"drafted\":${drafted:-0},\"accepted\":${accepted:-0},\"same_tokens_as_plain\":$same}" | tee -a "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
plain = statistics.median(r["decode_tokens_per_s"] for r in rows if r["mode"] == "plain")
print("\n| mode | decode tokens/s (median) | per round | vs plain | drafted | accepted | acceptance | same tokens |")
print("|---|---|---|---|---|---|---|---|")
for mode in ["plain", "draft", "lookup"]:
    rs = [r for r in rows if r["mode"] == mode]
    med = statistics.median(r["decode_tokens_per_s"] for r in rs)
    d, a = rs[0]["drafted"], rs[0]["accepted"]
    per = " / ".join("%.1f" % r["decode_tokens_per_s"] for r in rs)
    print(f"| {mode} | {med:.1f} | {per} | {med / plain:.2f}x | {d} | {a} | "
          f"{(a / d if d else 0):.1%} | {all(r['same_tokens_as_plain'] for r in rs)} |")
PY
