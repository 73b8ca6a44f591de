#!/usr/bin/python3
"""Small multiple-choice task files in the public layouts, for the task tests (tests/TestData/tasks/).

Written with Python's csv and json modules in the layouts the datasets ship in; the parquet copies are written by
make_task_parquet.mjs (parquet-wasm, an independent parquet writer) from the .rows twins this script writes
beside them (parquet has no Debian Python reader; tasks_reference.py reads the twins).

    /usr/bin/python3 tests/reference/make_task_fixtures.py && (cd tests/reference && node make_task_parquet.mjs)

Layouts:
  mmlu/data/{test,dev}/SUBJECT_{test,dev}.csv        headerless: question,A,B,C,D,answer(letter)
  mmlu-parquet/all/{test,dev}-00000-of-00001.parquet  question, subject, choices[], answer(int)
  ceval/{val,dev}/SUBJECT_{val,dev}.csv              id,question,A,B,C,D,answer[,explanation]
  ceval-parquet/SUBJECT/{val,dev}-00000-of-00001.parquet
  cmmlu/{test,dev}/SUBJECT.csv                        ,Question,A,B,C,D,Answer
  arc/ARC-Challenge-{Test,Train}.jsonl                id, question{stem, choices[{text,label}]}, answerKey
  arc-parquet/ARC-Challenge/{test,train}-00000-of-00001.parquet   id, question, choices{text[],label[]}, answerKey
  hellaswag/hellaswag_{val,train}.jsonl               ind, activity_label, ctx_a, ctx_b, ctx, endings[], label(int)
  hellaswag-parquet/data/{validation,train}-00000-of-00001.parquet   the same, label a string
  hellaswag-llamacpp/hellaswag_val_full.txt           llama-perplexity: context, label, 4 endings (preprocessed)
  winogrande/{dev,train_xs}.jsonl                     qID, sentence, option1, option2, answer("1"|"2")
  winogrande-parquet/data/{validation,train}-00000-of-00001.parquet
  winogrande-llamacpp/winogrande-debiased-eval.csv    llama-perplexity: index,sentence,option1,option2,answer
"""
import csv, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tasks_reference import hellaswag_preprocess as preprocess  # noqa: E402  the harness's, for llama-perplexity's text

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "TestData", "tasks")

MMLU = {
    "college_physics": {
        "test": [
            ("A ball is dropped from rest. Ignoring air, how far does it fall in 2 s (g = 10 m/s^2)?", "5 m", "10 m", "20 m", "40 m", "C"),
            ("Which quantity is conserved in an elastic collision, but not always in an inelastic one?", "momentum", "kinetic energy", "mass", "charge", "B"),
            ("  The unit of power, \"watt\", equals:  ", "J/s", "N*m", "kg, m/s", "V/A", "A"),
        ],
        "dev": [
            ("What is the SI unit of force?", "joule", "newton", "pascal", "watt", "B"),
            ("Light travels fastest in:", "glass", "water", "vacuum", "diamond", "C"),
        ],
    },
    "computer_security": {
        "test": [
            ("Which of these is a hash function?\n(one answer)", "AES", "RSA", "SHA-256", "Diffie-Hellman", "C"),
            ("A program that copies itself across a network on its own is a:", "worm", "trojan", "rootkit", "keylogger", "A"),
        ],
        "dev": [
            ("What does TLS protect?", "data in transit", "data at rest", "CPU caches", "the BIOS", "A"),
        ],
    },
}

CEVAL = {
    "computer_network": {
        "val": [
            ("在 TCP/IP 模型中，IP 协议位于哪一层？", "应用层", "传输层", "网络层", "链路层", "C"),
            ("HTTP 默认使用的端口号是____。", "21", "25", "80", "443", "C"),
            ("下列哪个协议用于把域名解析为 IP 地址？", "DNS", "ARP", "DHCP", "FTP", "A"),
        ],
        "dev": [
            ("以太网的 MAC 地址长度是多少位？", "16", "32", "48", "64", "C"),
        ],
    },
    "high_school_physics": {
        "val": [
            ("物体做自由落体运动，1 秒末的速度约为（g 取 10 m/s²）", "1 m/s", "5 m/s", "10 m/s", "20 m/s", "C"),
        ],
        "dev": [
            ("力的国际单位是", "焦耳", "牛顿", "瓦特", "帕斯卡", "B"),
        ],
    },
}

