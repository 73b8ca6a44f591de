#!/usr/bin/env python3
"""Reference spans of chat fine-tuning (SFT): which text of a rendered conversation the loss is taken on.

For every real template under tests/TestData/chat_templates and a few training conversations (each ending with an
assistant reply; system prompts, several turns, Chinese), renders with Python jinja2 exactly as Hugging Face
transformers' apply_chat_template does (render_chat_templates.py's environment, imported) and cuts the text:
an assistant turn's span is what the full rendering of messages[:i+1] (add_generation_prompt=False) adds after the
rendering of messages[:i] with add_generation_prompt=True: the reply as the template writes it, with its
end-of-turn marker. Everything else (system, user turns, the assistant header the generation prompt writes) is
context. Templates that refuse a conversation, or whose prefix is not a prefix of the longer rendering, are recorded
as such.

Writes tests/TestData/chat_templates/sft_spans.json (committed; the C# tests need no Python):
    /usr/bin/python3 tests/reference/sft_spans.py      (Debian: apt-get install python3-jinja2)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_chat_templates as rct  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "TestData", "chat_templates")

CONVERSATIONS = {
    "one_turn": [{"role": "user", "content": "What does ls do?"}, {"role": "assistant", "content": "It lists directory contents."}],
    "system_two_turns": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "What is apt?"},
        {"role": "assistant", "content": "Debian's package manager."},
        {"role": "user", "content": "And dpkg?"},
        {"role": "assistant", "content": "The lower-level tool apt uses."},
    ],
    "chinese": [
        {"role": "user", "content": "ls 命令是做什么的？"},
        {"role": "assistant", "content": "列出目录内容。\n例如：ls -l"},
    ],
}


class Refused(Exception):
    pass


def render(source, messages, add_generation_prompt, bos, eos):
    r = rct.render(source, messages, add_generation_prompt, bos, eos)
    if "output" not in r:
        raise Refused(json.dumps(r, ensure_ascii=False))
    return r["output"]


def spans(env_source, messages, bos, eos):
    full = render(env_source, messages, False, bos, eos)
    out, pos = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render(env_source, messages[:i], True, bos, eos)
        upto = render(env_source, messages[:i + 1], False, bos, eos)
        if not upto.startswith(prompt) or not full.startswith(upto) or len(prompt) < pos:
            return {"error": f"not incremental at message {i}"}
        out.append({"text": prompt[pos:], "train": False})
        out.append({"text": upto[len(prompt):], "train": True})
        pos = len(upto)
    if pos < len(full):
        out.append({"text": full[pos:], "train": False})
    return {"full": full, "spans": [s for s in out if s["text"]]}


def main():
    cases = []
    for name in sorted(os.listdir(ROOT)):
        if not name.endswith(".jinja"):
            continue
        source = open(os.path.join(ROOT, name), encoding="utf-8").read()
        for conv, messages in CONVERSATIONS.items():
            case = {"template": name, "conversation": conv, "bos_token": "<s>", "eos_token": "</s>"}
            try:
                case.update(spans(source, messages, "<s>", "</s>"))
            except Refused as e:  # a template that refuses the conversation (raise_exception, an undefined name)
                case["error"] = str(e)
            cases.append(case)
    out = {"generator": "tests/reference/sft_spans.py", "jinja2": rct.jinja2.__version__, "strftime_now": rct.FIXED_NOW.isoformat(),
           "conversations": CONVERSATIONS, "cases": cases}
    with open(os.path.join(ROOT, "sft_spans.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases, {sum('error' in c for c in cases)} refused or not incremental")
    return 0


if __name__ == "__main__":
    sys.exit(main())
