// Tool calls read back from a model's reply (issue 19, acceptance 7, parser): the style each real template teaches,
// calls recovered from the text each template itself writes for an assistant turn with tool calls (rendered by the
// Jinja renderer that matches jinja2 byte for byte, ChatTemplateTests), hand-written replies in each style, and
// malformed ones, which come back as text with no calls.
using System.Text.Json;
using Duet.Inference.Tools;
using Duet.Tests;
using Duet.Tokenizers.ChatTemplates;

namespace Duet.Inference.Tests;

public sealed class ToolCallFormatTests
{
    private static string Template(string name) => File.ReadAllText(Path.Combine(Repo.Root, "tests", "TestData", "chat_templates", name));

    private static int s_ids;
    private static string NewId() => $"call_{s_ids++}";

    [Theory]
    [InlineData("qwen2.5-7b-instruct.jinja", ToolCallStyle.Hermes, true)]
    [InlineData("qwen3.jinja", ToolCallStyle.Hermes, true)]
    [InlineData("hermes-2-pro-llama-3-8b-tool_use.jinja", ToolCallStyle.Hermes, true)]
    [InlineData("hermes-3-llama-3.1-8b-tool_use.jinja", ToolCallStyle.Hermes, true)]
    [InlineData("llama-3.1-8b-instruct.jinja", ToolCallStyle.Llama3, true)]
    [InlineData("llama-3.2-3b-instruct.jinja", ToolCallStyle.Llama3, true)]
    [InlineData("mistral-7b-instruct-v0.3.jinja", ToolCallStyle.Mistral, true)]
    [InlineData("mistral-nemo-instruct-2407.jinja", ToolCallStyle.Mistral, true)]
    [InlineData("duet-bpetrainer-chatml.jinja", ToolCallStyle.Hermes, false)]
    [InlineData("yi-chat.jinja", ToolCallStyle.Hermes, false)]
    [InlineData("llama-2-7b-chat.jinja", ToolCallStyle.Hermes, false)]
    public void Detect_RealTemplates(string file, ToolCallStyle style, bool rendersTools)
    {
        Assert.Equal(style, ToolCallFormat.Detect(Template(file)));
        Assert.Equal(rendersTools, ToolCallFormat.RendersTools(Template(file)));
    }

    /// <summary>
    /// The assistant turn as the template writes it (rendering [user, assistant with calls] minus rendering [user] with
    /// the generation prompt, as chat fine-tuning cuts replies), without its end-of-turn marker: what a model trained on
    /// the template replies. Parsed back, it gives the calls that were rendered.
    /// </summary>
    [Theory]
    [InlineData("qwen2.5-7b-instruct.jinja", "", "<|im_end|>", true)]
    [InlineData("hermes-2-pro-llama-3-8b-tool_use.jinja", "<|begin_of_text|>", "<|im_end|>", true)]
    [InlineData("hermes-3-llama-3.1-8b-tool_use.jinja", "<|begin_of_text|>", "<|im_end|>", true)]
    [InlineData("llama-3.1-8b-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>", false)]
    [InlineData("mistral-7b-instruct-v0.3.jinja", "<s>", "</s>", true)]
    [InlineData("mistral-nemo-instruct-2407.jinja", "<s>", "</s>", true)]
    public void Parse_WhatTheTemplateWrites_GivesTheCallsBack(string file, string bos, string eos, bool parallel)
    {
        var template = ChatTemplate.Parse(Template(file));
        using var doc = JsonDocument.Parse("""
            [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}]
            """);
        object?[] calls = parallel
            ? [Call("a1B2c3D4e", "get_weather", """{"city": "Paris"}"""), Call("Z9y8X7w6v", "get_weather", """{"city": "北京", "days": 2}""")]
            : [Call("a1B2c3D4e", "get_weather", """{"city": "北京", "days": 2}""")];
        var user = new ChatTemplateMessage("user", "Weather?");
        var assistant = new ChatTemplateMessage("assistant", "") { Fields = new Dictionary<string, object?> { ["content"] = null, ["tool_calls"] = calls } };
        var extra = new Dictionary<string, object?> { ["tools"] = doc.RootElement.Clone() };
        string prompt = template.Render([user], addGenerationPrompt: true, bos, eos, extra);
        string full = template.Render([user, assistant], addGenerationPrompt: false, bos, eos, extra);
        Assert.StartsWith(prompt, full, StringComparison.Ordinal);
        string reply = full[prompt.Length..];
        int end = reply.LastIndexOf(eos, StringComparison.Ordinal);
        if (end >= 0) reply = reply[..end];

        var (content, parsed) = ToolCallFormat.Parse(ToolCallFormat.Detect(template.Source), reply, NewId);
        Assert.Equal("", content.Trim());
        Assert.Equal(calls.Length, parsed.Count);
        Assert.Equal("get_weather", parsed[0].Name);
        Assert.Equal(parallel ? """{"city":"Paris"}""" : """{"city":"北京","days":2}""", parsed[0].Arguments);
        if (parallel) Assert.Equal("""{"city":"北京","days":2}""", parsed[1].Arguments);
        if (ToolCallFormat.Detect(template.Source) == ToolCallStyle.Mistral) Assert.Equal("a1B2c3D4e", parsed[0].Id); // Mistral writes its ids
    }