CMMLU = {
    "agronomy": {
        "test": [
            ("水稻属于哪一类作物？", "油料作物", "粮食作物", "纤维作物", "糖料作物", "B"),
            ("植物进行光合作用的主要器官是", "根", "茎", "叶", "花", "C"),
        ],
        "dev": [
            ("小麦的主要产区位于中国的", "北方", "南方", "西南", "东南", "A"),
        ],
    },
    "logical": {
        "test": [
            ("所有的猫都是动物，汤姆是一只猫，所以汤姆是动物。这是", "归纳推理", "演绎推理", "类比推理", "无效推理", "B"),
        ],
        "dev": [
            ("“如果下雨，地就湿”，地没有湿，可以推出", "下雨了", "没下雨", "地是干的但下雨了", "无法判断", "B"),
        ],
    },
}

ARC = {
    "Test": [
        ("Mercury_7001", "Which gas do plants take in from the air to make food?", ["oxygen", "carbon dioxide", "nitrogen", "helium"], ["A", "B", "C", "D"], "B"),
        ("Mercury_7002", "What is the main source of energy for the water cycle?", ["the Sun", "the Moon", "wind"], ["A", "B", "C"], "A"),
        ("NYSEDREGENTS_2015_8_9", "Which of these is a renewable resource?", ["coal", "oil", "natural gas", "trees", "uranium"], ["1", "2", "3", "4", "5"], "4"),
    ],
    "Train": [
        ("Mercury_8001", "Which tool is best for measuring the mass of a rock?", ["a ruler", "a balance", "a thermometer", "a stopwatch"], ["A", "B", "C", "D"], "B"),
        ("Mercury_8002", "Water freezes at what temperature in degrees Celsius?", ["0", "32", "100", "-10"], ["A", "B", "C", "D"], "A"),
    ],
}

HELLASWAG = {
    "val": [
        (0, "Removing ice from car", "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "then",
         [", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."], 3),
        (1, "Baking cookies", "A woman stands in a kitchen [header] and mixes flour and sugar in a bowl.", "SHE",
         [" pours the batter onto a tray [title] and bakes it.", " throws the bowl out of the window.", " puts the bowl  on her head and dances.", " reads a newspaper about football."], 0),
        (2, "Personal Care and Style", "[header] How to tie a tie [title] Drape the tie around your neck.", "",
         ["[step] Cross the wide end over the narrow end.", "[step] Eat the tie.", "[step] Paint the tie blue  and green.", "[step] Mail the tie to a friend."], 0),
    ],
    "train": [
        (10, "Playing guitar", "A man sits on a chair holding a guitar.", "he",
         [" tunes the strings and starts to play.", " eats the guitar.", " flies away.", " turns into a cat."], 0),
    ],
}

WINOGRANDE = {
    "dev": [
        ("1-a", "The trophy doesn't fit into the brown suitcase because the _ is too large.", "trophy", "suitcase", "1"),
        ("2-b", "Sarah lent her umbrella to Maria because _ was going out into the rain.", "Sarah", "Maria", "2"),
        ("3-a", "The cup fell off the table, but the _ did not break because it was made of steel.", "cup", "table", "1"),
    ],
    "train_xs": [
        ("9-a", "The ice melted quickly because the _ was hot.", "ice", "room", "2"),
    ],
}


