#!/usr/bin/env bash
# Data-parallel training over MPI (issue 20): bit-identity with one process, and the speed of 2 ranks x 1 thread
# against 1 process x 2 threads, with the share of step time spent communicating.
#   bench/train_mpi.sh check [WORK]          duet-tiny, 50 steps: one process (2 threads), mpirun -np 2, mpirun -np 2 --zero;
#                                            arrays and losses compared (bench/ckpt_compare.py); exit 1 if they differ
#   bench/train_mpi.sh speed [WORK]          duet-tiny and the 15M shape: 1x2 and 2x1 alternating, two rounds; JSON lines
#   bench/train_mpi.sh speed-netns [WORK]    the same with the two ranks in two network namespaces joined by a link
#                                            shaped to 1 Gbit/s (bench/netns_mpi.sh): the cost model's check
#   bench/train_mpi.sh peer [WORK]           PyTorch's data-parallel training as the peer (Debian torch 1.13, gloo,
#                                            DistributedDataParallel, bench/train_pytorch.py, random tokens) next to
#                                            Duet: 1 x 2, 1 x 1 on half the batch (a rank's compute), 2 x 1 over
#                                            loopback TCP and over the 1 Gbit/s link, alternating with Duet 2 x 1 on it
# The corpus is the README's (data/sample, 8000-token tokenizer): the 15M shape runs with that vocabulary (8000, tied).
# Speed from metrics.jsonl: steps after the first two (warm-up), median tokens/s, and for the ranks the median of
# comm_s (time blocked in MPI: the part of the gradient exchange the backward did not hide, the norm's partials, the
# all-gather) over step_s. Run it alone on the machine: two ranks of one thread each take both cores.
set -euo pipefail
mode="${1:?usage: bench/train_mpi.sh check|speed|speed-netns [WORK]}"
work="${2:-/tmp/duet-train-mpi}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
mpirun=(mpirun --bind-to none -np 2)
mkdir -p "$work"
if [ ! -f "$work/corpus/manifest.json" ] || ! grep -q '"tokens"' "$work/corpus/manifest.json"; then
  "${duet[@]}" tokenizer train --input "$root/data/sample" --vocab-size 8000 --out "$work/tokenizer" > /dev/null 2>&1
  "${duet[@]}" data tokenize "$root/data/sample" --tokenizer "$work/tokenizer/tokenizer.json" --out "$work/corpus" > /dev/null 2>&1
fi

config() { # NAME PRESET BATCH STEPS THREADS EVAL
  cat > "$work/$1.json" << JSON
{ "name": "$1", "data": "$work/corpus", "tokenizer": "$work/tokenizer/tokenizer.json", "preset": "$2",
  "batchSize": $3, "seqLen": 256, "microBatches": 2, "steps": $4,
  "optimizer": { "learningRate": 0.003, "minLearningRate": 0.0003, "warmupSteps": 20 },
  "evalEvery": $6, "evalWindows": 64, "checkpointEvery": 25, "keepCheckpoints": 2, "seed": 1234, "threads": $5, "peakGflops": 230 }
JSON
  echo "$work/$1.json"
}

summary() { # RUN LABEL PRESET RANKS THREADS
  /usr/bin/python3 - "$@" << 'PY'
import json, statistics, sys
run, label, preset, ranks, threads = sys.argv[1:6]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"train"' in l][2:]
tps = statistics.median(r["tokens_per_s"] for r in rows)
out = {"label": label, "preset": preset, "ranks": int(ranks), "threads_per_rank": int(threads), "steps": len(rows), "tokens_per_s": round(tps, 1)}
if "comm_s" in rows[0]:
    out["comm_s"] = round(statistics.median(r["comm_s"] for r in rows), 4)
    out["step_s"] = round(statistics.median(r["step_s"] for r in rows), 4)
    out["comm_share"] = round(out["comm_s"] / out["step_s"], 4)
print(json.dumps(out))
PY
}