    private static Dictionary<string, object?> Call(string id, string name, string arguments) => new()
    {
        ["id"] = id, ["type"] = "function",
        ["function"] = new Dictionary<string, object?> { ["name"] = name, ["arguments"] = JsonDocument.Parse(arguments).RootElement.Clone() },
    };

    [Fact]
    public void Parse_HandWrittenReplies()
    {
        var (text, calls) = ToolCallFormat.Parse(ToolCallStyle.Hermes,
            "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": \\\"z\\\"}\"}\n</tool_call>", NewId);
        Assert.Equal("Let me check.", text);
        Assert.Equal([("a", "{\"x\":[1,2]}"), ("b", "{\"y\":\"z\"}")], calls.Select(c => (c.Name, c.Arguments)));
        Assert.NotEqual(calls[0].Id, calls[1].Id);
        // The last block may end at end-of-turn, without its closing tag; a call without arguments has {}.
        Assert.Equal("{}", ToolCallFormat.Parse(ToolCallStyle.Hermes, "<tool_call>\n{\"name\": \"now\"}\n", NewId).Calls.Single().Arguments);
        Assert.Equal("{\"q\":1}", ToolCallFormat.Parse(ToolCallStyle.Llama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"q\": 1}}", NewId).Calls.Single().Arguments);
        Assert.Equal("{\"q\":1}", ToolCallFormat.Parse(ToolCallStyle.Llama3, " {\"name\": \"f\", \"arguments\": {\"q\": 1}}\n", NewId).Calls.Single().Arguments);
        var m = ToolCallFormat.Parse(ToolCallStyle.Mistral, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}, \"id\": \"bad-id\"}, {\"name\": \"g\", \"arguments\": {\"k\": null}}]", NewId).Calls;
        Assert.Equal(["f", "g"], m.Select(c => c.Name));
        Assert.All(m, c => Assert.Matches("^[A-Za-z0-9]{9}$", c.Id)); // ids Mistral's template accepts in the next turn
    }

    [Theory]
    [InlineData(ToolCallStyle.Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par")]        // cut off
    [InlineData(ToolCallStyle.Hermes, "<tool_call>{\"arguments\": {}}</tool_call>")]                                        // no name
    [InlineData(ToolCallStyle.Hermes, "ok <tool_call>{\"name\": \"a\"}</tool_call> <tool_call>not json</tool_call>")]       // one bad of two
    [InlineData(ToolCallStyle.Hermes, "<tool_call>{\"name\": \"a\", \"arguments\": [1]}</tool_call>")]                     // arguments not an object
    [InlineData(ToolCallStyle.Llama3, "{\"name\": \"f\", \"parameters\": \"not json\"}")]
    [InlineData(ToolCallStyle.Llama3, "The answer is {\"name\": \"f\"}")]                                                   // not the whole reply
    [InlineData(ToolCallStyle.Mistral, "[TOOL_CALLS] [{\"name\": 5, \"arguments\": {}}]")]
    [InlineData(ToolCallStyle.Mistral, "[TOOL_CALLS] []")]
    [InlineData(ToolCallStyle.Mistral, "Just text, no calls.")]
    public void Parse_Malformed_IsText(ToolCallStyle style, string reply)
    {
        var (text, calls) = ToolCallFormat.Parse(style, reply, NewId);
        Assert.Empty(calls);
        Assert.Equal(reply, text);
    }

    [Fact]
    public void FallbackPrompt_DescribesTheToolsInHermesStyle()
    {
        using var tools = JsonDocument.Parse("""[{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]""");
        var p = ToolCallFormat.FallbackSystemPrompt("Be brief.", tools.RootElement);
        Assert.StartsWith("Be brief.\n\n# Tools", p, StringComparison.Ordinal);
        Assert.Contains("<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}\n</tools>", p, StringComparison.Ordinal);
        Assert.EndsWith("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>", p, StringComparison.Ordinal);
    }
}
