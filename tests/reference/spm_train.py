#!/usr/bin/python3
"""Train a small LLaMA-style SentencePiece BPE model and encode the test text with it.

Needs Debian's python3-sentencepiece (0.1.97) and the Debian Reference text
(debian-reference-en, debian-reference-zh-cn). Run with /usr/bin/python3.

1. Trains tests/TestData/spm-bpe.model (model_type=bpe, vocab 8000, byte_fallback,
   split_digits, identity normalization, no whitespace squeezing, dummy prefix,
   unk/bos/eos = 0/1/2, no pad) on the English + Chinese Debian Reference text
   (every non-blank line, in file order: no sampling, no shuffling). The test
   text is NOT part of the training data.
2. Encodes every line of tests/TestData/bilingual-test.txt (split on LF only;
   CR stays in the line; no BOS/EOS) into tests/reference/fixtures/spm-bpe.ids.txt,
   one line of space-separated ids per input line, and reports lines for which
   sp.decode(sp.encode(line)) != line.

Usage: /usr/bin/python3 tests/reference/spm_train.py [--no-train] [INPUT [OUT_IDS]]
"""
import gzip
import io
import os
import sys
from pathlib import Path

import sentencepiece as spm

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests/TestData/spm-bpe.model"
CORPUS = [Path(f"/usr/share/debian-reference/debian-reference.{lang}.txt.gz") for lang in ("en", "zh-cn")]


def corpus_lines():
    """All non-blank lines of both books in file order (NBSP-only lines count as blank)."""
    for path in CORPUS:
        for line in gzip.open(path, "rt", encoding="utf-8").read().split("\n"):
            if line.strip(" \t\u00a0"):
                yield line


def train():
    # Feeding sentences through an iterator and receiving the model in memory keeps
    # temporary file names out of the model's trainer_spec, so the bytes are reproducible.
    model = io.BytesIO()
    spm.set_random_generator_seed(1234)  # only sampling would use it; fixed anyway
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus_lines(),
        model_writer=model,
        model_type="bpe",
        vocab_size=8000,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        allow_whitespace_only_pieces=True,
        character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=2,
        input_sentence_size=10_000_000,  # larger than the corpus: use every line
        shuffle_input_sentence=False,
        max_sentence_length=16384,
        minloglevel=1,
    )
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    MODEL.write_bytes(model.getvalue())
    print(f"{MODEL.relative_to(ROOT)}: {MODEL.stat().st_size} bytes")


def encode(input_path, out_path):
    sp = spm.SentencePieceProcessor(model_file=str(MODEL))
    lines = Path(input_path).read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the empty string after a final LF is not a line
    rows, bad, ntok = [], [], 0
    for i, line in enumerate(lines, 1):
        ids = sp.encode(line, out_type=int)
        ntok += len(ids)
        rows.append(" ".join(map(str, ids)))
        if sp.decode(ids) != line:
            bad.append(i)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(("\n".join(rows) + "\n" if rows else "").encode("utf-8"))
    print(f"spm-bpe: {len(lines)} lines, {ntok} tokens -> {os.path.relpath(out_path)}")
    print(f"spm-bpe: {len(bad)} lines do not round-trip" + (f" (first: {', '.join(map(str, bad[:12]))})" if bad else ""))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--no-train" in args:
        args.remove("--no-train")
    else:
        train()
    encode(args[0] if args else ROOT / "tests/TestData/bilingual-test.txt",
           args[1] if len(args) > 1 else ROOT / "tests/reference/fixtures/spm-bpe.ids.txt")
