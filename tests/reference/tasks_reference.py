#!/usr/bin/python3
"""Independent reference for multiple-choice task scoring as lm-evaluation-harness does it (HFLM loglikelihood).

Written from the harness's task configs and its HFLM request building, not from Duet's C# code: the task templates
(mmlu, ceval-valid, cmmlu, arc, hellaswag with its preprocess, winogrande partial evaluation), first-n few-shot
examples (description, then each example + target_delimiter + target + fewshot_delimiter, then the question),
_encode_pair (trailing white space moved to the continuation; continuation tokens = encode(context + continuation)
cut at len(encode(context))), the model reading (context + continuation)[-(max_length+1):][:-1] whole, and the
metrics acc, acc_norm (per character), acc_bytes (per UTF-8 byte). The tokenizer is python3-sentencepiece on a real
.model file; the model is llama_reference.py's float64 PyTorch LLaMA.

    /usr/bin/python3 tests/reference/tasks_reference.py --model DIR --spm tests/TestData/spm-bpe.model \
        --task mmlu --data tests/TestData/tasks/mmlu [--shots 1] [--bos 1] [--max-length N] --out result.json

Parquet files are read through the .rows twins they were written from (make_task_parquet.mjs): Debian has no parquet
reader for Python. Output JSON: questions (in file order: where, gold, lls, greedy, picked per metric, the token
ids of each request) and metrics (value, stderr).
"""
import argparse, csv, json, math, os, re, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as llref  # noqa: E402

TASKS = {
    # name: reader, eval splits, few-shot splits, description, doc_to_text, choice mode, metrics
    "mmlu": ("mc", ["test"], ["dev"], "The following are multiple choice questions (with answers) about {subject}.\n\n",
             lambda d: f"{d['question'].strip()}\nA. {d['choices'][0]}\nB. {d['choices'][1]}\nC. {d['choices'][2]}\nD. {d['choices'][3]}\nAnswer:",
             "letters", ["acc", "acc_norm", "acc_bytes"]),
    "ceval": ("mc", ["val"], ["dev"], "以下是中国关于{subject}的单项选择题，请选出其中的正确答案。\n\n",
              lambda d: f"{d['question'].strip()}\nA. {d['choices'][0]}\nB. {d['choices'][1]}\nC. {d['choices'][2]}\nD. {d['choices'][3]}\n答案：",
              "letters", ["acc", "acc_norm", "acc_bytes"]),
    "cmmlu": ("mc", ["test"], ["dev"], "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
              lambda d: f"{d['question'].strip()}\nA. {d['choices'][0]}\nB. {d['choices'][1]}\nC. {d['choices'][2]}\nD. {d['choices'][3]}\n答案：",
              "letters", ["acc", "acc_norm", "acc_bytes"]),
    "arc": ("arc", ["test"], ["train"], "", lambda d: f"Question: {d['question']}\nAnswer:", "texts", ["acc", "acc_norm", "acc_bytes"]),
    "hellaswag": ("hellaswag", ["val", "validation"], ["train"], "", lambda d: d["query"], "texts", ["acc", "acc_norm", "acc_bytes"]),
    "winogrande": ("winogrande", ["dev", "validation", "eval"], ["train"], "", None, "partial", ["acc"]),
}
# Subject display names of the harness's per-subject descriptions (only those the fixtures use).
SUBJECTS = {"computer_network": "计算机网络", "high_school_physics": "高中物理", "agronomy": "农学", "logical": "逻辑学"}
MMLU_COLUMNS = ["question", "A", "B", "C", "D", "answer"]


def words(rel):
    return [w for w in re.split(r"[^A-Za-z]", rel) if w]


def find(data, splits):
    if os.path.isfile(data):
        return [data]
    out = []
    for dirpath, _, files in os.walk(data):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.splitext(f)[1].lower() in (".csv", ".jsonl", ".json", ".parquet", ".txt") and \
                    any(w.lower() in splits for w in words(os.path.relpath(p, data))):
                out.append(p)
    return sorted(out)


def subject_of(path, splits):
    stem = os.path.splitext(os.path.basename(path))[0]
    for s in splits:
        if stem.lower().endswith("_" + s):
            return stem[:-(len(s) + 1)]
    if any(stem.lower() == s or stem.lower().startswith(s + "-") for s in splits):
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return stem


