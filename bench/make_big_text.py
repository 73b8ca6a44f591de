#!/usr/bin/python3
"""Writes about N MB (default 100) of bilingual text for the trainer's scale benchmark: Debian Reference
in English and Chinese, repeated; in every other repetition the characters of each Chinese run are
shuffled (fixed seed), so the table of distinct pre-tokens keeps growing as it would on new text.
Usage: /usr/bin/python3 bench/make_big_text.py OUT [MB]"""
import gzip
import random
import re
import sys

out, mb = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 100
src = "".join(gzip.open(f"/usr/share/debian-reference/debian-reference.{l}.txt.gz", "rt", encoding="utf-8").read() for l in ("en", "zh-cn"))
rng = random.Random(7)
cjk = re.compile(r"[\u4e00-\u9fff]{2,}")
written, rep = 0, 0
with open(out, "w", encoding="utf-8") as f:
    while written < mb * 1e6:
        text = src if rep % 2 == 0 else cjk.sub(lambda m: "".join(rng.sample(m.group(0), len(m.group(0)))), src)
        f.write(text)
        written += len(text.encode())
        rep += 1
print(f"{out}: {written / 1e6:.1f} MB in {rep} repetitions")
