#!/usr/bin/env python3
"""Reference renderings of chat templates, for Duet's C# Jinja-subset renderer (Duet.Tokenizers.ChatTemplates).

Renders every tests/TestData/chat_templates/*.jinja with Python jinja2 configured exactly as Hugging Face
transformers' apply_chat_template does (transformers/utils/chat_template_utils.py, _compile_jinja_template):

    ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                  extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    filters["tojson"]          = json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    globals["raise_exception"] = raise jinja2.exceptions.TemplateError(message)
    globals["strftime_now"]    = datetime.now().strftime(format)
    template.render(messages=..., tools=None, documents=None, add_generation_prompt=..., bos_token=..., eos_token=..., **extra)

with two deliberate differences, both invisible in the outputs: strftime_now reads a fixed clock (FIXED_NOW, so the
fixture is reproducible; the C# tests inject the same time), and the `{% generation %}` tag of AssistantTracker is a
plain pass-through block (it only records offsets in transformers).

Writes (both committed; the C# tests read them and need no Python):
    tests/TestData/chat_templates/expected.json  real templates x conversations -> output or raised error
    tests/TestData/chat_templates/features.json  small templates probing one language feature each

Run from the repository root with any Python that has jinja2 >= 3.1 (Debian: apt-get install python3-jinja2):
    python3 tests/reference/render_chat_templates.py
"""
import datetime
import json
import os
import platform
import sys

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TEMPLATES = os.path.join(ROOT, "tests", "TestData", "chat_templates")
FIXED_NOW = datetime.datetime(2025, 2, 3, 14, 5, 9)