case "$mode" in
  check)
    c="$(config tiny-check duet-tiny 16 50 1 25)"
    sed 's/"threads": 1/"threads": 2/' "$c" > "$work/tiny-check-2t.json"
    "${duet[@]}" train --config "$work/tiny-check-2t.json" --out "$work/check-one" --restart > "$work/check-one.log" 2>&1
    "${mpirun[@]}" "${duet[@]}" train --config "$c" --out "$work/check-two" --restart > "$work/check-two.log" 2>&1
    "${mpirun[@]}" "${duet[@]}" train --config "$c" --out "$work/check-zero" --restart --zero > "$work/check-zero.log" 2>&1
    /usr/bin/python3 "$root/bench/ckpt_compare.py" "$work/check-one" "$work/check-two" "$work/check-zero"
    ;;
  speed|speed-netns)
    if [ "$mode" = speed-netns ]; then
      "$root/bench/netns_mpi.sh" up 1gbit > /dev/null
      trap '"$root/bench/netns_mpi.sh" down > /dev/null' EXIT
      launch=("$root/bench/netns_mpi.sh" run --)
    else
      launch=("${mpirun[@]}")
    fi
    for round in 1 2; do
      for preset in duet-tiny 15m; do
        batch=16; [ "$preset" = 15m ] && batch=8
        c1="$(config "$preset-1x2" "$preset" $batch 12 2 0)"
        c2="$(config "$preset-2x1" "$preset" $batch 12 1 0)"
        "${duet[@]}" train --config "$c1" --out "$work/run-$preset-1x2" --restart > "$work/run-$preset-1x2.log" 2>&1
        summary "$work/run-$preset-1x2" "one process" "$preset" 1 2
        "${launch[@]}" "${duet[@]}" train --config "$c2" --out "$work/run-$preset-2x1" --restart > "$work/run-$preset-2x1.log" 2>&1
        summary "$work/run-$preset-2x1" "$mode" "$preset" 2 1
      done
    done
    ;;
  peer)
    "$root/bench/netns_mpi.sh" up 1gbit > /dev/null
    trap '"$root/bench/netns_mpi.sh" down > /dev/null' EXIT
    py=(/usr/bin/python3 "$root/bench/train_pytorch.py" --vocab 8000 --seq 256 --steps 10 --threads 1)
    ddp() { # LABEL PRESET BATCH NETNS(0/1): two ranks, rank 0 prints
      local port=$((29500 + RANDOM % 400))
      for r in 1 0; do
        if [ "$4" = 1 ]; then
          ip netns exec "duet-ns$r" env WORLD_SIZE=2 RANK=$r MASTER_ADDR=10.200.0.1 MASTER_PORT=$port GLOO_SOCKET_IFNAME="duet-veth$r" \
            "${py[@]}" --preset "$2" --batch "$3" > "$work/ddp-$r.out" 2>&1 &
        else
          env WORLD_SIZE=2 RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port GLOO_SOCKET_IFNAME=lo "${py[@]}" --preset "$2" --batch "$3" > "$work/ddp-$r.out" 2>&1 &
        fi
      done
      wait
      sed "s/^{/{\"label\":\"$1\",/" "$work/ddp-0.out" | grep '^{'
    }
    for round in 1 2; do
      for preset in duet-tiny 15m; do
        batch=16; [ "$preset" = 15m ] && batch=8
        /usr/bin/python3 "$root/bench/train_pytorch.py" --vocab 8000 --seq 256 --steps 10 --threads 2 --preset $preset --batch $batch | sed 's/^{/{"label":"pytorch 1x2",/'
        "${py[@]}" --preset $preset --batch $((batch / 2)) | sed 's/^{/{"label":"pytorch 1x1 half batch",/'
        ddp "pytorch ddp 2x1 loopback" $preset $batch 0
        ddp "pytorch ddp 2x1 netns 1gbit" $preset $batch 1
        c2="$(config "$preset-2x1" "$preset" $batch 12 1 0)"
        "$root/bench/netns_mpi.sh" run -- "${duet[@]}" train --config "$c2" --out "$work/run-$preset-2x1" --restart > "$work/run-$preset-2x1.log" 2>&1
        summary "$work/run-$preset-2x1" "duet 2x1 netns 1gbit" "$preset" 2 1
      done
    done
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
