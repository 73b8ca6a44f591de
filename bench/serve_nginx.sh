#!/usr/bin/env bash
# Scale-out load test: `duet serve` replicas behind nginx (deploy/replicas.sh, deploy/nginx/duet.conf.template),
# driven by the same client as bench/serve_load.sh (bench/Duet.Bench.Serve), all on loopback.
#   1. verify through nginx, 3 replicas: 32 clients x 20 streamed requests, each reply equal to what the same
#      request got alone (greedy, end-of-turn tokens banned, 24 tokens): none lost, duplicated or mixed.
#   2. the same with replica 2 killed (kill -9) once 200 requests have completed: only requests already streaming
#      from it may fail (the client reports each with how far it got); requests that had no byte of reply yet are
#      retried by nginx on another replica and must complete, and all the others carry on. The health watcher
#      (--restart) starts the replica again; the next step waits until all 3 are healthy.
#   3. throughput, same client and concurrency (32 streams, 64 tokens per request): A = nginx + 3 replicas
#      (-t 1 each, 8 slots each), B = 1 replica directly (-t 2, 8 slots), C = nginx + 1 replica (as B: the proxy's
#      own cost), D = 1 replica directly with 24 slots (-t 2, as many slots as A), alternating A B C D A B C D
#      (ROUNDS=2 rounds). VERIFY=0 skips steps 1 and 2.
# Model: a random-weight LLaMA, dim 512, 8 layers, 8 heads, ffn 1536, the 8000-token bilingual tokenizer trained on
# data/sample, F32 (142 MB); 8 slots per replica (--parallel 8), context 512.
# Usage: bench/serve_nginx.sh [WORK_DIR] > run.jsonl     (a summary goes to stderr; on a shared machine run it as
#        nice -n 10 bench/serve_nginx.sh). Exits non-zero when step 1 or 2 finds a lost or wrong reply.
set -euo pipefail
work="${1:-/tmp/duet-serve-nginx}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-2}"
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is needed: apt-get install -y nginx-light" >&2; exit 1; }
"$root/duet" --help > /dev/null
dotnet build "$root/bench/Duet.Bench.Serve" -c Release -v q -nologo > /dev/null
export DUET_DLL="$root/src/Duet.Cli/bin/Release/net10.0/duet.dll"
duet=(dotnet "$DUET_DLL")
client=(dotnet "$root/bench/Duet.Bench.Serve/bin/Release/net10.0/Duet.Bench.Serve.dll")
mkdir -p "$work"
if [ ! -f "$work/tokenizer/tokenizer.json" ]; then
  "${duet[@]}" tokenizer train --input "$root/data/sample" --vocab-size 8000 --out "$work/tokenizer" > /dev/null 2>&1
fi
model="$work/d512-f32.gguf"
if [ ! -f "$model" ]; then
  "${duet[@]}" init --dim 512 --layers 8 --heads 8 --kv-heads 8 --ffn 1536 --ctx 512 --seed 3 \
    --tokenizer "$work/tokenizer/tokenizer.json" --type F32 -o "$model" > /dev/null
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait_health() {  # URL [N healthy replicas]: up to 5 minutes
  for _ in $(seq 1 600); do
    if body="$(curl -sf -m 2 "$1/health" 2> /dev/null)"; then
      [ -z "${2:-}" ] || [[ "$body" == *"\"healthy\":$2"* ]] && return 0
    fi
    sleep 0.5
  done
  echo "$1 not healthy" >&2; return 1
}
: > "$work/run.jsonl"
tag() { sed "s/^{/{\"setup\":\"$1\",/" | tee -a "$work/run.jsonl"; }

# A: nginx on 8380 in front of 3 replicas (8381..8383); B: one replica on 8390; C: nginx on 8391 + one replica (8392);
# D: one replica with 24 slots on 8393.
"$root/deploy/replicas.sh" -m "$model" -n 3 --port 8380 --work "$work/three" --lifetime 3600 --restart --parallel 8 --ctx 512 -t 1 2> "$work/three.log" &
pids+=($!)
wait_health http://127.0.0.1:8380 3

status=0
if [ "${VERIFY:-1}" = 1 ]; then
  "${client[@]}" --url http://127.0.0.1:8380 --mode verify --clients 32 --requests 20 --max-tokens 24 | tag nginx-3 || status=1
  "${client[@]}" --url http://127.0.0.1:8380 --mode verify --clients 32 --requests 20 --max-tokens 24 \
    --kill-pid "$(cat "$work/three/replica-2.pid")" --kill-after 200 --kill-addr 127.0.0.1:8382 2> "$work/kill.log" | tag nginx-3-kill || status=1
  cat "$work/kill.log" >&2
  wait_health http://127.0.0.1:8380 3   # the watcher restarted replica 2
fi

"${duet[@]}" serve -m "$model" --port 8390 --parallel 8 --ctx 512 -t 2 > "$work/one.log" 2>&1 &
pids+=($!)
"$root/deploy/replicas.sh" -m "$model" -n 1 --port 8391 --work "$work/one-nginx" --lifetime 3600 --parallel 8 --ctx 512 -t 2 2> "$work/one-nginx.log" &
pids+=($!)
"${duet[@]}" serve -m "$model" --port 8393 --parallel 24 --ctx 512 -t 2 > "$work/one-p24.log" 2>&1 &
pids+=($!)
wait_health http://127.0.0.1:8390
wait_health http://127.0.0.1:8391 1
wait_health http://127.0.0.1:8393
for _ in $(seq 1 "$rounds"); do
  for setup in nginx-3:8380 direct-1:8390 nginx-1:8391 direct-1-24slots:8393; do
    "${client[@]}" --url "http://127.0.0.1:${setup#*:}" --mode throughput --clients 32 --requests 2 --max-tokens 64 | tag "${setup%%:*}"
  done
done
/usr/bin/python3 - "$work/run.jsonl" >&2 << 'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r["mode"] == "verify":
        print(f"verify {r['setup']}: {r['requests']} requests, {r.get('completed', r['requests'])} completed, {r['mismatched']} mismatched, "
              f"failed {r.get('failed', 0)} (before any byte {r.get('failed_before_response', 0)}, after headers {r.get('failed_after_headers', 0)}, "
              f"mid-stream {r.get('failed_mid_stream', 0)}, unexpected {r.get('failed_unexpected', 0)}), retried by nginx {r.get('retried_by_proxy', 0)}, {r['tokens_per_s']} tokens/s")
tp = [r for r in rows if r["mode"] == "throughput"]
for s in dict.fromkeys(r["setup"] for r in tp):
    xs = [r["tokens_per_s"] for r in tp if r["setup"] == s]
    print(f"throughput {s}: median {statistics.median(xs):.1f} tokens/s over {len(xs)} runs {xs}, TTFT p50 {statistics.median(r['ttft_p50_ms'] for r in tp if r['setup'] == s):.0f} ms")
EOF
exit $status