class GenerationTag(Extension):
    """`{% generation %}...{% endgeneration %}` as a pass-through block (transformers' AssistantTracker renders the same text)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_environment()


def render(source, messages, add_generation_prompt, bos_token, eos_token, extra=None):
    """One case as a dict: {"output": text} or {"raise_exception": message} or {"error": type, "message": text}."""
    try:
        template = ENV.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"syntax_error": str(e), "line": e.lineno}
    except SyntaxError as e:  # jinja2 compiles to Python; e.g. 'break' outside a loop fails there
        return {"syntax_error": "%s: %s" % (type(e).__name__, e.msg)}
    kwargs = {"bos_token": bos_token, "eos_token": eos_token}
    kwargs.update(extra or {})
    try:
        out = template.render(messages=messages, tools=kwargs.pop("tools", None), documents=kwargs.pop("documents", None),
                              add_generation_prompt=add_generation_prompt, **kwargs)
        return {"output": out}
    except jinja2.exceptions.UndefinedError as e:
        return {"error": "UndefinedError", "message": str(e)}
    except jinja2.exceptions.TemplateError as e:
        # raise_exception raises the base TemplateError; jinja2's own runtime errors are subclasses.
        if type(e) is jinja2.exceptions.TemplateError:
            return {"raise_exception": str(e)}
        return {"error": type(e).__name__, "message": str(e)}
    except Exception as e:  # TypeError, ZeroDivisionError, ... from Python operations on template values
        return {"error": type(e).__name__, "message": str(e)}


# ---------------------------------------------------------------------------------------------------------------
# Real templates. bos/eos are the special tokens of each model's tokenizer_config.json (Qwen has no BOS; HF then
# leaves bos_token undefined, the Qwen templates never read it, so "" is passed).

TEMPLATE_TOKENS = {
    "duet-bpetrainer-chatml.jinja": ("<s>", "</s>"),
    "yi-chat.jinja": ("<|startoftext|>", "<|im_end|>"),
    "qwen2.5-7b-instruct.jinja": ("", "<|im_end|>"),
    "qwen3.jinja": ("", "<|im_end|>"),
    "llama-2-7b-chat.jinja": ("<s>", "</s>"),
    "llama-3-8b-instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.1-8b-instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2-3b-instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral-7b-instruct-v0.1-original.jinja": ("<s>", "</s>"),
    "mistral-7b-instruct-v0.2-original.jinja": ("<s>", "</s>"),
    "mistral-v1-system.jinja": ("<s>", "</s>"),
    "mistral-7b-instruct-v0.3.jinja": ("<s>", "</s>"),
    "mistral-nemo-instruct-2407.jinja": ("<s>", "</s>"),
    "hermes-2-pro-llama-3-8b-tool_use.jinja": ("<|begin_of_text|>", "<|im_end|>"),
    "hermes-3-llama-3.1-8b-tool_use.jinja": ("<|begin_of_text|>", "<|im_end|>"),
}


def msg(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "system_user": [msg("system", "You are a helpful assistant."), msg("user", "Hello!")],
    "multi_turn": [
        msg("system", "You are a concise assistant."),
        msg("user", "What is 2+2?"),
        msg("assistant", "2+2 = 4."),
        msg("user", "And times 3?"),
    ],
    "no_system": [msg("user", "Hi there"), msg("assistant", "Hello. How can I help?"), msg("user", "Tell me a joke.")],
    "single_user": [msg("user", "Hello")],
    "ends_with_assistant": [msg("user", "Say hi."), msg("assistant", "Hi!")],
    "unicode": [
        msg("system", "你是一个乐于助人的助手。\n请用中文回答。"),
        msg("user", "  你好，世界！\n第二行\t制表符  "),
        msg("assistant", "\n你好！😀 有什么可以帮你？  "),
        msg("user", "Ünïcödé — “quotes” & <tags> {{ not_a_tag }} {% raw %} back\\slash 𠀀\r\nend "),
    ],
    "assistant_think": [
        msg("user", "2+3?"),
        msg("assistant", "<think>\nadd them\n</think>\n\n5"),
        msg("user", "再加一？"),
    ],
    "not_alternating": [msg("user", "first"), msg("user", "second")],
    "tool_role": [msg("user", "Weather in Paris?"), msg("assistant", "Checking."), msg("tool", "22 C, sunny")],
    "system_only": [msg("system", "Only a system prompt.")],
    "empty": [],
    # Tool calling as transformers documents it (and OpenAI clients send it, with the arguments parsed from their JSON
    # string): an assistant turn with tool_calls and no content, the tools' results as role "tool" with the call's id
    # and the function's name, then the answer. Ids of 9 alphanumerics, as Mistral's templates require.
    "tool_calls": [
        msg("system", "You are a helpful assistant."),
        msg("user", "Weather in Paris and 北京?"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call0Abc9", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"id": "call1Xyz2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京", "days": 2}}},
        ]},
        {"role": "tool", "tool_call_id": "call0Abc9", "name": "get_weather", "content": "22 C, sunny"},
        {"role": "tool", "tool_call_id": "call1Xyz2", "name": "get_weather", "content": "{\"temp\": 18, \"sky\": \"多云\"}"},
        msg("assistant", "Paris: 22 C and sunny; 北京: 18 C, cloudy."),
        msg("user", "Thanks!"),
    ],
    "tool_call_last": [
        msg("user", "Weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call0Abc9", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        ]},
        {"role": "tool", "tool_call_id": "call0Abc9", "name": "get_weather", "content": "22 C, sunny"},
    ],
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "城市名, e.g. 北京"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time now in a time zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "Asia/Shanghai"]},
                                                         "hours": {"type": "array", "items": {"type": "number"}}}},
    },
}

# (template, conversation, add_generation_prompt, extra) beyond the full grid below
EXTRA_CASES = [
    ("llama-3.1-8b-instruct.jinja", "multi_turn", True, {"date_string": "01 Jan 2025"}),
    ("llama-3.1-8b-instruct.jinja", "system_user", True, {"tools": [WEATHER_TOOL]}),
    ("llama-3.2-3b-instruct.jinja", "no_system", True, {"tools": [WEATHER_TOOL], "tools_in_user_message": False}),
    ("qwen2.5-7b-instruct.jinja", "system_user", True, {"tools": [WEATHER_TOOL]}),
    ("qwen2.5-7b-instruct.jinja", "no_system", True, {"tools": [WEATHER_TOOL]}),
    ("qwen3.jinja", "multi_turn", True, {"enable_thinking": False}),
    ("qwen3.jinja", "unicode", True, {"tools": [WEATHER_TOOL]}),
    ("mistral-7b-instruct-v0.3.jinja", "no_system", True, {"tools": [WEATHER_TOOL]}),
    ("mistral-nemo-instruct-2407.jinja", "multi_turn", True, {"tools": [WEATHER_TOOL]}),
    ("hermes-2-pro-llama-3-8b-tool_use.jinja", "system_user", True, {"tools": [WEATHER_TOOL, TIME_TOOL]}),
    ("hermes-3-llama-3.1-8b-tool_use.jinja", "system_user", True, {"tools": [WEATHER_TOOL, TIME_TOOL]}),
]

# Every template with tools, on the conversations that call them.
for _t in ("qwen2.5-7b-instruct.jinja", "qwen3.jinja", "llama-3.1-8b-instruct.jinja", "llama-3.2-3b-instruct.jinja",
           "mistral-7b-instruct-v0.3.jinja", "mistral-nemo-instruct-2407.jinja", "hermes-2-pro-llama-3-8b-tool_use.jinja",
           "hermes-3-llama-3.1-8b-tool_use.jinja", "duet-bpetrainer-chatml.jinja", "yi-chat.jinja"):
    for _conv in ("tool_calls", "tool_call_last"):
        EXTRA_CASES.append((_t, _conv, True, {"tools": [WEATHER_TOOL, TIME_TOOL]}))


def expected_cases():
    cases = []
    for name in sorted(TEMPLATE_TOKENS):
        with open(os.path.join(TEMPLATES, name), encoding="utf-8", newline="") as f:
            source = f.read()
        bos, eos = TEMPLATE_TOKENS[name]
        runs = [(conv, True, None) for conv in CONVERSATIONS]
        runs += [(conv, False, None) for conv in ("multi_turn", "unicode", "ends_with_assistant")]
        runs += [(conv, gen, extra) for (t, conv, gen, extra) in EXTRA_CASES if t == name]
        for conv, gen, extra in runs:
            case = {"template": name, "conversation": conv, "add_generation_prompt": gen, "bos_token": bos, "eos_token": eos}
            if extra:
                case["extra"] = extra
            case.update(render(source, CONVERSATIONS[conv], gen, bos, eos, extra))
            cases.append(case)
    missing = sorted(set(n for n in os.listdir(TEMPLATES) if n.endswith(".jinja")) - set(TEMPLATE_TOKENS))
    if missing:
        sys.exit("templates without tokens in TEMPLATE_TOKENS: %s" % missing)
    return cases


# ---------------------------------------------------------------------------------------------------------------
# Feature probes: (name, template, context). Integers stay within 64 bits (Duet's ints; Python's are unbounded). Rendered with messages=[] (unless given), add_generation_prompt=False,
# bos_token "<s>", eos_token "</s>" and the context as extra variables.

FEATURES = [
    # whitespace control: trim_blocks, lstrip_blocks, -, +, comments, trailing newline, CR LF
    ("ws_trim_blocks", "{% if true %}\nyes\n{% endif %}\nend", {}),
    ("ws_lstrip_blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc", {}),
    ("ws_lstrip_not_variables", "a\n    {{ 'x' }}\n", {}),
    ("ws_lstrip_not_after_text", "a   {% if true %}b{% endif %}", {}),
    ("ws_minus_both", "a  \n {%- if true -%} \n b \n {%- endif -%}\n  c", {}),
    ("ws_minus_variable", "a \n {{- 'x' -}} \n b", {}),
    ("ws_plus_keeps", "a\n  {%+ if true %}b{% endif +%}\nc", {}),
    ("ws_comment_trimmed", "a\n  {# comment #}\nb", {}),
    ("ws_comment_minus", "a  {#- comment -#}  b", {}),
    ("ws_trailing_newline_dropped", "line\n", {}),
    ("ws_only_one_trailing_newline", "line\n\n", {}),
    ("ws_crlf_normalized", "a\r\nb\rc{{ 'd\r\ne' }}", {}),
    ("ws_trim_blocks_only_one_newline", "{% if true %}\n\nx{% endif %}", {}),
    ("ws_unicode_space_minus", "a\u3000\u00a0 {{- 'b' -}} \u2003c", {}),
    ("ws_raw_block", "{% raw %}{{ not parsed }} {% if %}{% endraw %}!", {}),
    ("ws_set_block", "{% set x %}\n  inner {{ 1 + 1 }}\n{% endset %}[{{ x }}]", {}),
    # literals and output conversion (Python str())
    ("lit_numbers", "{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1e3 }} {{ 1_000 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 2/2 }}", {}),
    ("lit_float_repr", "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 123456789012345678.0 }} {{ 2.5e-7 }} {{ 1e300 * 1e10 }} {{ -0.0 }}", {}),
    ("lit_big_int", "{{ 10 ** 18 }} {{ 2 ** 62 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** -1 }} {{ 7 // 2.0 }} {{ -7.5 % 2 }}", {}),
    ("lit_strings", "{{ 'single' }} {{ \"double\" }} {{ 'a' 'b' }} {{ 'esc\\tx\\\\y\\'z' }} {{ '\\u4e2d\\x41\\d\\n' }}", {}),
    ("lit_none_bool", "{{ none }} {{ None }} {{ true }} {{ False }} {{ none ~ '' }}", {}),
    ("lit_repr_list", "{{ [1, 'a', none, true, 1.5, {'k': 'v'}, (1,), ()] }}", {}),
    ("lit_repr_quotes", "{{ [\"it's\", 'a\"b', 'both\\'\"', 'nl\\n', '\\t', '\\x01', 'é', '😀', '\\u200b', '\\x85', '\\\\'] }}", {}),
    ("lit_repr_dict", "{{ {'a': 1, 'b': [2, 'c']} }} {{ {1: 'x', none: 2} }} {{ {} }}", {}),
    ("lit_tuple_output", "{{ 1, 'a' }}", {}),
    # operators
    ("op_arith", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 2 }} {{ 1 - -1 }}", {}),
    ("op_concat", "{{ 'x' ~ 1 ~ none ~ true ~ 1.0 ~ [1] ~ u }}", {}),
    ("op_string_ops", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'ab' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'ab' * 0 }}|{{ 'ab' * -1 }}|", {}),
    ("op_compare", "{{ 1 < 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ [1] == (1,) }} {{ 'a' < 'b' }} {{ 'Z' < 'a' }} {{ 'b' >= 'b' }} {{ none == none }} {{ 1 != '1' }}", {}),
    ("op_compare_chain", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1 == 1.0 }}", {}),
    ("op_compare_lists", "{{ [1, 2] < [1, 3] }} {{ [1] < [1, 0] }} {{ (2,) > (1, 9) }}", {}),
    ("op_in", "{{ 'a' in 'cat' }} {{ 'x' not in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'v' in {'k': 'v'} }} {{ '' in 'abc' }} {{ 1.0 in [1] }}", {}),
    ("op_logic", "{{ true and false }} {{ true or false }} {{ not true }} {{ 0 or 'x' }} {{ '' and 'y' }}|{{ 1 and 2 }} {{ none or [] }} {{ not 'a' in 'abc' }}", {}),
    ("op_ternary", "{{ 'y' if true else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if false }}] {{ 1 if none is none else 2 }}", {}),
    ("op_filter_binds_tighter", "{{ 'a' + '  b  ' | trim + 'c' }} {{ -3 | abs }} {{ (1 + 2) | string }} {{ 'x' ~ 2 * 3 }}", {}),
    ("op_concat_binds_tighter_than_plus", "{{ 'x' ~ 1 + 2 }}", {}),
    ("op_filter_binds_tighter_error", "{{ 1 + 2 | string }}", {}),
    ("op_truthiness", "{% for v in [0, 1, '', 'a', [], [0], {}, {'a': 1}, none, 0.0, 0.5, u] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    ("op_percent_format_extra_argument", "{{ 'a' % 2 }}", {}),
    ("op_percent_format_undefined", "[{{ 'a' % missing }}][{{ 'b%s' % missing }}][{{ 'c' % [1][5] }}]", {}),
    ("syntax_leading_zero_integer", "{{ [01, 2] }}", {}),
    ("lit_zero_forms", "{{ 0 }} {{ 00 }} {{ 0_0 }} {{ 00.5 }} {{ 0e1 }}", {}),
    ("filter_attribute_path_through_undefined", "{{ ms | map(attribute='a.b') | list }}", {"ms": [{"x": 1}]}),
    ("filter_attribute_path_default", "{{ ms | map(attribute='a.b', default='-') | list }}", {"ms": [{"x": 1}, {"a": {"b": 2}}]}),
    ("stmt_filter_block_not_text", "{% filter upper | list %}ab{% endfilter %}", {}),
    ("op_percent_format_list_is_a_mapping", "{{ 'a' % [1] }}{{ 'b%s' % [1] }}", {}),
    ("syntax_cond_expr_in_if_test", "{% if 1 if true else 0 %}x{% endif %}", {}),
    ("filter_select_unknown_test_lazy", "[{{ [] | select('notatest') | list }}]", {}),
    ("filter_select_unknown_test_used", "{{ [1] | select('notatest') | list }}", {}),
    ("op_percent_format", "{{ '%s-%d|%s' % ('a', 3, none) }} {{ 'x%sy' % 5 }} {{ '100%%' % () }}", {}),
    # undefined (jinja2 default Undefined)
    ("undef_renders_empty", "[{{ missing }}][{{ missing | default('d') }}][{{ missing | length }}][{{ missing | trim }}]", {}),
    ("undef_tests", "{{ missing is defined }} {{ missing is undefined }} {{ missing is none }} {{ missing is iterable }} {{ missing == missing }} {{ missing != none }}", {}),
    ("undef_loop_empty", "{% for x in missing %}x{% else %}empty{% endfor %}", {}),
    ("undef_attr_of_dict", "[{{ d.nokey }}][{{ d['nokey'] }}][{{ d.nokey is defined }}][{{ 'abc'.nomethod is defined }}][{{ [1][5] is defined }}]", {"d": {"a": 1}}),
    ("undef_attr_of_undef_errors", "{{ missing.attr }}", {}),
    ("undef_add_errors", "{{ missing + 'a' }}", {}),
    ("undef_index_error_message", "{{ messages[0]['role'] }}", {}),
    ("undef_key_error_message", "{{ d['x']['y'] }}", {"d": {}}),
    # type errors and other runtime errors
    ("err_str_plus_int", "{{ 'x' + 1 }}", {}),
    ("err_none_plus_str", "{{ none + 'x' }}", {}),
    ("err_compare_str_int", "{{ 'a' < 1 }}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("err_call_undefined", "{{ nofunc() }}", {}),
    ("err_raise_exception", "{{ raise_exception('custom: ' ~ 42) }}", {}),
    ("err_raise_in_loop", "{% for m in [1, 2] %}{{ m }}{% if m == 2 %}{{ raise_exception('stop at ' ~ m) }}{% endif %}{% endfor %}", {}),
    ("err_in_none", "{{ 'a' in none }}", {}),
    ("err_int_in_str", "{{ 1 in 'abc' }}", {}),
    ("err_tojson_undefined", "{{ missing | tojson }}", {}),
    # subscripts, attributes, slices
    ("sub_index_and_attr", "{{ m['role'] }} {{ m.role }} {{ m.content }} {{ l[0] }} {{ l[-1] }} {{ 'abc'[1] }} {{ 'abc'[-1] }}", {"m": {"role": "user", "content": "hi"}, "l": [1, 2, 3]}),
    ("sub_slices", "{{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[::-1] }} {{ l[5:] }} {{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ l[-2:] }} {{ l[1:100] }} {{ l[:0] }}", {"l": [1, 2, 3, 4]}),
    ("sub_codepoints", "{{ s | length }} {{ s[0] }} {{ s[1:] }} {{ s[-1] }} {{ s[::-1] }} {{ s | list }}", {"s": "😀中𠀀"}),
    ("sub_dict_key_shadows_method", "{{ d.items is defined }} {{ d['items'] }} {{ d.get('items') }}", {"d": {"items": "value"}}),
    ("sub_empty_and_tuple_subscripts", "[{{ l[] }}][{{ l[0, 1] }}][{{ d[1, 2] }}]", {"l": [1, 2], "d": {}}),
    ("syntax_slice_in_tuple_subscript", "{{ l[1:, 0] }}", {"l": [1, 2]}),
    ("syntax_trailing_comma_subscript", "{{ l[1:2,] }}", {"l": [1, 2]}),
    ("syntax_trailing_comma_for_target", "{% for m, in x %}{% endfor %}", {"x": []}),
    ("syntax_trailing_comma_set_target", "{% set a, = [1] %}", {}),
    ("sub_slice_errors_int", "{{ n[1:] }}", {"n": 5}),
    ("sub_slice_errors_none", "{{ x[1:] }}", {"x": None}),  # a literal none[1:] is constant-folded by jinja2 to undefined
    ("sub_slice_errors_dict", "{{ d[1:] }}", {"d": {}}),
    ("sub_slice_errors_bounds", "{{ l['a':] }}", {"l": [1]}),
    ("sub_slice_errors_undefined", "{{ missing[1:] }}", {}),
    ("sub_index_never_errors", "[{{ n[1] }}][{{ none[1] }}][{{ d[[1]] }}][{{ l['a'] }}]", {"n": 5, "d": {}, "l": [1]}),
    ("sub_nested", "{{ d.a.b[1].c }}", {"d": {"a": {"b": [0, {"c": "deep"}]}}}),
    ("sub_integer_attr", "{{ l.0 }} {{ l.1 }}", {"l": ["zero", "one"]}),
    # statements
    ("stmt_if_elif_else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}other{% endif %};{% endfor %}", {}),
    ("stmt_for_loop_vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("stmt_for_prev_next", "{% for x in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}", {}),
    ("stmt_for_cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("stmt_for_else", "{% for x in [] %}x{% else %}none{% endfor %}|{% for x in [1] %}x{% else %}none{% endfor %}", {}),
    ("stmt_for_filter", "{% for m in [1, 2, 3, 4] if m % 2 == 0 %}{{ m }}:{{ loop.index }}/{{ loop.length }}{{ loop.last }};{% endfor %}", {}),
    ("stmt_for_unpack", "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }};{% endfor %}", {}),
    ("stmt_for_dict_iterates_keys", "{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}", {}),
    ("stmt_for_string", "{% for c in 'a中😀' %}[{{ c }}]{% endfor %}", {}),
    ("stmt_for_nested_loop", "{% for i in [1, 2] %}{% for j in ['a', 'b'] %}{{ loop.index }}{{ loop.depth }}{{ j }}{% endfor %}{{ loop.index }}{{ loop.depth }};{% endfor %}", {}),
    ("stmt_for_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("stmt_for_over_range", "{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {% for i in range(2) %}{{ i }}{% endfor %}", {}),
    ("stmt_set_scoping", "{% set x = 1 %}{% for i in range(2) %}[{{ x }}{% set x = 2 %}{{ x }}]{% endfor %}{{ x }}{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("stmt_set_shadows_argument", "{% set messages = messages[1:] %}{{ messages | length }}", {"messages": [1, 2, 3]}),
    ("stmt_set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("stmt_namespace", "{% set ns = namespace(a=1, found=false) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% if i == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.a }} {{ ns.found }} {{ ns.missing is defined }}", {}),
    ("stmt_namespace_empty", "{% set ns = namespace() %}{% set ns.index = 0 %}{% for m in [1, 2] %}{% set ns.index = ns.index + 1 %}{% endfor %}{{ ns.index }}", {}),
    ("stmt_macro", "{% macro f(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, 2) }}{{ f(b=3, a=4) }}{{ f() }}", {}),
    ("stmt_macro_reads_globals", "{% macro show(m) %}{{ m.role }}:{{ bos_token }}{% endmacro %}{% for m in msgs %}{{ show(m) }}{% endfor %}", {"msgs": [{"role": "user"}, {"role": "assistant"}]}),
    ("stmt_macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1) | int) }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("stmt_macro_whitespace", "{% macro item(x) -%}\n  <{{ x }}>\n{%- endmacro %}\n{{ item(1) }}{{ item(2) }}", {}),
    ("stmt_macro_surplus_positional", "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", {}),
    ("stmt_macro_surplus_keyword", "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(b=2) }}", {}),
    ("stmt_macro_varargs_kwargs", "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, k=3) }}", {}),
    ("stmt_macro_sees_later_set", "{% set x = 1 %}{% macro f() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ f() }}", {}),
    ("stmt_loop_var_does_not_leak", "{% for x in [1, 2] %}{% set y = x %}{% endfor %}[{{ x }}{{ y }}]", {}),
    ("stmt_break_outside_loop", "{% break %}", {}),
    ("stmt_continue_in_if_outside_loop", "{% if true %}{% continue %}{% endif %}", {}),
    ("stmt_break_in_for_else", "{% for x in [] %}{% else %}{% break %}{% endfor %}", {}),
    ("stmt_break_in_macro_in_loop", "{% for x in [1] %}{% macro f() %}{% break %}{% endmacro %}{% endfor %}", {}),
    ("stmt_break_in_nested_if", "{% for x in [1, 2, 3] %}{% if x == 2 %}{% if true %}{% break %}{% endif %}{% endif %}{{ x }}{% endfor %}", {}),
    ("syntax_unknown_tag", "{% frobnicate %}", {}),
    # an unknown filter or test is a compile error, except inside an if statement or conditional expression
    ("unknown_filter_top_level", "{{ x | nofilter }}", {}),
    ("unknown_filter_in_if_not_taken", "{% if false %}{{ x | nofilter }}{% elif false %}{{ x is notest }}{% else %}ok{% endif %}", {}),
    ("unknown_filter_in_if_taken", "{% if true %}{{ x | nofilter }}{% endif %}", {}),
    ("unknown_filter_in_if_test", "{% if x | nofilter %}{% endif %}", {}),
    ("unknown_filter_in_set_in_if", "{% if false %}{% set y = 1 | nofilter %}{% endif %}ok", {}),
    ("unknown_filter_in_for_in_if", "{% if false %}{% for i in [1] %}{{ i | nofilter }}{% endfor %}{% endif %}", {}),
    ("unknown_filter_in_macro_in_if", "{% if false %}{% macro m() %}{{ 1 | nofilter }}{% endmacro %}{% endif %}", {}),
    ("unknown_filter_in_cond_expr", "{{ x | nofilter if false else 1 }}", {}),
    ("unknown_filter_in_for_body", "{% for i in [] %}{{ x | nofilter }}{% endfor %}", {}),
    ("stmt_with", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    ("stmt_filter_block", "{% filter upper %}abc {{ 'def' }}{% endfilter %}", {}),
    ("stmt_generation", "{% for m in [1, 2] %}{% generation %}<{{ m }}>{% endgeneration %}{% endfor %}", {}),
    # tests
    ("test_types", "{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 1 is boolean }} {{ none is none }}", {}),
    ("test_containers", "{{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ 'a' is sequence }} {{ {} is sequence }} {{ 1 is sequence }} {{ none is iterable }}", {}),
    ("test_values", "{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'a' is equalto 'a' }} {{ 1 is eq 1 }} {{ 2 is ne 1 }} {{ 1 is lt 2 }} {{ 2 is ge 2 }} {{ 'a' is in 'abc' }} {{ 'ab' is lower }} {{ 'AB' is upper }}", {}),
    ("test_true_false", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ none is false }} {{ x is false }}", {"x": False}),
    ("test_not", "{{ 1 is not string }} {{ none is not none }} {{ not none is none }} {{ x is not defined }}", {}),
    ("test_filter_test", "{{ 'trim' is filter }} {{ 'nofilter' is filter }} {{ 'defined' is test }} {{ 1 is test }} {{ [1, 'odd', 'x'] | select('test') | list }}", {}),
    ("test_sameas_callable", "{{ none is sameas none }} {{ true is sameas 1 }} {{ range is callable }} {{ 'a' is callable }}", {}),
    # filters
    ("filter_strings", "{{ '  x y  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'aBc' | upper }}|{{ 'aBc' | lower }}|{{ 'hello wORLD' | capitalize }}|{{ 'hello-world foo(bar baR' | title }}", {}),
    ("filter_replace", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'a.b' | replace('.', '') }} {{ 'ab' | replace('', '-') }}", {}),
    ("filter_length_count", "{{ [1, 2] | length }} {{ 'abc' | length }} {{ {'a': 1} | length }} {{ 'abc' | count }} {{ range(10) | length }}", {}),
    ("filter_first_last", "{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} {{ 'abc' | last }} [{{ [] | first }}] {{ {'k': 1, 'j': 2} | first }} {{ {'k': 1, 'j': 2} | last }}", {}),
    ("filter_join", "{{ [1, 2, 3] | join(', ') }} {{ ['a', 'b'] | join }} {{ 'abc' | join('-') }} {{ [{'n': 'x'}, {'n': 'y'}] | join('+', attribute='n') }} {{ [none, u] | join(',') }}", {}),
    ("filter_default", "{{ missing | default('d') }} {{ none | default('d') }} {{ none | default('d', true) }} {{ '' | default('d', true) }} {{ 'v' | d('x') }} {{ false | default('d') }}", {}),
    ("filter_int_float_string", "{{ '12' | int + 1 }} {{ 'x' | int }} {{ 1.9 | int }} {{ '1.5' | int }} {{ ' 7 ' | int }} {{ '0x1A' | int(base=16) }} {{ '3' | float }} {{ 3 | string + 'a' }} {{ none | string }} {{ 'x' | int(5) }} {{ true | int }}", {}),
    ("filter_int_of_undefined", "{{ missing | int }}", {}),
    ("filter_list_items", "{{ 'ab' | list }} {{ {'a': 1} | list }} {{ {'a': 1, 'b': 2} | items | list }} {{ range(3) | list }} {{ (1, 2) | list }}", {}),
    ("filter_tojson_basic", "{{ {'a': [1, 'é', none, true, 1.5]} | tojson }} {{ 'q\"\\\\\\n\\t\\x01' | tojson }} {{ '😀中' | tojson }}", {}),
    ("filter_tojson_options", "{{ [1, {'a': 2}, []] | tojson(indent=2) }}|{{ {'b': 1, 'a': {}} | tojson(sort_keys=true) }}|{{ [1, 2] | tojson(separators=(',', ':')) }}|{{ 'é😀' | tojson(ensure_ascii=true) }}|{{ {'x': 1} | tojson(indent='\\t') }}|{{ [1] | tojson(indent=0) }}", {}),
    ("filter_tojson_keys_numbers", "{{ {1: 'a', 2.5: 'b', true: 'c', none: 'd'} | tojson }} {{ [1e16, 0.1, -0.0, 3.0, 10 ** 15, -2 ** 63] | tojson }}", {}),
    ("filter_tojson_input_json", "{{ data | tojson }} {{ data | tojson(indent=4) }}", {"data": {"name": "f", "args": {"x": [1, 2.5, None, True], "s": "中"}}}),
    ("filter_selectattr", "{{ ms | selectattr('role', 'equalto', 'user') | list }} {{ ms | rejectattr('role', 'equalto', 'user') | map(attribute='role') | list }} {{ ms | selectattr('flag') | list | length }}", {"ms": [{"role": "user", "flag": True}, {"role": "assistant"}, {"role": "user"}]}),
    ("filter_select_reject", "{{ [0, 1, 2, 3] | select | list }} {{ [0, 1, 2, 3] | reject('odd') | list }} {{ [1, 5, 9] | select('gt', 4) | list }} {{ ['a', 'b'] | reject('in', 'a') | list }}", {}),
    ("filter_map", "{{ ['a', 'b'] | map('upper') | list }} {{ [{'x': 1}, {}] | map(attribute='x', default=0) | list }} {{ ['1', '2'] | map('int') | sum }}", {}),
    ("filter_misc", "{{ [3, 1, 2] | sort | list }} {{ ['b', 'A', 'c'] | sort | list }} {{ [3, 1, 2] | sort(reverse=true) | list }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ [1, 2, 1] | unique | list }} {{ -5 | abs }} {{ [1, 2, 3] | sum }} {{ [1, 3, 2] | max }} {{ [1, 3, 2] | min }}", {}),
    ("filter_dictsort", "{{ {'b': 1, 'a': 2, 'C': 0} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }}", {}),
    ("filter_wordcount_indent", "{{ 'a b  c' | wordcount }}|{{ 'x\\ny' | indent(2) }}|{{ 'x\\ny' | indent(2, true) }}", {}),
    ("filter_center_safe", "{{ 'ab' | center(6) }}|{{ 'abc' | center(6) }}|{{ 'a' | safe }}", {}),
    # string methods (Python str)
    ("method_strip", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\nab\\n'.lstrip('\\n') }}][{{ ' \\u3000x\\u00a0\\x1f'.strip() }}]", {}),
    ("method_split", "{{ ' a b  '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a</think>b</think>c'.split('</think>')[-1] }} {{ 'x'.split('y') }} {{ ''.split() }} {{ ''.split(',') }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a b  c '.split(None, 1) }} {{ '  a b  c '.rsplit(None, 1) }} {{ ' a b '.split(None, 0) }}", {}),
    ("method_case", "{{ 'hello wORLD'.upper() }} {{ 'HeLLo'.lower() }} {{ \"it's 1st héllo\".title() }} {{ 'hello WORLD'.capitalize() }} {{ 'user'.title() }} {{ 'aB'.swapcase() }}", {}),
    ("method_predicates", "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.startswith(('x', 'a')) }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }}", {}),
    ("method_find_replace", "{{ 'abcabc'.replace('b', 'X') }} {{ 'abcabc'.replace('b', 'X', 1) }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abc'.find('z') }} {{ 'abcabc'.count('bc') }} {{ '-'.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("method_format", "{{ '{} and {}'.format('a', 1) }} {{ '{0}{name}'.format('x', name='y') }}", {}),
    ("method_dict", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.items() | length }}", {"d": {"a": 1, "b": [2]}}),
    ("method_list", "{{ [1, 2, 1].count(1) }} {{ ['a', 'b'].index('b') }}", {}),
    # globals
    ("global_range_dict", "{{ range(3) }} {{ range(0) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("global_strftime", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %j %y %I %p %a %%') }}|{{ strftime_now('%(Y %Q %-q %') }}", {}),
    # unicode and content that looks like template syntax stays data
    ("unicode_content_is_data", "{{ c }}|{{ c | length }}|{{ c.strip() }}", {"c": " {{ x }} {% if %} 中文😀 "}),
    # (Duet uses simple case mappings: Python's 'ß'.upper() == 'SS' and 'ﬁ'.upper() == 'FI' are not probed here.)
    ("unicode_casing", "{{ 'ÀÉÎ'.lower() }} {{ 'àéî'.upper() }} {{ 'ǅungla'.title() }} {{ 'ǆ'.capitalize() }} {{ 'ΑΒΓ'.lower() }}", {}),
]


def feature_cases():
    cases = []
    for name, source, context in FEATURES:
        ctx = dict(context)
        messages = ctx.pop("messages", [])
        case = {"name": name, "template": source}
        if context:
            case["context"] = context
        case.update(render(source, messages, False, "<s>", "</s>", ctx))
        cases.append(case)
    return cases


def write(path, cases, what):
    doc = {
        "generator": "tests/reference/render_chat_templates.py",
        "what": what,
        "jinja2": jinja2.__version__,
        "python": platform.python_version(),
        "environment": "ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, generation]); "
                       "HF tojson filter, raise_exception and strftime_now globals; render(messages, tools=None, documents=None, "
                       "add_generation_prompt, bos_token, eos_token, **extra)",
        "strftime_now": FIXED_NOW.isoformat(),
        "conversations": CONVERSATIONS if "expected" in path else None,
        "cases": cases,
    }
    if doc["conversations"] is None:
        del doc["conversations"]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %s (%d cases)" % (os.path.relpath(path, ROOT), len(cases)))


if __name__ == "__main__":
    write(os.path.join(TEMPLATES, "expected.json"), expected_cases(),
          "each real template (see README.md) rendered for each conversation, as Hugging Face transformers renders it")
    write(os.path.join(TEMPLATES, "features.json"), feature_cases(),
          "one small template per language feature, rendered by the same environment")