def write_csv(path, rows, header=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def write_jsonl(path, docs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def write_twin(parquet_path, docs, types):
    """The rows a parquet file is written from (make_task_parquet.mjs): {"types": {column: parquet type}, "rows": [...]}."""
    os.makedirs(os.path.dirname(parquet_path), exist_ok=True)
    with open(parquet_path + ".rows", "w", encoding="utf-8") as f:
        json.dump({"types": types, "rows": docs}, f, ensure_ascii=False, indent=1)


def main():
    letters = "ABCD"
    for subject, splits in MMLU.items():
        for split, qs in splits.items():
            write_csv(os.path.join(ROOT, "mmlu", "data", split, f"{subject}_{split}.csv"), [list(q) for q in qs])
    for split in ("test", "dev"):
        docs = [{"question": q[0], "subject": s, "choices": list(q[1:5]), "answer": letters.index(q[5])}
                for s, splits in MMLU.items() for q in splits[split]]
        write_twin(os.path.join(ROOT, "mmlu-parquet", "all", f"{split}-00000-of-00001.parquet"), docs,
                   {"question": "STRING", "subject": "STRING", "choices": "LIST<STRING>", "answer": "INT64"})
    for subject, splits in CEVAL.items():
        for split, qs in splits.items():
            header = ["id", "question", "A", "B", "C", "D", "answer"] + (["explanation"] if split == "dev" else [])
            rows = [[i] + list(q) + (["1. 解析略"] if split == "dev" else []) for i, q in enumerate(qs)]
            write_csv(os.path.join(ROOT, "ceval", split, f"{subject}_{split}.csv"), rows, header)
            docs = [{"id": i, "question": q[0], "A": q[1], "B": q[2], "C": q[3], "D": q[4], "answer": q[5], "explanation": ""} for i, q in enumerate(qs)]
            write_twin(os.path.join(ROOT, "ceval-parquet", subject, f"{split}-00000-of-00001.parquet"), docs,
                       {"id": "INT32", "question": "STRING", "A": "STRING", "B": "STRING", "C": "STRING", "D": "STRING", "answer": "STRING", "explanation": "STRING"})
    for subject, splits in CMMLU.items():
        for split, qs in splits.items():
            write_csv(os.path.join(ROOT, "cmmlu", split, f"{subject}.csv"), [[i] + list(q) for i, q in enumerate(qs)],
                      ["", "Question", "A", "B", "C", "D", "Answer"])
    for split, qs in ARC.items():
        write_jsonl(os.path.join(ROOT, "arc", f"ARC-Challenge-{split}.jsonl"),
                    [{"id": i, "question": {"stem": q, "choices": [{"text": t, "label": l} for t, l in zip(texts, labels)]}, "answerKey": key}
                     for i, q, texts, labels, key in qs])
        write_twin(os.path.join(ROOT, "arc-parquet", "ARC-Challenge", f"{split.lower()}-00000-of-00001.parquet"),
                   [{"id": i, "question": q, "choices": {"text": texts, "label": labels}, "answerKey": key} for i, q, texts, labels, key in qs],
                   {"id": "STRING", "question": "STRING", "choices": "STRUCT<text:LIST<STRING>,label:LIST<STRING>>", "answerKey": "STRING"})
    for split, qs in HELLASWAG.items():
        docs = [{"ind": ind, "activity_label": act, "ctx_a": a, "ctx_b": b, "ctx": a + " " + b, "endings": e, "source_id": f"src~{ind}",
                 "split": split, "split_type": "indomain", "label": label} for ind, act, a, b, e, label in qs]
        write_jsonl(os.path.join(ROOT, "hellaswag", f"hellaswag_{split}.jsonl"), docs)
        write_twin(os.path.join(ROOT, "hellaswag-parquet", "data", f"{'validation' if split == 'val' else split}-00000-of-00001.parquet"),
                   [dict(d, label=str(d["label"])) for d in docs],
                   {"ind": "INT32", "activity_label": "STRING", "ctx_a": "STRING", "ctx_b": "STRING", "ctx": "STRING", "endings": "LIST<STRING>",
                    "source_id": "STRING", "split": "STRING", "split_type": "STRING", "label": "STRING"})
    lines = []
    for ind, act, a, b, e, label in HELLASWAG["val"]:
        lines += [preprocess(act + ": " + a + " " + b.capitalize()), str(label)] + [preprocess(x) for x in e]
    os.makedirs(os.path.join(ROOT, "hellaswag-llamacpp"), exist_ok=True)
    with open(os.path.join(ROOT, "hellaswag-llamacpp", "hellaswag_val_full.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    for split, qs in WINOGRANDE.items():
        docs = [{"qID": i, "sentence": s, "option1": o1, "option2": o2, "answer": a} for i, s, o1, o2, a in qs]
        write_jsonl(os.path.join(ROOT, "winogrande", f"{split}.jsonl"), docs)
        write_twin(os.path.join(ROOT, "winogrande-parquet", "data", f"{'validation' if split == 'dev' else 'train'}-00000-of-00001.parquet"), docs,
                   {"qID": "STRING", "sentence": "STRING", "option1": "STRING", "option2": "STRING", "answer": "STRING"})
    write_csv(os.path.join(ROOT, "winogrande-llamacpp", "winogrande-debiased-eval.csv"),
              [[n, s, o1, o2, a] for n, (i, s, o1, o2, a) in enumerate(WINOGRANDE["dev"])], ["index", "sentence", "option1", "option2", "answer"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