def rows(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        with open(path + ".rows", encoding="utf-8") as f:
            return json.load(f)["rows"]
    if ext in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if ext == ".txt":
        lines = open(path, encoding="utf-8").read().split("\n")
        while lines and lines[-1] == "":
            lines.pop()
        return [{"query": lines[i], "label": lines[i + 1], "endings": lines[i + 2:i + 6]} for i in range(0, len(lines), 6)]
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    if any(c.strip() in ("question", "Question", "sentence") for c in table[0]):
        header = [c.strip() for c in table[0]]
        return [{h.lower() if h.lower() in ("question", "answer") else h: v for h, v in zip(header, r)} for r in table[1:]]
    return [dict(zip(MMLU_COLUMNS, r)) for r in table]


def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def doc(reader, row, file_subject):
    """The harness's process_docs / doc_to_* for each task, to one dict: question fields, choices, gold, subject, target."""
    if reader == "mc":
        choices = row["choices"] if "choices" in row else [row[c] for c in "ABCD"]
        a = row["answer"]
        gold = a if isinstance(a, int) else "ABCD".index(a.strip())
        subject = row.get("subject") or file_subject
        return {"question": row["question"], "choices": choices, "gold": gold, "subject": subject,
                "subject_name": SUBJECTS.get(subject, subject.replace("_", " "))}
    if reader == "arc":
        q = row["question"]
        if isinstance(q, dict):
            texts = [c["text"] for c in q["choices"]]
            labels = [c["label"] for c in q["choices"]]
            q = q["stem"]
        else:
            texts, labels = row["choices"]["text"], row["choices"]["label"]
        return {"question": q, "choices": texts, "gold": labels.index(row["answerKey"]), "subject": file_subject}
    if reader == "hellaswag":
        if "query" in row:
            return {"query": row["query"], "choices": row["endings"], "gold": int(row["label"]), "subject": file_subject}
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        return {"query": hellaswag_preprocess(row["activity_label"] + ": " + ctx),
                "choices": [hellaswag_preprocess(e) for e in row["endings"]], "gold": int(row["label"]), "subject": file_subject}
    if reader == "winogrande":
        idx = row["sentence"].index("_")
        return {"choices": [row["sentence"][:idx] + o for o in (row["option1"], row["option2"])],
                "target": row["sentence"][idx + 1:].strip(), "gold": {"1": 0, "2": 1}[row["answer"]], "subject": file_subject}
    raise ValueError(reader)


def load(task, data, splits, limit=None):
    reader = TASKS[task][0]
    out = []
    for f in find(data, splits):
        counts = {}
        for i, r in enumerate(rows(f)):
            d = doc(reader, r, subject_of(f, splits))
            counts[d["subject"]] = counts.get(d["subject"], 0) + 1
            if limit is None or counts[d["subject"]] <= limit:
                d["where"] = (f, i)
                out.append(d)
    return out


def choice_strings(mode, d):
    return ["ABCDEFGH"[i] for i in range(len(d["choices"]))] if mode == "letters" else d["choices"]


def requests_of(task, d, shots):
    reader, _, _, description, to_text, mode, _ = TASKS[task]
    ctx = description.format(subject=d.get("subject_name", "")) if description else ""
    for ex in shots:
        if mode == "partial":
            ctx += ex["choices"][ex["gold"]] + " " + ex["target"]
        else:
            ctx += to_text(ex) + " " + choice_strings(mode, ex)[ex["gold"]]
        ctx += "\n\n"
    if mode == "partial":
        return [(ctx + c, " " + d["target"]) for c in d["choices"]]
    ctx += to_text(d)
    return [(ctx, " " + c) for c in choice_strings(mode, d)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--spm", required=True)
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--data", required=True)
    ap.add_argument("--shots", type=int, default=0)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--bos", type=int, default=0, help="1: BOS first in every encoding")
    ap.add_argument("--max-length", type=int, help="default: the model's max_position_embeddings")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    import sentencepiece as spm
    import torch
    sp = spm.SentencePieceProcessor(model_file=a.spm)
    cfg, tensors = llref.load_model(a.model)
    max_length = a.max_length or cfg["max_position_embeddings"]

    def tok_encode(s):
        ids = sp.encode(s)
        return ([sp.bos_id()] if a.bos else []) + ids

    def encode_pair(context, continuation):
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = tok_encode(context + continuation)
        ctx = tok_encode(context)
        return ctx, whole[len(ctx):]

    def loglikelihood(ctx, cont):
        inp = (ctx + cont)[-(max_length + 1):][:-1]
        logits = torch.from_numpy(np.asarray(llref.forward_torch(cfg, tensors, inp), dtype=np.float64))
        logp = torch.log_softmax(logits, dim=-1)[len(inp) - len(cont):]
        ll = float(sum(logp[j, t] for j, t in enumerate(cont)))
        greedy = bool(all(int(logp[j].argmax()) == t for j, t in enumerate(cont)))
        return ll, greedy

    reader, evals, fewshots, _, _, mode, metrics = TASKS[a.task]
    docs = load(a.task, a.data, evals, a.limit)
    pool = load(a.task, a.data, fewshots) if a.shots else []
    questions, correct = [], {m: [] for m in metrics}
    for d in docs:
        shots = [s for s in pool if reader != "mc" or s["subject"] == d["subject"]][:a.shots]
        reqs = [encode_pair(c, x) for c, x in requests_of(a.task, d, shots)]
        scored = [loglikelihood(c, x) for c, x in reqs]
        lls = [s[0] for s in scored]
        strings = choice_strings(mode, d)
        picked = {}
        for m in metrics:
            norm = {"acc": [1.0] * len(lls), "acc_norm": [float(len(s)) for s in strings],
                    "acc_bytes": [float(len(s.encode("utf-8"))) for s in strings]}[m]
            picked[m] = int(np.argmax(np.array(lls) / np.array(norm)))
            correct[m].append(1.0 if picked[m] == d["gold"] else 0.0)
        questions.append({"where": f"{d['where'][0]}#{d['where'][1]}", "gold": d["gold"], "lls": lls, "greedy": [s[1] for s in scored],
                          "picked": picked, "context_tokens": [c for c, _ in reqs], "continuation_tokens": [x for _, x in reqs]})
    result = {"task": a.task, "shots": a.shots, "bos": a.bos, "questions": questions, "metrics": {}}
    for m, xs in correct.items():
        n = len(xs)
        mean = sum(xs) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
        result["metrics"][m] = {"value": mean, "stderr": sd / math.sqrt(n)}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
