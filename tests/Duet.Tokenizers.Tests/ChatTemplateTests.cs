// Chat templates against Python jinja2 configured as Hugging Face transformers configures it: every real template
// in tests/TestData/chat_templates for every conversation must render the same text byte for byte, or fail where
// jinja2 fails (fixture by tests/reference/render_chat_templates.py).
using System.Text.Json;
using Duet.Tests;
using Duet.Tokenizers.ChatTemplates;

namespace Duet.Tokenizers.Tests;

public class ChatTemplateTests
{
    private static readonly string Dir = Path.Combine(Repo.Root, "tests", "TestData", "chat_templates");
    private static readonly DateTime FixedNow = new(2025, 2, 3, 14, 5, 9);

    private static JsonElement Load(string file) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, file))).RootElement.Clone();

    public static IEnumerable<object[]> RealCases() => Load("expected.json").GetProperty("cases").EnumerateArray().Select((_, i) => new object[] { i });

    private static void Check(JsonElement c, Func<string> render)
    {
        if (c.TryGetProperty("output", out var output))
        {
            Assert.Equal(output.GetString(), render());
            return;
        }
        var e = Assert.Throws<ChatTemplateException>(render);
        if (c.TryGetProperty("raise_exception", out var raised)) Assert.Equal(raised.GetString(), e.Message);
    }

    [Theory]
    [MemberData(nameof(RealCases))]
    public void Render_RealTemplate_MatchesJinja2(int index)
    {
        var root = Load("expected.json");
        var c = root.GetProperty("cases")[index];
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Dir, c.GetProperty("template").GetString()!)));
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = ChatTemplate.FromJson(root.GetProperty("conversations").GetProperty(c.GetProperty("conversation").GetString()!)),
            ["add_generation_prompt"] = c.GetProperty("add_generation_prompt").GetBoolean(),
            ["bos_token"] = c.GetProperty("bos_token").GetString(),
            ["eos_token"] = c.GetProperty("eos_token").GetString(),
            ["tools"] = null,
            ["documents"] = null,
        };
        if (c.TryGetProperty("extra", out var extra))
            foreach (var p in extra.EnumerateObject()) globals[p.Name] = ChatTemplate.FromJson(p.Value);
        Check(c, () => template.RenderValues(globals, () => FixedNow));
    }

    [Fact]
    public void Render_PublicApi_ChatMlFallbackAndGenerationPrompt()
    {
        var text = ChatTemplate.ForTokenizer(null).Render([new("system", "Be brief."), new("user", "你好")], addGenerationPrompt: true, "<s>", "</s>");
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", text);
        var broken = ChatTemplate.ForTokenizer("{% if %}");
        Assert.NotNull(broken.FallbackReason);
        Assert.Equal(text, broken.Render([new("system", "Be brief."), new("user", "你好")], true, "<s>", "</s>"));
    }

    [Theory]
    [InlineData("{% for i in range(10**9) %}x{% endfor %}")]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")]
    [InlineData("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}")]
    [InlineData("{{ 'ab' * 100000000 }}")]
    public void Render_HostileTemplate_FailsFastWithAClearError(string source)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source).Render([new("user", "hi")], true, "", ""));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
    }

    [Theory]
    [InlineData("{% if x %}", "line 1")]
    [InlineData("hello\n{{ 'unclosed }}", "line 2")]
    [InlineData("{% for x in %}{% endfor %}", "line 1")]
    [InlineData("{% endfor %}", "endfor")]
    [InlineData("{{ a b }}", "line 1")]
    public void Parse_SyntaxError_SaysWhere(string source, string expected)
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
