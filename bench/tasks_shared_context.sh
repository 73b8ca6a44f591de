#!/usr/bin/env bash
# Multiple-choice questions per second with the question's context run once and shared by its choices (the default)
# against every choice's whole sequence run alone (--no-shared-context, as lm-evaluation-harness runs them), on the
# same model, tasks and threads, alternating REPEAT times; the median of each and their ratio. The scores must be
# the same both ways (the script exits 1 if an accuracy differs).
# Usage: [REPEAT=3] [THREADS=2] bench/tasks_shared_context.sh MODEL TASK[,TASK] [duet eval tasks options...]
#   e.g. bench/tasks_shared_context.sh out/duet-tiny.gguf duet-next-en,duet-next-zh
#        bench/tasks_shared_context.sh model.gguf mmlu --data tests/TestData/tasks/mmlu --shots 1
set -euo pipefail
model="${1:?model}"; tasks="${2:?tasks}"; shift 2
repeat="${REPEAT:-3}"; threads="${THREADS:-2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
for ((i = 0; i < repeat; i++)); do
  "${duet[@]}" eval tasks --model "$model" --tasks "$tasks" -t "$threads" -o "$dir/shared-$i.json" "$@" > /dev/null 2>&1
  "${duet[@]}" eval tasks --model "$model" --tasks "$tasks" -t "$threads" -o "$dir/whole-$i.json" --no-shared-context "$@" > /dev/null 2>&1
done
python3 - "$dir" "$repeat" "$model" <<'PY'
import glob, json, statistics, sys
d, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = {k: [json.load(open(f"{d}/{k}-{i}.json")) for i in range(n)] for k in ("shared", "whole")}
ok = True
for t, task in enumerate(runs["shared"][0]["tasks"]):
    qps = {k: statistics.median(r["tasks"][t]["questions_per_second"] for r in runs[k]) for k in runs}
    tok = {k: runs[k][0]["tasks"][t]["tokens_run"] for k in runs}
    same = all(r["tasks"][t]["metrics"] == task["metrics"] for k in runs for r in runs[k])
    ok &= same
    print(f"{model} {task['task']} ({task['shots']}-shot, {task['questions']} questions): shared context {qps['shared']:.2f} questions/s "
          f"({tok['shared']} tokens run), whole sequences {qps['whole']:.2f} ({tok['whole']} tokens); {qps['shared'] / qps['whole']:.2f}x; "
          f"accuracy {100 * task['metrics']['acc']['value']:.1f}% {'the same both ways' if same else 'DIFFERS'}")
sys.exit(0 if ok else 1)
PY
