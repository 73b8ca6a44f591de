// tool_choice "required" and named tools (issue 19, acceptance 1's "arguments always validate"): under hostile and
// random logits, with two real tokenizers, every reply made under ToolCallConstraint is one call in the style's own
// frame that ToolCallFormat.Parse reads back, naming an allowed tool, whose arguments Python's jsonschema finds valid
// against that tool's parameters (tests/reference/validate_json_schema.py).
using System.Text.Json;
using Duet.Inference.Tools;
using Duet.Tests;
using static Duet.Inference.Tests.ConstrainedTests;

namespace Duet.Inference.Tests;

public sealed class ToolCallConstraintTests
{
    private const string Tools = """
        [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "城市"}, "days": {"type": "integer"},
                         "unit": {"type": "string", "enum": ["C", "F"]}}, "required": ["city"], "additionalProperties": false}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zones": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}}}},
         {"type": "function", "function": {"name": "now"}}]
        """;

    [Fact]
    public void Constrained_HostileLogits_OneValidCallInEveryStyle()
    {
        var tools = ToolCallConstraint.ReadTools(JsonDocument.Parse(Tools).RootElement);
        var schemas = tools.ToDictionary(t => t.Name, t => t.Parameters);
        var cases = new List<(string Tool, string Args)>();
        int n = 0;
        foreach (var style in new[] { ToolCallStyle.Hermes, ToolCallStyle.Llama3, ToolCallStyle.Mistral })
            foreach (var tok in new[] { s_spm.Value, s_bpe.Value })
                for (int seed = 0; seed < 17; seed++, n++)
                {
                    string? only = seed % 4 == 3 ? "get_weather" : null;                 // a named tool
                    var c = ToolCallConstraint.Create(tok, style, seed % 2 == 0 ? null : "[TOOL_CALLS][", tools, only, [.. StopTokens.Of(tok)]);
                    int budget = seed % 3 == 0 ? Math.Max(40, c.MinimumLength) : 200;   // short budgets force the early close
                    var (text, complete) = Generate(tok, c, seed * 7 + (int)style, (Logits)(seed % 5), budget);
                    Assert.True(complete, $"{style} seed {seed}: did not complete: {text}");
                    var (content, calls) = ToolCallFormat.Parse(style, text, () => "id");
                    Assert.True(calls.Count == 1, $"{style} seed {seed}: {calls.Count} calls in {text}");
                    Assert.Equal("", content);
                    Assert.Contains(calls[0].Name, schemas.Keys);
                    if (only is not null) Assert.Equal(only, calls[0].Name);
                    cases.Add((calls[0].Name, calls[0].Arguments));
                }
        Assert.Equal(102, n);
        Assert.True(cases.Select(x => x.Tool).Distinct().Count() >= 2, "the tools chosen: " + string.Join(",", cases.Select(x => x.Tool).Distinct()));
        var file = Path.Combine(Path.GetTempPath(), $"duet-toolcalls-{Environment.ProcessId}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(cases.GroupBy(x => x.Tool).Select(g => new { schema = schemas[g.Key], documents = g.Select(x => x.Args).ToList() })));
        try
        {
            var results = JsonSerializer.Deserialize<string[][]>(Repo.Run("/usr/bin/python3", Repo.Reference("validate_json_schema.py"), file))!;
            Assert.All(results.SelectMany(r => r), r => Assert.Equal("valid", r));
            Assert.Equal(cases.Count, results.Sum(r => r.Length));
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Constraint_FrameAndSchema_AsTheModelWritesThem()
    {
        var tools = ToolCallConstraint.ReadTools(JsonDocument.Parse(Tools).RootElement);
        var c = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Hermes, null, tools, "get_weather", [2]);
        Assert.True(c.TryFeed("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"unit\":\"C\"}}\n</tool_call>") && c.IsComplete);
        c.Reset();
        Assert.False(c.TryFeed("<tool_call>\n{\"name\":\"get_time\""));                       // not the named tool
        c.Reset();
        Assert.False(c.TryFeed("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"days\":2}}")); // city is required
        var m = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Mistral, "... [TOOL_CALLS][ ...", tools, null, [2]);
        Assert.True(m.TryFeed("[TOOL_CALLS][{\"name\":\"now\",\"arguments\":{}}]") && m.IsComplete);
        var l = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Llama3, null, tools, null, [2]);
        Assert.True(l.TryFeed("{\"name\":\"get_time\",\"parameters\":{\"zones\":[\"UTC\"]}}") && l.IsComplete);
    }

