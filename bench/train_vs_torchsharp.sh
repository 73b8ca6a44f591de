#!/usr/bin/env bash
# Training speed, Duet next to TorchSharp-cpu 0.107 (libtorch 2.10) in the same run (issue 21, acceptance 4): whole
# steps (forward, backward, clipping, AdamW) of the same LLaMA shape, batch and sequence, random tokens, the same
# thread count, alternating Duet and TorchSharp so both see the same machine state. One JSON line per measurement
# (kept in bench/results/ when RESULTS is set) and a table with Duet's MFU.
#   bench/train_vs_torchsharp.sh [THREADS...]          (default: 1 2; ROUNDS=2, STEPS=5)
#
# TorchSharp 0.107's native glue (libLibTorchSharp.so) needs GLIBCXX_3.4.32 (GCC 13), newer than Debian 12's
# libstdc++; the libstdc++ built for Debian 13 needs glibc 2.38. So the peer runs under Debian 13's own loader,
# glibc, libgcc and libstdc++ (three .deb files from deb.debian.org, unpacked into a private directory, nothing
# installed into the system) through a copy of the dotnet host whose ELF interpreter is that loader (patchelf).
# On a Debian 13 machine the peer runs with the system's dotnet as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
threads=("${@:-1 2}"); threads=(${threads[@]})
rounds="${ROUNDS:-2}"; steps="${STEPS:-5}"
dotnet build -c Release "$root/bench/Duet.Bench.TorchSharp" -v q -nologo > /dev/null
peer_dll="$root/bench/Duet.Bench.TorchSharp/bin/Release/net10.0/Duet.Bench.TorchSharp.dll"
peer=(dotnet "$peer_dll")
if ! strings /usr/lib/x86_64-linux-gnu/libstdc++.so.6 | grep -q GLIBCXX_3.4.32; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/duet-bench/debian13"
  lib="$cache/root/usr/lib/x86_64-linux-gnu"
  if [ ! -e "$cache/dotnet/dotnet" ]; then
    command -v patchelf > /dev/null || apt-get install -y patchelf > /dev/null
    mkdir -p "$cache/debs" "$cache/root" "$cache/dotnet"
    for deb in g/glibc/libc6_2.41-12+deb13u5_amd64.deb g/gcc-14/libgcc-s1_14.2.0-19_amd64.deb g/gcc-14/libstdc++6_14.2.0-19_amd64.deb; do
      f="$cache/debs/$(basename "$deb")"
      [ -s "$f" ] || curl -fsSL -o "$f" "http://deb.debian.org/debian/pool/main/$deb"
      dpkg-deb -x "$f" "$cache/root"
    done
    host="$(readlink -f "$(command -v dotnet)")"
    for x in "$(dirname "$host")"/*; do [ "$(basename "$x")" = dotnet ] || ln -sfn "$x" "$cache/dotnet/"; done
    cp "$host" "$cache/dotnet/dotnet"
    patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" "$cache/dotnet/dotnet"
  fi
  peer=(env LD_LIBRARY_PATH="$lib" "$cache/dotnet/dotnet" "$peer_dll")
fi
out="$(mktemp)"
for t in "${threads[@]}"; do
  for rep in $(seq "$rounds"); do
    # duet-tiny: dim 256, 4 layers, 8/4 heads, ffn 704, vocab 8000, tied; batch 16 x 256 (as models/duet-tiny/train.json)
    "${duet[@]}" bench-train --preset duet-tiny --vocab 8000 --batch 16 --seq 256 --steps "$steps" -t "$t" --json | tee -a "$out"
    "${peer[@]}" --preset duet-tiny --vocab 8000 --batch 16 --seq 256 --steps "$steps" --threads "$t" | tee -a "$out"
    # 15M (llama2.c stories15M): dim 288, 6 layers, 6 heads, ffn 768, vocab 32000, tied; batch 8 x 256
    "${duet[@]}" bench-train --preset 15m --vocab 32000 --batch 8 --seq 256 --steps "$steps" -t "$t" --json | tee -a "$out"
    "${peer[@]}" --preset 15m --vocab 32000 --batch 8 --seq 256 --steps "$steps" --threads "$t" | tee -a "$out"
  done
done
[ -n "${RESULTS:-}" ] && cp "$out" "$RESULTS"
/usr/bin/python3 - "$out" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows: by[(r["preset"], r["threads"])][r["peer"]].append(r)
print("| shape | threads | Duet tokens/s | Duet MFU | TorchSharp tokens/s | Duet / TorchSharp (each round) |")
print("|---|---|---|---|---|---|")
for (preset, t), peers in sorted(by.items()):
    d = [x["tokens_per_s"] for x in peers["duet"]]; p = [x["tokens_per_s"] for x in peers["torchsharp"]]
    mfu = max(x["mfu"] for x in peers["duet"])
    each = ", ".join(f"{a / b:.2f}" for a, b in zip(d, p))
    print(f"| {preset} | {t} | {' / '.join(f'{x:,.0f}' for x in d)} | {mfu:.1%} | {' / '.join(f'{x:,.0f}' for x in p)} | {each} |")
PY
