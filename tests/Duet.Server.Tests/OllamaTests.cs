// Issue 19, acceptance 4: the Ollama API of a real `duet serve` process through OllamaSharp, the .NET client Ollama
// users use: chat (whole and streamed, the pieces adding up to the whole), generate, tags, show,
// embed, ps, options (seed, temperature, num_predict, stop), format as a JSON schema, tools with a call history, a
// tool call read by OllamaSharp (forced with Duet's "tool_choice" extension, since the model has random weights), and
// Ollama's own error shape.
using System.Text.Json;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;

namespace Duet.Server.Tests;

public sealed class OllamaTests(ToolServerFixture fx) : IClassFixture<ToolServerFixture>
{
    private static string Model => Path.GetFileNameWithoutExtension(TestModels.LongContextPath);
    private OllamaApiClient Client() => new(new HttpClient { BaseAddress = fx.Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) }, Model);
    private static RequestOptions Greedy(int n) => new() { Temperature = 0, NumPredict = n, Seed = 1 };

    private async Task<(string Text, ChatDoneResponseStream? Done)> Chat(ChatRequest request)
    {
        var text = new System.Text.StringBuilder();
        ChatDoneResponseStream? done = null;
        await foreach (var r in Client().ChatAsync(request))
        {
            text.Append(r?.Message?.Content);
            if (r is ChatDoneResponseStream d) done = d;
        }
        return (text.ToString(), done);
    }

    [Fact]
    public async Task Chat_StreamedPiecesAddUpToTheWholeReply()
    {
        List<Message> messages = [new(ChatRole.System, "You are Duet."), new(ChatRole.User, "What is Debian? 你好")];
        var (streamed, done) = await Chat(new ChatRequest { Model = Model, Messages = messages, Stream = true, Options = Greedy(12) });
        var (whole, wholeDone) = await Chat(new ChatRequest { Model = Model, Messages = messages, Stream = false, Options = Greedy(12) });
        Assert.False(string.IsNullOrEmpty(streamed));
        Assert.Equal(whole, streamed);
        Assert.NotNull(done);
        Assert.True(done!.Done);
        Assert.True(done.EvalCount is > 0 and <= 12, $"{done.EvalCount}");
        Assert.True(done.PromptEvalCount > 0);
        Assert.Equal(done.EvalCount, wholeDone!.EvalCount);
        Assert.Contains(done.DoneReason, new[] { "stop", "length" });
    }

    [Fact]
    public async Task Generate_WithSystem_GivesCounts()
    {
        var text = new System.Text.StringBuilder();
        GenerateDoneResponseStream? done = null;
        await foreach (var r in Client().GenerateAsync(new GenerateRequest { Model = Model, Prompt = "Debian is", System = "Be brief.", Options = Greedy(8), Stream = true }))
        {
            text.Append(r?.Response);
            if (r is GenerateDoneResponseStream d) done = d;
        }
        Assert.NotNull(done);
        Assert.True(done!.PromptEvalCount > 3, "the system prompt and the prompt, through the chat template");
        Assert.True(done.EvalCount is > 0 and <= 8);
        Assert.False(string.IsNullOrEmpty(text.ToString()));
    }

    [Fact]
    public async Task TagsShowPs_DescribeTheServedModel()
    {
        var ollama = Client();
        var model = Assert.Single(await ollama.ListLocalModelsAsync());
        Assert.Equal(Model, model.Name);
        Assert.Equal(new FileInfo(TestModels.LongContextPath).Length, model.Size);
        Assert.Equal("gguf", model.Details.Format);
        Assert.Equal("Q8_0", model.Details.QuantizationLevel);
        var show = await ollama.ShowModelAsync(new ShowModelRequest { Model = Model });
        Assert.Contains("<|im_start|>", show.Template, StringComparison.Ordinal);
        Assert.Contains("tools", show.Capabilities!.Select(c => c.ToString()!.ToLowerInvariant()));
        Assert.Equal(Model, Assert.Single(await ollama.ListRunningModelsAsync()).Name);
    }

    [Fact]
    public async Task Embed_UnitVectorsOfModelWidth()
    {
        var r = await Client().EmbedAsync(new EmbedRequest { Model = Model, Input = ["Debian", "自由软件"] });
        Assert.Equal(2, r.Embeddings.Count);
        foreach (var v in r.Embeddings)
        {
            Assert.Equal(TestModels.Config(TestModels.Tokenizer.VocabSize).Dim, v.Length);
            Assert.InRange(Math.Sqrt(v.Sum(x => (double)x * x)), 0.999, 1.001);
        }
        Assert.NotEqual(r.Embeddings[0], r.Embeddings[1]);
    }

    [Fact]
    public async Task Format_JsonSchema_ReplyValidates()
    {
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}""").RootElement;
        var (text, done) = await Chat(new ChatRequest
        {
            Model = Model, Messages = [new(ChatRole.User, "A person as JSON")], Stream = false, Format = schema,
            Options = new RequestOptions { Temperature = 1, Seed = 3, NumPredict = 150 },
        });
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(JsonValueKind.String, doc.RootElement.GetProperty("name").ValueKind);
        Assert.True(doc.RootElement.GetProperty("age").TryGetInt64(out _));
        Assert.Equal("stop", done!.DoneReason);
    }

    [Fact]
    public async Task Tools_AndACallHistory_AreAccepted()
    {
        var tool = new Tool
        {
            Function = new Function
            {
                Name = "get_weather", Description = "Weather in a city",
                Parameters = new Parameters { Properties = new Dictionary<string, Property> { ["city"] = new() { Type = "string" } }, Required = ["city"] },
            },
        };
        List<Message> history =
        [
            new(ChatRole.User, "Weather in Paris?"),
            new(ChatRole.Assistant, "") { ToolCalls = [new Message.ToolCall { Function = new Message.Function { Name = "get_weather", Arguments = new Dictionary<string, object?> { ["city"] = "Paris" } } }] },
            new(ChatRole.Tool, "22 C, sunny"),
        ];
        var (_, done) = await Chat(new ChatRequest { Model = Model, Messages = history, Tools = [tool], Stream = true, Options = Greedy(10) });
        Assert.NotNull(done);
        var (_, plain) = await Chat(new ChatRequest { Model = Model, Messages = [history[0]], Stream = true, Options = Greedy(10) });
        Assert.True(done!.PromptEvalCount > plain!.PromptEvalCount + 20, "the tools, the call and its result are in the prompt");
    }

    /// <summary>Adds "tool_choice": "required" to the JSON bodies OllamaSharp sends (Duet's extension of Ollama's API).</summary>
    private sealed class RequireTools() : DelegatingHandler(new HttpClientHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Content is not null && request.RequestUri!.AbsolutePath == "/api/chat")
            {
                var body = System.Text.Json.Nodes.JsonNode.Parse(await request.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
                body["tool_choice"] = "required";
                request.Content = new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ToolCall_ReadByOllamaSharp_WithObjectArguments(bool stream)
    {
        var ollama = new OllamaApiClient(new HttpClient(new RequireTools()) { BaseAddress = fx.Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) }, Model);
        var tool = new Tool
        {
            Function = new Function
            {
                Name = "get_weather", Description = "Weather in a city",
                Parameters = new Parameters { Properties = new Dictionary<string, Property> { ["city"] = new() { Type = "string" }, ["days"] = new() { Type = "integer" } }, Required = ["city", "days"] },
            },
        };
        var calls = new List<Message.ToolCall>();
        ChatDoneResponseStream? done = null;
        await foreach (var r in ollama.ChatAsync(new ChatRequest
        {
            Model = Model, Messages = [new(ChatRole.User, "Weather in Paris for 2 days?")], Tools = [tool], Stream = stream,
            Options = new RequestOptions { Temperature = 1, Seed = 4, NumPredict = 400 },
        }))
        {
            if (r?.Message?.ToolCalls is { } tc) calls.AddRange(tc);
            if (r is ChatDoneResponseStream d) done = d;
        }
        Assert.NotEmpty(calls);                                            // parallel calls may follow the first
        var call = calls[0];
        Assert.All(calls, c => Assert.Equal("get_weather", c.Function!.Name));
        Assert.IsType<string>(call.Function!.Arguments!["city"]?.ToString());
        Assert.True(long.TryParse(call.Function.Arguments["days"]?.ToString(), out _), $"days: {call.Function.Arguments["days"]}");
        Assert.Equal("stop", done!.DoneReason);
    }

    /// <summary>The official `ollama` npm client (tests/reference/ollama_client.mjs): chat streamed and whole, generate, list, embed.</summary>
    [Fact]
    public void OllamaNpmClient_ChatsGeneratesListsEmbeds()
    {
        var output = Duet.Tests.Repo.Run("node", Duet.Tests.Repo.Reference("ollama_client.mjs"), fx.Server.BaseUri.ToString().TrimEnd('/'), Model);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.False(string.IsNullOrEmpty(r.GetProperty("streamed").GetString()));
        Assert.Equal(r.GetProperty("whole").GetString(), r.GetProperty("streamed").GetString());
        Assert.Contains(r.GetProperty("done_reason").GetString(), new[] { "stop", "length" });
        Assert.InRange(r.GetProperty("eval_count").GetInt32(), 1, 8);
        Assert.False(string.IsNullOrEmpty(r.GetProperty("generated").GetString()));
        Assert.Equal([Model], r.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal([128, 128], r.GetProperty("embeddings").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public async Task Errors_AreOllamaShaped()
    {
        using var http = new HttpClient { BaseAddress = fx.Server.BaseUri };
        async Task Expect(string path, string body, int status, string message)
        {
            using var r = await http.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode == status, $"{(int)r.StatusCode}: {text}");
            Assert.Contains(message, JsonDocument.Parse(text).RootElement.GetProperty("error").GetString());
        }
        await Expect("/api/chat", """{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}""", 404, "model 'nope' not found");
        await Expect("/api/chat", """{"messages": [{"role": "user", "content": "hi"}]}""", 400, "model is required");
        await Expect("/api/generate", $$$"""{"model": "{{{Model}}}", "prompt": "x", "options": {"temperature": "hot"}}""", 400, "temperature");
        await Expect("/api/chat", $$$"""{"model": "{{{Model}}}", "messages": [{"role": "user", "content": "x"}], "format": "yaml"}""", 400, "format");
        await Expect("/api/embed", $$"""{"model": "{{Model}}"}""", 400, "input");
        // An empty prompt loads the model and says so, as Ollama does.
        using var load = await http.PostAsync("/api/generate", new StringContent($$"""{"model": "{{Model}}:latest"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal("load", JsonDocument.Parse(await load.Content.ReadAsStringAsync()).RootElement.GetProperty("done_reason").GetString());
    }
}