    /// <summary>tool_choice auto: text stays free until it starts a call; the rest of the call is constrained and valid.</summary>
    [Theory]
    [InlineData(ToolCallStyle.Hermes, "Let me check that. <tool_call>")]
    [InlineData(ToolCallStyle.Mistral, "[TOOL_CALLS] [")]
    [InlineData(ToolCallStyle.Llama3, "{\"name\"")]
    public void Lazy_FreeUntilTheCallStarts_ThenValid(ToolCallStyle style, string start)
    {
        var tools = ToolCallConstraint.ReadTools(JsonDocument.Parse(Tools).RootElement);
        foreach (var tok in new[] { s_spm.Value, s_bpe.Value })
            for (int seed = 0; seed < 6; seed++)
            {
                var lazy = ToolCallConstraint.CreateLazy(tok, style, null, tools, [.. StopTokens.Of(tok)]);
                var logits = new float[tok.VocabSize];
                lazy.Apply(logits);
                Assert.DoesNotContain(float.NegativeInfinity, logits);                              // nothing is constrained yet
                var ids = tok.Encode(start, addSpecialTokens: false);
                foreach (int id in ids) lazy.Accept(id);
                Assert.True(lazy.Active, $"{style}: '{start}' should start a call");
                var (rest, complete) = Generate(tok, lazy, seed * 13 + (int)style, (Logits)(seed % 5), 200);
                Assert.True(complete, rest);
                string reply = System.Text.Encoding.UTF8.GetString(tok.DecodeToBytes(ids)) + rest;
                var (_, calls) = ToolCallFormat.Parse(style, reply, () => "id");
                Assert.True(calls.Count >= 1, $"{style}: no call in {reply}");
            }
        var free = ToolCallConstraint.CreateLazy(s_bpe.Value, ToolCallStyle.Hermes, null, tools, [2]);
        foreach (int id in s_bpe.Value.Encode("Just an answer, no call.", addSpecialTokens: false)) free.Accept(id);
        Assert.False(free.Active);
        Assert.False(free.IsComplete);
    }

    [Fact]
    public void Parallel_CallsRepeatInTheFrame_CompleteAfterEach()
    {
        var tools = ToolCallConstraint.ReadTools(JsonDocument.Parse(Tools).RootElement);
        var h = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Hermes, null, tools, null, [2], parallel: true);
        Assert.True(h.ContinuesAfterComplete);
        Assert.True(h.TryFeed("<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>") && h.IsComplete);   // one call is a whole reply
        Assert.True(h.TryFeed("\n<tool_call>\n{\"name\":\"get_time\",\"arguments\":{}}\n</tool_call>") && h.IsComplete); // and so are two
        var (_, calls) = ToolCallFormat.Parse(ToolCallStyle.Hermes, "<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>\n<tool_call>\n{\"name\":\"get_time\",\"arguments\":{}}\n</tool_call>", () => "id");
        Assert.Equal(["now", "get_time"], calls.Select(c => c.Name));
        var m = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Mistral, null, tools, null, [2], parallel: true);
        Assert.True(m.TryFeed("[TOOL_CALLS] [{\"name\":\"now\",\"arguments\":{}},{\"name\":\"now\",\"arguments\":{}}]") && m.IsComplete);
        var single = ToolCallConstraint.Create(s_bpe.Value, ToolCallStyle.Hermes, null, tools, null, [2]);
        Assert.False(single.ContinuesAfterComplete);
        Assert.True(single.TryFeed("<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>"));
        Assert.False(single.TryFeed("\n<tool_call>"));                                                                // not without parallel
    }

    [Theory]
    [InlineData("""[]""", "non-empty array")]
    [InlineData("""[{"type": "code_interpreter"}]""", "\"type\": \"function\"")]
    [InlineData("""[{"type": "function", "function": {"description": "x"}}]""", "function.name")]
    [InlineData("""[{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "a"}}]""", "given twice")]
    [InlineData("""[{"type": "function", "function": {"name": "a", "parameters": [1]}}]""", "JSON schema object")]
    public void ReadTools_Bad_SaysWhere(string tools, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => ToolCallConstraint.ReadTools(JsonDocument.Parse(tools).RootElement));
        Assert.Contains(message, e.Message);
        Assert.Contains("no tool named \"b\"", Assert.Throws<ArgumentException>(() =>
            ToolCallConstraint.CallSchema(ToolCallStyle.Hermes, ToolCallConstraint.ReadTools(JsonDocument.Parse(Tools).RootElement), "b")).Message);
    }
}
