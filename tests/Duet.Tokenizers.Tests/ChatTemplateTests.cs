// The chat-template renderer against an independent implementation: Python jinja2 configured as Hugging Face
// transformers configures it (tests/reference/render_chat_templates.py wrote the committed fixtures
// tests/TestData/chat_templates/expected.json and features.json; no Python is needed here). Every real template
// (Yi, Qwen 2.5 / 3, Llama 2 / 3 / 3.1 / 3.2, Mistral v0.1 / v0.2 / v0.3 / Nemo, Duet's trainer ChatML) must give
// the same bytes for every conversation, or be rejected with the same raise_exception message; every feature
// probe likewise. Then the pieces: syntax errors with positions, limits against hostile templates, fallback.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Tokenizers.ChatTemplates;
using Duet.Tokenizers.Trainer;

namespace Duet.Tokenizers.Tests;

public class ChatTemplateTests
{
    // ---- fixtures -----------------------------------------------------------------------------------------------

    private static readonly string Dir = RepoFiles.TestData("chat_templates");
    private static readonly Lazy<JsonElement> Expected = new(() => LoadJson("expected.json"));
    private static readonly Lazy<JsonElement> Features = new(() => LoadJson("features.json"));

    private static JsonElement LoadJson(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, name)));
        return doc.RootElement.Clone();
    }

    private static string ReadTemplate(string name) => Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(Dir, name)));

    /// <summary>strftime_now's clock in the fixtures (render_chat_templates.py FIXED_NOW, a naive local time).</summary>
    private sealed class FixedClock(DateTime local) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(DateTime.SpecifyKind(local, DateTimeKind.Utc));
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    private static TimeProvider FixtureClock(JsonElement root) =>
        new FixedClock(DateTime.Parse(root.GetProperty("strftime_now").GetString()!, System.Globalization.CultureInfo.InvariantCulture));

    public static TheoryData<string> ExpectedCaseIds()
    {
        var data = new TheoryData<string>();
        int i = 0;
        foreach (var c in Expected.Value.GetProperty("cases").EnumerateArray())
        {
            string extra = c.TryGetProperty("extra", out var e) ? " +" + string.Join(",", e.EnumerateObject().Select(p => p.Name)) : "";
            data.Add($"{i++:000} {c.GetProperty("template").GetString()} {c.GetProperty("conversation").GetString()} gen={c.GetProperty("add_generation_prompt").GetBoolean()}{extra}");
        }
        return data;
    }

    public static TheoryData<string> FeatureCaseIds()
    {
        var data = new TheoryData<string>();
        int i = 0;
        foreach (var c in Features.Value.GetProperty("cases").EnumerateArray())
            data.Add($"{i++:000} {c.GetProperty("name").GetString()}");
        return data;
    }

    private static JsonElement CaseById(Lazy<JsonElement> fixture, string id) =>
        fixture.Value.GetProperty("cases")[int.Parse(id.AsSpan(0, id.IndexOf(' ', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture)];

    /// <summary>Asserts the outcome jinja2 had: the same output, the same raise_exception message, or a runtime error.</summary>
    private static void AssertOutcome(JsonElement c, Func<string> render)
    {
        if (c.TryGetProperty("output", out var output))
        {
            string expected = output.GetString()!;
            string actual = render();
            if (actual != expected)
            {
                int i = 0;
                while (i < Math.Min(actual.Length, expected.Length) && actual[i] == expected[i]) i++;
                Assert.Fail($"differs from jinja2 at char {i}:\n expected: {Json(expected[i..Math.Min(expected.Length, i + 80)])}\n actual:   {Json(actual[i..Math.Min(actual.Length, i + 80)])}\n full actual: {Json(actual)}");
            }
        }
        else if (c.TryGetProperty("raise_exception", out var raised))
        {
            var ex = Assert.Throws<ChatTemplateException>(() => render());
            Assert.True(ex.RaisedByTemplate, ex.Message);
            Assert.Equal(raised.GetString(), ex.Message);
        }
        else
        {
            // a runtime error (TypeError, UndefinedError, ...)
            Assert.True(c.TryGetProperty("error", out _));
            var ex = Assert.Throws<ChatTemplateException>(() => render());
            Assert.False(ex.RaisedByTemplate);
            Assert.NotNull(ex.Line);
        }
    }

    private static string Json(string s) => JsonSerializer.Serialize(s);

    /// <summary>A fixture message: role and content, and its other keys (tool_calls, tool_call_id, name; content null) as Fields.</summary>
    private static ChatTemplateMessage Message(JsonElement m)
    {
        var content = m.GetProperty("content");
        var fields = m.EnumerateObject().Where(p => p.Name is not "role" and not "content").ToDictionary(p => p.Name, p => (object?)p.Value);
        if (content.ValueKind == JsonValueKind.Null) fields["content"] = null;
        return new ChatTemplateMessage(m.GetProperty("role").GetString()!, content.ValueKind == JsonValueKind.String ? content.GetString()! : "")
        {
            Fields = fields.Count > 0 ? fields : null,
        };
    }

    private static Dictionary<string, object?> ToVariables(JsonElement obj)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in obj.EnumerateObject()) d[p.Name] = p.Value;
        return d;
    }

    [Theory, MemberData(nameof(ExpectedCaseIds))]
    public void Render_RealTemplate_MatchesJinja2Fixture(string id)
    {
        var c = CaseById(Expected, id);
        var template = ChatTemplate.Parse(ReadTemplate(c.GetProperty("template").GetString()!)).WithTimeProvider(FixtureClock(Expected.Value));
        var messages = Expected.Value.GetProperty("conversations").GetProperty(c.GetProperty("conversation").GetString()!).EnumerateArray()
            .Select(Message).ToList();
        var extra = c.TryGetProperty("extra", out var e) ? ToVariables(e) : null;
        AssertOutcome(c, () => template.Render(messages, c.GetProperty("add_generation_prompt").GetBoolean(),
            c.GetProperty("bos_token").GetString()!, c.GetProperty("eos_token").GetString()!, extra));
    }

    [Theory, MemberData(nameof(FeatureCaseIds))]
    public void Render_FeatureProbe_MatchesJinja2Fixture(string id)
    {
        var c = CaseById(Features, id);
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = new List<object?>(),
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = false,
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
        };
        if (c.TryGetProperty("context", out var context))
            foreach (var (k, v) in ToVariables(context)) vars[k] = v;
        string source = c.GetProperty("template").GetString()!;
        if (c.TryGetProperty("syntax_error", out _))
        {
            var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source)); // jinja2 refuses to compile it too
            Assert.NotNull(ex.Line);
            return;
        }
        AssertOutcome(c, () => ChatTemplate.Parse(source).WithTimeProvider(FixtureClock(Features.Value)).RenderVariables(vars));
    }

    [Fact]
    public void Fixture_CoversEveryTemplateFileAndOutcome_Expected()
    {
        var cases = Expected.Value.GetProperty("cases").EnumerateArray().ToList();
        var files = Directory.GetFiles(Dir, "*.jinja").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(15, files.Count);
        // Tool calling (issue 19): each family's template renders the tools and a history with tool_calls and tool results.
        foreach (var t in new[] { "qwen2.5-7b-instruct.jinja", "llama-3.1-8b-instruct.jinja", "mistral-7b-instruct-v0.3.jinja", "mistral-nemo-instruct-2407.jinja", "hermes-2-pro-llama-3-8b-tool_use.jinja", "hermes-3-llama-3.1-8b-tool_use.jinja" })
            Assert.Contains(cases, c => c.GetProperty("template").GetString() == t && c.GetProperty("conversation").GetString()!.StartsWith("tool_call", StringComparison.Ordinal)
                && c.TryGetProperty("extra", out var e) && e.TryGetProperty("tools", out _) && c.TryGetProperty("output", out var o) && o.GetString()!.Contains("get_weather", StringComparison.Ordinal));
        Assert.Equal(files, cases.Select(c => c.GetProperty("template").GetString()).Distinct().Order(StringComparer.Ordinal).ToList());
        Assert.Contains(cases, c => c.TryGetProperty("raise_exception", out _));
        Assert.Contains(cases, c => c.TryGetProperty("error", out _));
        Assert.True(cases.Count(c => c.TryGetProperty("output", out _)) > 150);
        Assert.Equal("tests/reference/render_chat_templates.py", Expected.Value.GetProperty("generator").GetString());
    }

    // ---- public API -----------------------------------------------------------------------------------------------

    private static readonly ChatTemplateMessage[] Conversation =
        [new("system", "Be brief."), new("user", "你好"), new("assistant", "Hi!"), new("user", "Bye")];

    [Fact]
    public void ChatMl_Render_IsTheTrainerTemplate()
    {
        Assert.Equal(BpeTrainer.ChatMlTemplate, ChatTemplate.ChatMl.Source);
        Assert.Equal(BpeTrainer.ChatMlTemplate, ReadTemplate("duet-bpetrainer-chatml.jinja"));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.ChatMl.Render(Conversation, addGenerationPrompt: true, "<s>", "</s>"));
        Assert.EndsWith("Bye<|im_end|>\n", ChatTemplate.ChatMl.Render(Conversation, addGenerationPrompt: false, "<s>", "</s>"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  \n")]
    public void ForTokenizer_NoTemplate_ReturnsChatMl(string? source)
    {
        var t = ChatTemplate.ForTokenizer(source);
        Assert.Same(ChatTemplate.ChatMl, t);
        Assert.False(t.IsFallback);
        Assert.Null(t.FallbackReason);
    }

    [Fact]
    public void ForTokenizer_ValidTemplate_UsesIt()
    {
        string src = ReadTemplate("llama-2-7b-chat.jinja");
        var t = ChatTemplate.ForTokenizer(src);
        Assert.Equal(src, t.Source);
        Assert.False(t.IsFallback);
        Assert.StartsWith("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n你好 [/INST]", t.Render(Conversation, true, "<s>", "</s>"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{% for m in messages %}{{ m.content | wordwrap(5) }}{% endfor %}", "no filter named 'wordwrap'", 1)]
    [InlineData("{% include 'other.jinja' %}", "'include' tag is not supported", 1)]
    [InlineData("{% for m in messages %}\n{{ m.content }\n{% endfor %}", "unexpected", 2)]
    public void ForTokenizer_UnusableTemplate_FallsBackToChatMlAndSaysWhy(string source, string reason, int line)
    {
        var t = ChatTemplate.ForTokenizer(source);
        Assert.True(t.IsFallback);
        Assert.Contains(reason, t.FallbackReason, StringComparison.Ordinal);
        Assert.Contains($"line {line},", t.FallbackReason, StringComparison.Ordinal);
        Assert.Equal(ChatTemplate.ChatMl.Source, t.Source);
        Assert.Equal(ChatTemplate.ChatMl.Render(Conversation, true, "", ""), t.Render(Conversation, true, "", ""));
    }

    [Fact]
    public void Render_RaiseException_CarriesTemplateMessageAndPosition()
    {
        var t = ChatTemplate.Parse("{% for m in messages %}\n  {% if m.role == 'system' %}\n    {{ raise_exception('System role not supported: ' ~ m.content) }}\n  {% endif %}\n{% endfor %}");
        var ex = Assert.Throws<ChatTemplateException>(() => t.Render(Conversation, true, "", ""));
        Assert.True(ex.RaisedByTemplate);
        Assert.Equal("System role not supported: Be brief.", ex.Message);
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void Render_UndefinedVariable_RendersEmptyAndIsFalsy()
    {
        var t = ChatTemplate.Parse("[{{ nothing }}]{% if nothing %}yes{% else %}no{% endif %}{{ nothing | default('d') }}{{ nothing is defined }}");
        Assert.Equal("[]nodFalse", t.Render([], false, "", ""));
    }

    [Fact]
    public void Render_UndefinedUsedInArithmetic_ThrowsWithPosition()
    {
        var t = ChatTemplate.Parse("ok\n{{ messages[0].content + '!' }}");
        var ex = Assert.Throws<ChatTemplateException>(() => t.Render([], false, "", ""));
        Assert.False(ex.RaisedByTemplate);
        Assert.Equal(2, ex.Line);
        Assert.Contains("UndefinedError", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_ContentWithTemplateSyntax_IsNotInterpreted()
    {
        var t = ChatTemplate.Parse("{% for m in messages %}{{ m.content }}{% endfor %}");
        Assert.Equal("{{ 1 + 1 }}{% raise %}", t.Render([new("user", "{{ 1 + 1 }}{% raise %}")], false, "", ""));
    }

    [Fact]
    public void Render_ExtraDotNetValues_AreConvertedToPythonValues()
    {
        var t = ChatTemplate.Parse("{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e | tojson }}|{{ f }}|{{ g.x }}|{{ h }}");
        var extra = new Dictionary<string, object?>
        {
            ["a"] = 3,
            ["b"] = 2.5,
            ["c"] = new List<object?> { "x", null, true },
            ["d"] = new Dictionary<string, object?> { ["k"] = 1L },
            ["e"] = JsonNode.Parse("""{"n": [1, 2.0, "中"]}"""),
            ["f"] = new ChatTemplateMessage("user", "hi"),
            ["g"] = JsonDocument.Parse("""{"x": 7}""").RootElement,
            ["h"] = new[] { 1, 2 },
        };
        Assert.Equal("3|2.5|['x', None, True]|{'k': 1}|{\"n\": [1, 2.0, \"中\"]}|{'role': 'user', 'content': 'hi'}|7|[1, 2]", t.Render([], false, "", "", extra));
    }

    [Fact]
    public void Render_ExtraOverridesTokensButNotMessages_Expected()
    {
        var t = ChatTemplate.Parse("{{ bos_token }}{{ tools | length }}");
        Assert.Equal("B2", t.Render([], false, "<s>", "", new Dictionary<string, object?> { ["bos_token"] = "B", ["tools"] = new[] { 1, 2 } }));
        Assert.Throws<ArgumentException>(() => t.Render([], false, "", "", new Dictionary<string, object?> { ["messages"] = null }));
        Assert.Throws<ArgumentException>(() => t.Render([], false, "", "", new Dictionary<string, object?> { ["add_generation_prompt"] = true }));
        Assert.Throws<ArgumentException>(() => t.Render([], false, "", "", new Dictionary<string, object?> { ["x"] = new object() }));
    }

    [Fact]
    public void Render_StrftimeNow_UsesInjectedClock()
    {
        var t = ChatTemplate.Parse("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%-d/%-m %H:%M') }}").WithTimeProvider(new FixedClock(new DateTime(2024, 7, 6, 9, 5, 0)));
        Assert.Equal("06 Jul 2024 6/7 09:05", t.Render([], false, "", ""));
    }

    [Fact]
    public void Render_ManyThreads_SameOutput()
    {
        var t = ChatTemplate.Parse(ReadTemplate("qwen3.jinja"));
        string expected = t.Render(Conversation, true, "", "<|im_end|>");
        var results = new string[16];
        Parallel.For(0, results.Length, i => results[i] = t.Render(Conversation, true, "", "<|im_end|>"));
        Assert.All(results, r => Assert.Equal(expected, r));
    }

    // ---- syntax errors --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("{% if x %}\nyes\n", 2, "looking for 'elif' or 'else' or 'endif'")]
    [InlineData("a\n  {% endfor %}", 2, "unexpected 'endfor'")]
    [InlineData("{{ 'abc }}", 1, "unterminated string")]
    [InlineData("line\n\n  {{ x | nofilter }}", 3, "no filter named 'nofilter'")]
    [InlineData("{{ x is nottest }}", 1, "no test named 'nottest'")]
    [InlineData("{% frobnicate %}", 1, "unknown tag 'frobnicate'")]
    [InlineData("{{ (1 + 2 }}", 1, "unexpected '}'")]
    [InlineData("{{ 1 + }}", 1, "unexpected end of print statement")]
    [InlineData("x\n{# comment", 2, "missing end of comment tag")]
    [InlineData("{% for x in y %}{% endif %}", 1, "unexpected 'endif'")]
    [InlineData("{% set 1 = 2 %}", 1, "expected a name")]
    [InlineData("{% macro f(a=1, b) %}{% endmacro %}", 1, "non-default argument follows default argument")]
    [InlineData("{{ f(a=1, 2) }}", 1, "positional argument follows keyword argument")]
    [InlineData("{{ 99999999999999999999 }}", 1, "too large")]
    public void Parse_SyntaxError_ThrowsWithLineAndColumn(string source, int line, string message)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));
        Assert.Equal(line, ex.Line);
        Assert.NotNull(ex.Column);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"line {line}, column {ex.Column}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ErrorColumn_PointsAtTheToken()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("ab\n  {{ name | unknown_filter }}"));
        Assert.Equal(2, ex.Line);
        Assert.Equal(13, ex.Column);
    }

    // ---- limits: a hostile template fails fast instead of hanging or crashing ------------------------------------

    private static void AssertFailsFast(string source, string messagePart, ChatTemplateLimits? limits = null)
    {
        var sw = Stopwatch.StartNew();
        var t = ChatTemplate.Parse(source);
        if (limits is not null) t = t.WithLimits(limits);
        var ex = Assert.Throws<ChatTemplateException>(() => t.Render(Conversation, true, "", ""));
        Assert.Contains(messagePart, ex.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Render_RangeOfABillion_FailsFast() =>
        AssertFailsFast("{% for i in range(10**9) %}x{% endfor %}", "Range too big");

    [Fact]
    public void Render_NestedLoopsOfBillions_HitStepLimit() =>
        AssertFailsFast("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps");

    [Fact]
    public void Render_HugeStringRepetition_FailsWithoutAllocating() =>
        AssertFailsFast("{{ 'abc' * 10**15 }}", "render limit");

    [Fact]
    public void Render_DoublingString_HitsLengthLimit() =>
        AssertFailsFast("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "render limit");

    [Fact]
    public void Render_OutputPastLimit_Fails() =>
        AssertFailsFast("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", "render limit", new ChatTemplateLimits { MaxOutputChars = 100_000 });

    [Fact]
    public void Render_InfiniteMacroRecursion_HitsDepthLimit() =>
        AssertFailsFast("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper");

    [Fact]
    public void Render_QuadraticStringBuilding_HitsStepLimit() =>
        AssertFailsFast("{% set ns = namespace(s='x' * 100000) %}{% for i in range(100000) %}{% set ns.t = ns.s ~ i %}{% endfor %}", "steps");

    [Fact]
    public void Render_LongListBuilding_HitsStepLimit() =>
        AssertFailsFast("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}", "steps");

    [Fact]
    public void Parse_DeeplyNestedExpression_FailsWithoutStackOverflow()
    {
        string deep = "{{ " + new string('(', 100_000) + "1" + new string(')', 100_000) + " }}";
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deep));
        Assert.Contains("nesting deeper", ex.Message, StringComparison.Ordinal);
        string deepNot = "{{ " + string.Concat(Enumerable.Repeat("not ", 100_000)) + "1 }}";
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deepNot));
        string deepIf = string.Concat(Enumerable.Repeat("{% if true %}", 100_000)) + string.Concat(Enumerable.Repeat("{% endif %}", 100_000));
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(deepIf));
        // chains nest the tree one level per link, so they count too
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ x" + string.Concat(Enumerable.Repeat(" | trim", 100_000)) + " }}"));
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 100_000)) + " }}"));
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ x" + string.Concat(Enumerable.Repeat(".a", 100_000)) + " }}"));
        Assert.Equal("50", ChatTemplate.Parse("{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 49)) + " }}").Render([], false, "", ""));
    }

    [Fact]
    public void ParseAndRender_MutatedRealTemplates_OnlyChatTemplateException()
    {
        // 4,000 seeded mutations of the real templates: each must parse and render, or fail with
        // ChatTemplateException, never with another exception (a server renders templates it did not write).
        string[] snippets = ["{%", "%}", "{{", "}}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "|", ".", ",", ":",
            " is ", " not ", " in ", " if ", " else ", "endfor", "endif", "{% endfor %}", "{% endif %}", "{% else %}", "{% break %}",
            "\\", "\n", "loop.", "10**9", "*", "//", "%", "~", "none", "[::-1]", "|tojson(indent=2)", "|trim", "range(", "ns.", "😀", "中"];
        var rng = new Random(1234);
        var failures = new List<string>();
        var limits = new ChatTemplateLimits { MaxSteps = 20_000, MaxOutputChars = 100_000 };
        int parsed = 0, rendered = 0;
        foreach (var file in Directory.GetFiles(Dir, "*.jinja").Order(StringComparer.Ordinal))
        {
            string original = ReadTemplate(Path.GetFileName(file));
            for (int n = 0; n < 310; n++)
            {
                var sb = new StringBuilder(original);
                for (int k = rng.Next(1, 4); k > 0; k--)
                {
                    int at = rng.Next(sb.Length + 1);
                    switch (rng.Next(3))
                    {
                        case 0: sb.Remove(Math.Min(at, sb.Length), Math.Min(rng.Next(1, 6), sb.Length - Math.Min(at, sb.Length))); break;
                        case 1: sb.Insert(at, snippets[rng.Next(snippets.Length)]); break;
                        default:
                            int len = Math.Min(rng.Next(1, 40), sb.Length - Math.Min(at, sb.Length));
                            sb.Insert(at, sb.ToString(Math.Min(at, sb.Length), len));
                            break;
                    }
                }
                string source = sb.ToString();
                try
                {
                    var t = ChatTemplate.Parse(source).WithLimits(limits);
                    parsed++;
                    t.Render(Conversation, true, "<s>", "</s>");
                    rendered++;
                }
                catch (ChatTemplateException e) when (!e.Message.Contains("internal error", StringComparison.Ordinal)) { }
                catch (Exception e)
                {
                    failures.Add($"{Path.GetFileName(file)} #{n}: {e.GetType().Name}: {e.Message}\n{source}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures.Take(3)));
        Assert.True(parsed > 500 && rendered > 200, $"parsed {parsed}, rendered {rendered}: the mutations should leave many templates usable");
    }

    [Fact]
    public void Parse_SourceTooLong_Throws()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(new string('x', ChatTemplate.MaxSourceChars + 1)));
        Assert.Contains("at most", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_DeeplyNestedValue_FailsCleanly()
    {
        // Each iteration wraps the list once more; printing it must not overflow the stack.
        var t = ChatTemplate.Parse("{% set ns = namespace(v=[]) %}{% for i in range(5000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}");
        Assert.Throws<ChatTemplateException>(() => t.Render([], false, "", ""));
    }

    // ---- known, documented differences from Python (docs/tokenizers.md) -----------------------------------------

    [Fact]
    public void Render_IntegerPast64Bits_ThrowsInsteadOfGrowing()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ 10 ** 20 }}").Render([], false, "", ""));
        Assert.Contains("OverflowError", ex.Message, StringComparison.Ordinal);
        Assert.Equal("9223372036854775807", ChatTemplate.Parse("{{ 2 ** 62 - 1 + 2 ** 62 }}").Render([], false, "", ""));
    }

    [Fact]
    public void Render_Upper_UsesSimpleCaseMapping()
    {
        // Python: 'STRASSE' (full mapping); Duet keeps one character per character.
        Assert.Equal("STRAßE", ChatTemplate.Parse("{{ 'straße'.upper() }}").Render([], false, "", ""));
    }

    // ---- Python value formatting --------------------------------------------------------------------------------

    [Theory]
    [InlineData(1e16, "1e+16")]
    [InlineData(0.1, "0.1")]
    [InlineData(1.0 / 3, "0.3333333333333333")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(123456789.0, "123456789.0")]
    [InlineData(1e22, "1e+22")]
    [InlineData(12345678901234567890.0, "1.2345678901234567e+19")]
    [InlineData(1e-5, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(9999999999999998.0, "9999999999999998.0")]
    [InlineData(-2.75e-10, "-2.75e-10")]
    [InlineData(4.35, "4.35")]
    [InlineData(100.0, "100.0")]
    [InlineData(double.NegativeInfinity, "-inf")]
    [InlineData(-0.0, "-0.0")]
    public void FloatRepr_Value_MatchesPythonRepr(double value, string expected) => Assert.Equal(expected, PyText.FloatRepr(value));

    [Theory]
    [InlineData("abc", "'abc'")]
    [InlineData("it's", "\"it's\"")]
    [InlineData("a'b\"c", "'a\\'b\"c'")]
    [InlineData("tab\tnl\n\u0001\u007f", "'tab\\tnl\\n\\x01\\x7f'")]
    [InlineData("中文😀é", "'中文😀é'")]
    [InlineData("\u00a0\u200b\u3000\U000E0001", "'\\xa0\\u200b\\u3000\\U000e0001'")]
    public void StrRepr_Text_MatchesPythonRepr(string value, string expected) => Assert.Equal(expected, PyText.Repr(value));
}
